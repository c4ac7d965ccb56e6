// textDocument/codeAction: offers Explain, Fix (only with diagnostics in the range), Generate docs and
// Generate tests, each as a command (docs/lsp-extensions.md) that workspace/executeCommand runs.
using CodeLlamaLsp.Server.Lsp;
using CodeLlamaLsp.Server.Protocol;
using StreamJsonRpc;

namespace CodeLlamaLsp.Server.Handlers;

public sealed class CodeActionHandler(ServerContext context)
{
    [JsonRpcMethod("textDocument/codeAction", UseSingleObjectParameterDeserialization = true)]
    public IReadOnlyList<CodeAction> CodeActions(CodeActionParams request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var document = context.Documents.Get(request.TextDocument.Uri);
        FromLsp.Span(document.Lines, request.Range); // Validates the range: a bad one is InvalidParams, not an empty menu.
        var diagnostics = request.Context?.Diagnostics ?? [];
        var target = new CommandTarget(document.Uri, request.Range) { Diagnostics = diagnostics.Count > 0 ? diagnostics : null };
        var actions = new List<CodeAction>
        {
            Action("CodeLlama: Explain this code", CodeActionKinds.Refactor, CodeLlamaCommands.Explain, target),
        };
        if (diagnostics.Count > 0)
        {
            actions.Add(Action("CodeLlama: Fix this", CodeActionKinds.QuickFix, CodeLlamaCommands.Fix, target) with { Diagnostics = diagnostics });
        }

        actions.Add(Action("CodeLlama: Generate documentation", CodeActionKinds.RefactorRewrite, CodeLlamaCommands.GenerateDocs, target));
        actions.Add(Action("CodeLlama: Generate tests", CodeActionKinds.Refactor, CodeLlamaCommands.GenerateTests, target));

        var only = request.Context?.Only;
        return only is { Count: > 0 }
            ? actions.Where(a => only.Any(kind => a.Kind == kind || a.Kind!.StartsWith(kind + ".", StringComparison.Ordinal))).ToList()
            : actions;
    }

    private static CodeAction Action(string title, string kind, string command, CommandTarget target) =>
        new() { Title = title, Kind = kind, Command = new Command(title, command, [target]) };
}
