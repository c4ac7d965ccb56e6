// workspace/executeCommand for the codellama.* commands. Explain streams codellama/explanation and ends
// with window/showMessage; Fix / Generate docs / Generate tests compute an edit and send workspace/applyEdit.
using System.Text.Json;
using CodeLlamaLsp.Server.Backend;
using CodeLlamaLsp.Server.Documents;
using CodeLlamaLsp.Server.Lsp;
using CodeLlamaLsp.Server.Protocol;
using StreamJsonRpc;
using Range = CodeLlamaLsp.Server.Protocol.Range;

namespace CodeLlamaLsp.Server.Handlers;

public sealed class ExecuteCommandHandler(ServerContext context)
{
    private int _explanations;

    [JsonRpcMethod("workspace/executeCommand", UseSingleObjectParameterDeserialization = true)]
    public async Task<object?> ExecuteAsync(ExecuteCommandParams request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var kind = request.Command switch
        {
            CodeLlamaCommands.Explain => CodeActionKind.Explain,
            CodeLlamaCommands.Fix => CodeActionKind.Fix,
            CodeLlamaCommands.GenerateDocs => CodeActionKind.GenerateDocs,
            CodeLlamaCommands.GenerateTests => CodeActionKind.GenerateTests,
            _ => throw new ArgumentException($"unknown command '{request.Command}' (known: {string.Join(", ", CodeLlamaCommands.All)})"),
        };
        if (request.Arguments is not [var argument, ..])
        {
            throw new ArgumentException($"{request.Command} needs one argument {{ uri, range }}");
        }

        var target = argument.Deserialize<CommandTarget>(LspJson.Options)
            ?? throw new ArgumentException($"{request.Command}: the argument must be {{ uri, range }}");
        var document = context.Documents.Get(target.Uri);
        var (start, end) = FromLsp.Span(document.Lines, target.Range);
        if (context.Models.Current is not { } backend)
        {
            throw new LocalRpcException($"the model is not ready ({context.Status.Current.State}: {context.Status.Current.Message})") { ErrorCode = LspErrorCodes.InternalError };
        }

        var diagnostics = (target.Diagnostics ?? []).Select(d => d.Message).ToList();
        var input = new CodeActionInput(kind, document.Uri, document.LanguageId, document.Text, start, end, diagnostics);
        return kind == CodeActionKind.Explain
            ? await ExplainAsync(backend, input, target, cancellationToken).ConfigureAwait(false)
            : await EditAsync(backend, input, document, cancellationToken).ConfigureAwait(false);
    }

    private async Task<ExplainResult> ExplainAsync(ModelBackend backend, CodeActionInput input, CommandTarget target, CancellationToken cancellationToken)
    {
        string token = $"explain-{Interlocked.Increment(ref _explanations)}";
        PreparedPrompt? prompt = null;
        var outcome = await context.Scheduler.RunAsync(
            "command:" + token,
            TimeSpan.Zero,
            backend.Generator,
            () => (prompt = backend.Prompts.CodeAction(input, context.Settings)).Request,
            textSoFar => context.Client.Notify(CustomMethods.Explanation, new ExplanationParams(token, target.Uri, target.Range, textSoFar, false)),
            cancellationToken).ConfigureAwait(false);
        string markdown = prompt!.Finish(outcome.Text);
        context.Client.Notify(CustomMethods.Explanation, new ExplanationParams(token, target.Uri, target.Range, markdown, true));
        context.Client.ShowMessage(MessageType.Info, markdown);
        return new ExplainResult(markdown);
    }

    private async Task<EditCommandResult> EditAsync(ModelBackend backend, CodeActionInput input, DocumentSnapshot document, CancellationToken cancellationToken)
    {
        PreparedPrompt? prompt = null;
        var outcome = await context.Scheduler.RunAsync(
            "command:" + input.Kind,
            TimeSpan.Zero,
            backend.Generator,
            () => (prompt = backend.Prompts.CodeAction(input, context.Settings)).Request,
            onText: null,
            cancellationToken).ConfigureAwait(false);
        if (outcome.Superseded)
        {
            throw new OperationCanceledException("superseded by a newer request of the same command");
        }

        string generated = prompt!.Finish(outcome.Text);
        var edit = new WorkspaceEdit(new Dictionary<string, IReadOnlyList<TextEdit>> { [document.Uri] = [PlaceEdit(input, document, generated)] });
        string label = input.Kind switch
        {
            CodeActionKind.Fix => "CodeLlama: Fix",
            CodeActionKind.GenerateDocs => "CodeLlama: Generate documentation",
            _ => "CodeLlama: Generate tests",
        };
        var applied = await context.Client.RequestAsync<ApplyWorkspaceEditResult>("workspace/applyEdit", new ApplyWorkspaceEditParams(edit, label), cancellationToken).ConfigureAwait(false);
        return new EditCommandResult(applied?.Applied ?? false, edit);
    }

    /// <summary>
    /// Where each kind's text goes: a fix replaces the selection, docs go above the selection's first line,
    /// tests go after its last line.
    /// </summary>
    private static TextEdit PlaceEdit(CodeActionInput input, DocumentSnapshot document, string generated)
    {
        var lines = document.Lines;
        switch (input.Kind)
        {
            case CodeActionKind.Fix:
                return new TextEdit(ToLsp.Range(lines, input.Start, input.End), generated);
            case CodeActionKind.GenerateDocs:
                var above = new Position(ToLsp.Position(lines, input.Start).Line, 0);
                return new TextEdit(new Range(above, above), EndWithNewline(generated));
            default:
                int lastLine = ToLsp.Position(lines, input.End).Line;
                var below = new Position(lastLine, lines.LineLength(lastLine));
                return new TextEdit(new Range(below, below), "\n\n" + generated.TrimEnd('\n'));
        }
    }

    private static string EndWithNewline(string text) => text.EndsWith('\n') ? text : text + "\n";
}
