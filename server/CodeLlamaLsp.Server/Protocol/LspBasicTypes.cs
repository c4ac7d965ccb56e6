// The LSP structures that every feature shares (positions, ranges, edits, documents, messages), written as
// System.Text.Json records holding only the fields this server reads or writes.
using System.Text.Json;
using System.Text.Json.Serialization;

namespace CodeLlamaLsp.Server.Protocol;

/// <summary>A zero-based line and a character offset in UTF-16 code units (the only encoding we advertise).</summary>
public sealed record Position(int Line, int Character);

public sealed record Range(Position Start, Position End);

public sealed record Location(string Uri, Range Range);

public sealed record TextDocumentIdentifier(string Uri);

public sealed record VersionedTextDocumentIdentifier(string Uri, int Version);

public sealed record TextDocumentItem(string Uri, string LanguageId, int Version, string Text);

/// <summary>A change: with a range it replaces that range; without one it is the whole new text.</summary>
public sealed record TextDocumentContentChangeEvent(string Text, Range? Range = null);

public sealed record TextEdit(Range Range, string NewText);

public sealed record DidOpenTextDocumentParams(TextDocumentItem TextDocument);

public sealed record DidChangeTextDocumentParams(VersionedTextDocumentIdentifier TextDocument, IReadOnlyList<TextDocumentContentChangeEvent> ContentChanges);

public sealed record DidCloseTextDocumentParams(TextDocumentIdentifier TextDocument);

public sealed record DidSaveTextDocumentParams(TextDocumentIdentifier TextDocument, string? Text = null);

public sealed record TextDocumentPositionParams(TextDocumentIdentifier TextDocument, Position Position);

public sealed record Diagnostic(Range Range, string Message, int? Severity = null, string? Source = null, JsonElement? Code = null);

/// <summary>An LSP Command; the C# name differs from the JSON name "command" only because a member cannot share its type's name.</summary>
public sealed record Command(string Title, [property: JsonPropertyName("command")] string CommandName, IReadOnlyList<object>? Arguments = null);

public sealed record WorkspaceEdit(IReadOnlyDictionary<string, IReadOnlyList<TextEdit>> Changes);

public sealed record ApplyWorkspaceEditParams(WorkspaceEdit Edit, string? Label = null);

public sealed record ApplyWorkspaceEditResult(bool Applied, string? FailureReason = null);

/// <summary>window/showMessage and window/logMessage; <see cref="MessageType"/> holds the type numbers.</summary>
public sealed record MessageParams(int Type, string Message);

public static class MessageType
{
    public const int Error = 1;
    public const int Warning = 2;
    public const int Info = 3;
    public const int Log = 4;
    public const int Debug = 5;
}

public sealed record SetTraceParams(string Value);

public sealed record DidChangeConfigurationParams(JsonElement? Settings);

public sealed record WorkDoneProgressCreateParams(string Token);

public sealed record ProgressParams(string Token, WorkDoneProgressValue Value);

/// <summary>The begin/report/end payloads of $/progress folded into one record (absent fields are not sent).</summary>
public sealed record WorkDoneProgressValue(string Kind)
{
    public string? Title { get; init; }

    public string? Message { get; init; }

    public int? Percentage { get; init; }

    public bool? Cancellable { get; init; }
}

/// <summary>The JSON-RPC and LSP error codes the server sends.</summary>
public static class LspErrorCodes
{
    public const int ParseError = -32700;
    public const int InvalidRequest = -32600;
    public const int MethodNotFound = -32601;
    public const int InvalidParams = -32602;
    public const int InternalError = -32603;
    public const int ServerNotInitialized = -32002;
    public const int RequestCancelled = -32800;
}

/// <summary>Serializer settings for every LSP message: camelCase names, absent instead of null, required fields required.</summary>
public static class LspJson
{
    public static void Configure(JsonSerializerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.PropertyNamingPolicy = JsonNamingPolicy.CamelCase;
        options.PropertyNameCaseInsensitive = true;
        options.DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull;

        // A required LSP field that is missing (a record parameter without a default) fails deserialization,
        // which answers InvalidParams, instead of reaching a handler as null.
        options.RespectRequiredConstructorParameters = true;
    }

    public static JsonSerializerOptions Options { get; } = CreateOptions();

    private static JsonSerializerOptions CreateOptions()
    {
        var options = new JsonSerializerOptions();
        Configure(options);
        return options;
    }
}
