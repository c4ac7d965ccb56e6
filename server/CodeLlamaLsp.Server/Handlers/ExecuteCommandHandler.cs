// workspace/executeCommand for the codellama.* commands. Explain streams codellama/explanation and ends
// with window/showMessage; Fix / Generate docs / Generate tests compute an edit and send workspace/applyEdit.
using System.Text.Json;
using CodeLlamaLsp.Prompting;
using CodeLlamaLsp.Server.Backend;
using CodeLlamaLsp.Server.Documents;
using CodeLlamaLsp.Server.Lsp;
using CodeLlamaLsp.Server.Protocol;
using StreamJsonRpc;
using Diagnostic = CodeLlamaLsp.Server.Protocol.Diagnostic;
using TextEdit = CodeLlamaLsp.Server.Protocol.TextEdit;

namespace CodeLlamaLsp.Server.Handlers;

public sealed class ExecuteCommandHandler(ServerContext context)
{
    private int _explanations;

    [JsonRpcMethod("workspace/executeCommand", UseSingleObjectParameterDeserialization = true)]
    public async Task<object?> ExecuteAsync(ExecuteCommandParams request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var action = request.Command switch
        {
            CodeLlamaCommands.Explain => CodeLlamaAction.Explain,
            CodeLlamaCommands.Fix => CodeLlamaAction.Fix,
            CodeLlamaCommands.GenerateDocs => CodeLlamaAction.GenerateDocs,
            CodeLlamaCommands.GenerateTests => CodeLlamaAction.GenerateTests,
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

        var diagnostics = (target.Diagnostics ?? []).Select(d => ToDiagnosticInfo(document, d)).ToList();
        var input = new CodeActionInput(action, document.Uri, document.LanguageId, document.Text, start, end, diagnostics);
        return action == CodeLlamaAction.Explain
            ? await ExplainAsync(backend, input, target, cancellationToken).ConfigureAwait(false)
            : await EditAsync(backend, input, document, cancellationToken).ConfigureAwait(false);
    }

    private async Task<ExplainResult> ExplainAsync(ModelBackend backend, CodeActionInput input, CommandTarget target, CancellationToken cancellationToken)
    {
        string token = $"explain-{Interlocked.Increment(ref _explanations)}";
        var (answer, _) = await GenerateAsync(backend, input, token, textSoFar => context.Client.Notify(CustomMethods.Explanation, new ExplanationParams(token, target.Uri, target.Range, textSoFar, false)), cancellationToken).ConfigureAwait(false);
        string markdown = answer?.Markdown ?? throw new LocalRpcException("the model's answer held no explanation") { ErrorCode = LspErrorCodes.InternalError };
        context.Client.Notify(CustomMethods.Explanation, new ExplanationParams(token, target.Uri, target.Range, markdown, true));
        context.Client.ShowMessage(MessageType.Info, markdown);
        await context.Client.FlushAsync().ConfigureAwait(false); // the explanation arrives before the result
        return new ExplainResult(markdown);
    }

    private async Task<EditCommandResult> EditAsync(ModelBackend backend, CodeActionInput input, DocumentSnapshot document, CancellationToken cancellationToken)
    {
        var (answer, _) = await GenerateAsync(backend, input, input.Action.ToString(), null, cancellationToken).ConfigureAwait(false);
        var generated = answer?.Edit ?? throw new LocalRpcException("the model's answer held no usable code") { ErrorCode = LspErrorCodes.InternalError };
        var textEdit = new TextEdit(ToLsp.Range(document.Lines, generated.Start, generated.End), generated.Text);
        var edit = new WorkspaceEdit(new Dictionary<string, IReadOnlyList<TextEdit>> { [document.Uri] = [textEdit] });
        string label = input.Action switch
        {
            CodeLlamaAction.Fix => "CodeLlama: Fix",
            CodeLlamaAction.GenerateDocs => "CodeLlama: Generate documentation",
            _ => "CodeLlama: Generate tests",
        };
        var applied = await context.Client.RequestAsync<ApplyWorkspaceEditResult>("workspace/applyEdit", new ApplyWorkspaceEditParams(edit, label), cancellationToken).ConfigureAwait(false);
        return new EditCommandResult(applied?.Applied ?? false, edit);
    }

    /// <summary>Runs the action's prompt through the scheduler (no debounce: commands are explicit).</summary>
    private async Task<(ActionAnswer? Answer, string Raw)> GenerateAsync(ModelBackend backend, CodeActionInput input, string key, Action<string>? onText, CancellationToken cancellationToken)
    {
        PreparedAction? prompt = null;
        var outcome = await context.Scheduler.RunAsync(
            "command:" + key,
            TimeSpan.Zero,
            backend.Generator,
            () => (prompt = backend.Prompts.CodeAction(input, context.Settings)).Request,
            onText,
            cancellationToken).ConfigureAwait(false);
        if (outcome.Superseded || prompt is null)
        {
            throw new OperationCanceledException("superseded by a newer run of the same command");
        }

        return (prompt.Finish(outcome.Text), outcome.Text);
    }

    private static DiagnosticInfo ToDiagnosticInfo(DocumentSnapshot document, Diagnostic diagnostic)
    {
        var (start, end) = FromLsp.Span(document.Lines, diagnostic.Range);
        var severity = diagnostic.Severity is >= 1 and <= 4 ? (DiagnosticSeverity)diagnostic.Severity.Value : DiagnosticSeverity.Error;
        return new DiagnosticInfo(diagnostic.Message, severity, new TextRange(start, end));
    }
}
