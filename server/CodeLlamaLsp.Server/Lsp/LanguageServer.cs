// One LSP connection: builds JsonRpc over the given streams (Content-Length framing, System.Text.Json),
// registers the handlers, and runs until exit (or the client disappears). Returns the process exit code.
using CodeLlamaLsp.Server.Backend;
using CodeLlamaLsp.Server.Handlers;
using CodeLlamaLsp.Server.Protocol;
using Microsoft.VisualStudio.Threading;
using StreamJsonRpc;

namespace CodeLlamaLsp.Server.Lsp;

public sealed class LanguageServer
{
    private readonly Stream _input;
    private readonly Stream _output;
    private readonly Func<CancellationToken, Task>? _whenOutputClosed;

    /// <param name="whenOutputClosed">Completes when the client has closed <paramref name="output"/> (stdio: <see cref="OutputHangup"/>); the server then ends as when input closes.</param>
    public LanguageServer(Stream input, Stream output, ServerSettings settings, IModelBackendLoader loader, LspLog log, Func<CancellationToken, Task>? whenOutputClosed = null)
    {
        _input = input;
        _output = output;
        _whenOutputClosed = whenOutputClosed;
        Context = new ServerContext(settings, log, loader, new ServerLifecycle());
    }

    public ServerContext Context { get; }

    public async Task<int> RunAsync()
    {
        var formatter = new SystemTextJsonFormatter();
        LspJson.Configure(formatter.JsonSerializerOptions);
        var handler = new LspMessageHandler(_output, _input, formatter, Context.Lifecycle, Context.Log);
        using var rpc = new LspJsonRpc(handler, Context.Log)
        {
            // Handlers start one at a time in arrival order, so didChange is applied before the next
            // request looks at the document; async handlers leave this context at their first await.
            SynchronizationContext = new NonConcurrentSynchronizationContext(sticky: false),
        };
        var client = new ClientChannel(rpc);
        Context.Client = client;
        var suggestions = new SuggestionService(Context);
        var options = new JsonRpcTargetOptions { UseSingleObjectParameterDeserialization = true };
        rpc.AddLocalRpcTarget(new LifecycleHandler(Context), options);
        rpc.AddLocalRpcTarget(new TextSyncHandler(Context), options);
        rpc.AddLocalRpcTarget(new InlineCompletionHandler(Context, suggestions), options);
        rpc.AddLocalRpcTarget(new CompletionHandler(Context, suggestions), options);
        rpc.AddLocalRpcTarget(new CodeActionHandler(Context), options);
        rpc.AddLocalRpcTarget(new ExecuteCommandHandler(Context), options);
        rpc.AddLocalRpcTarget(new DebugStatsHandler(Context), options);
        rpc.Disconnected += (_, e) =>
        {
            if (Context.Lifecycle.ExitRequested.IsCompleted)
            {
                return;
            }

            Context.Log.Info($"connection closed: {e.Reason} {e.Description}");
        };
        rpc.StartListening();
        Context.Log.Attach(client);

        using var stopWatching = new CancellationTokenSource();
        var outputClosed = _whenOutputClosed?.Invoke(stopWatching.Token) ?? Task.Delay(Timeout.Infinite, stopWatching.Token);

#pragma warning disable VSTHRD003 // These tasks complete without needing this context.
        var finished = await Task.WhenAny(Context.Lifecycle.ExitRequested, rpc.Completion, outputClosed).ConfigureAwait(false);
        await stopWatching.CancelAsync().ConfigureAwait(false);
        if (finished == outputClosed)
        {
            Context.Log.Warn("the client closed the server's output; exiting");
            rpc.Dispose();
        }

        Context.Scheduler.CancelAll();
        if (finished == Context.Lifecycle.ExitRequested && !await handler.WhenAllAnsweredAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false))
        {
            Context.Log.Warn("exit: some requests were still unanswered after 2 s; exiting without their responses");
        }

        client.Close();

        // Free the model only once no generation uses it; a generation that does not stop in time is left
        // to the process exit rather than having its weights freed under it.
        var drained = Context.Scheduler.RunExclusiveAsync(() => { });
        if (await Task.WhenAny(drained, Task.Delay(TimeSpan.FromSeconds(2))).ConfigureAwait(false) == drained)
        {
            Context.Models.Dispose();
        }
        else
        {
            Context.Log.Warn("a generation did not stop within 2 s of exit; the model is left to the process exit");
        }

        if (finished == Context.Lifecycle.ExitRequested)
        {
            return await Context.Lifecycle.ExitRequested.ConfigureAwait(false);
        }
#pragma warning restore VSTHRD003

        // The client closed the stream without exit: 0 if it had asked to shut down, 1 otherwise.
        return Context.Lifecycle.Phase == LifecyclePhase.ShuttingDown ? 0 : 1;
    }
}
