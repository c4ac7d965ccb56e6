// Messages from the server to the client: notifications (status, log, progress, explanations) and the few
// requests the server makes (workDoneProgress/create, applyEdit). A closed connection makes these no-ops.
using System.Threading.Channels;
using CodeLlamaLsp.Server.Protocol;
using StreamJsonRpc;

namespace CodeLlamaLsp.Server.Lsp;

public sealed class ClientChannel
{
    private readonly JsonRpc _rpc;

    // Notifications leave through one queue so the client sees them in the order the server produced them
    // (a streamed explanation's "done" must not overtake its last chunk).
    private readonly Channel<Outgoing> _outbox =
        Channel.CreateUnbounded<Outgoing>(new UnboundedChannelOptions { SingleReader = true });

    public ClientChannel(JsonRpc rpc)
    {
        _rpc = rpc;
        _ = PumpAsync();
    }

    /// <summary>True once the client advertised window.workDoneProgress in initialize.</summary>
    public bool SupportsWorkDoneProgress { get; set; }

    /// <summary>Fire-and-forget notification; failures (the client went away) are dropped, never thrown.</summary>
    public void Notify(string method, object parameters)
    {
        if (!_rpc.IsDisposed)
        {
            _outbox.Writer.TryWrite(new Outgoing(method, parameters, null));
        }
    }

    /// <summary>
    /// Completes once every notification queued before this call has been handed to the connection (or the
    /// connection is gone). A handler awaits it before returning when its response must not overtake its
    /// notifications: Explain's showMessage has to reach the client before the command's result.
    /// </summary>
    public Task FlushAsync()
    {
        var sent = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        return !_rpc.IsDisposed && _outbox.Writer.TryWrite(new Outgoing(null, null, sent)) ? sent.Task : Task.CompletedTask;
    }

    /// <summary>Stops accepting notifications; those already queued are still sent.</summary>
    public void Close() => _outbox.Writer.TryComplete();

    private async Task PumpAsync()
    {
        await foreach (var item in _outbox.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            if (item.Sent is { } sent)
            {
                sent.TrySetResult();
                continue;
            }

            try
            {
                await _rpc.NotifyWithParameterObjectAsync(item.Method!, item.Parameters).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is ConnectionLostException or ObjectDisposedException or InvalidOperationException or IOException)
            {
                // The client is gone; there is no one left to tell, but nobody may wait for a flush forever.
                _outbox.Writer.TryComplete();
                while (_outbox.Reader.TryRead(out var rest))
                {
                    rest.Sent?.TrySetResult();
                }

                return;
            }
        }
    }

    /// <summary>A queued notification, or (Method null) a flush marker completed when the pump reaches it.</summary>
    private readonly record struct Outgoing(string? Method, object? Parameters, TaskCompletionSource? Sent);

    public void ShowMessage(int type, string message) => Notify("window/showMessage", new MessageParams(type, message));

    public void Status(StatusParams status) => Notify(CustomMethods.Status, status);

    public async Task<TResult?> RequestAsync<TResult>(string method, object parameters, CancellationToken cancellationToken)
    {
        return await _rpc.InvokeWithParameterObjectAsync<TResult>(method, parameters, cancellationToken).ConfigureAwait(false);
    }

    public Task CreateProgressAsync(string token, CancellationToken cancellationToken) =>
        _rpc.InvokeWithParameterObjectAsync("window/workDoneProgress/create", new WorkDoneProgressCreateParams(token), cancellationToken);

    public void Progress(string token, WorkDoneProgressValue value) => Notify("$/progress", new ProgressParams(token, value));
}
