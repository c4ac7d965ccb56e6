// Structures of the features the server implements: inline completion (LSP 3.18), completion, code actions
// and executeCommand.
using System.Text.Json;

namespace CodeLlamaLsp.Server.Protocol;

public sealed record InlineCompletionParams(TextDocumentIdentifier TextDocument, Position Position, InlineCompletionContext? Context = null);

/// <summary>triggerKind 1 = Invoked (explicit), 2 = Automatic (typing).</summary>
public sealed record InlineCompletionContext(int TriggerKind, SelectedCompletionInfo? SelectedCompletionInfo = null);

/// <summary>The item selected in the completion widget, which the inline suggestion must extend.</summary>
public sealed record SelectedCompletionInfo(Range Range, string Text);

public sealed record InlineCompletionItem(string InsertText, Range? Range = null, Command? Command = null, string? FilterText = null);

public sealed record InlineCompletionList(IReadOnlyList<InlineCompletionItem> Items);

public sealed record CompletionParams(TextDocumentIdentifier TextDocument, Position Position, CompletionContext? Context = null);

public sealed record CompletionContext(int TriggerKind, string? TriggerCharacter = null);

public sealed record CompletionItem
{
    public required string Label { get; init; }

    public int? Kind { get; init; }

    public string? Detail { get; init; }

    public string? FilterText { get; init; }

    public string? SortText { get; init; }

    public bool? Preselect { get; init; }

    /// <summary>1 = PlainText: the suggestion is inserted literally, never read as a snippet.</summary>
    public int? InsertTextFormat { get; init; }

    public TextEdit? TextEdit { get; init; }
}

public sealed record CompletionList(bool IsIncomplete, IReadOnlyList<CompletionItem> Items);

public static class CompletionItemKind
{
    public const int Text = 1;
    public const int Snippet = 15;
}

public sealed record CodeActionParams(TextDocumentIdentifier TextDocument, Range Range, CodeActionContext Context);

public sealed record CodeActionContext(IReadOnlyList<Diagnostic> Diagnostics, IReadOnlyList<string>? Only = null, int? TriggerKind = null);

public sealed record CodeAction
{
    public required string Title { get; init; }

    public string? Kind { get; init; }

    public IReadOnlyList<Diagnostic>? Diagnostics { get; init; }

    public Command? Command { get; init; }
}

public static class CodeActionKinds
{
    public const string QuickFix = "quickfix";
    public const string Refactor = "refactor";
    public const string RefactorRewrite = "refactor.rewrite";
    public const string Empty = "";
}

public sealed record ExecuteCommandParams(string Command, IReadOnlyList<JsonElement>? Arguments = null);
