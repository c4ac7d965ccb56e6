// Content-Length framing for the server: frames are read by LspFrameReader (bounded, resynchronising) and
// written by StreamJsonRpc's HeaderDelimitedMessageHandler. A frame that is broken or refused, or a body that
// is not JSON-RPC, gets one ParseError reply instead of closing the connection, and the lifecycle gate
// answers requests that arrive before initialize (ServerNotInitialized) or after shutdown (InvalidRequest).
// It also tracks which admitted requests still await their response on the wire, so that exit, which may
// arrive right behind shutdown (or behind any request), does not end the process before those responses are
// flushed.
using System.Buffers;
using System.IO.Pipelines;
using CodeLlamaLsp.Server.Protocol;
using StreamJsonRpc;
using StreamJsonRpc.Protocol;
using StreamJsonRpc.Reflection;

namespace CodeLlamaLsp.Server.Lsp;

// IJsonRpcMessageBufferManager is implemented again here: the base class's version only releases messages it
// read itself, and every message is now read by LspFrameReader.
public sealed class LspMessageHandler : HeaderDelimitedMessageHandler, IJsonRpcMessageBufferManager
{
    private readonly LspFrameReader _frames;
    private readonly ServerLifecycle _lifecycle;
    private readonly ILspLog _log;
    private readonly object _gate = new();

    // Ids of admitted requests whose response has not been flushed yet, and those written since the last flush.
    private readonly HashSet<RequestId> _unanswered = [];
    private readonly List<RequestId> _writtenSinceFlush = [];
    private TaskCompletionSource _allAnswered = CompletedSignal();

    public LspMessageHandler(Stream sending, Stream receiving, IJsonRpcMessageFormatter formatter, ServerLifecycle lifecycle, ILspLog log)
        // System.IO.Pipelines' stream adapters write to the stream inside FlushAsync (StreamJsonRpc's own stream
        // constructor copies through a background pipe), so a flushed response is on stdout, which the exit path
        // relies on.
        : base(PipeWriter.Create(sending), PipeReader.Create(receiving), formatter)
    {
        _lifecycle = lifecycle;
        _log = log;
        _frames = new LspFrameReader(Reader!);
    }

    /// <summary>Releases the parsed message's pooled buffers once JsonRpc has dispatched it (the body array is the message's own).</summary>
    void IJsonRpcMessageBufferManager.DeserializationComplete(JsonRpcMessage message) =>
        (message as IJsonRpcMessageBufferManager)?.DeserializationComplete(message);

    protected override async ValueTask<JsonRpcMessage?> ReadCoreAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var frame = await _frames.ReadAsync(cancellationToken).ConfigureAwait(false);
            switch (frame.Kind)
            {
                case LspFrameKind.End:
                    return null;
                case LspFrameKind.Truncated:
                    _log.Warn("the input ended inside a message; closing the connection");
                    return null;
                case LspFrameKind.Garbled:
                    _log.Warn($"unreadable frame ({frame.Problem}); answered with ParseError and skipped to the next Content-Length header");
                    await ReplyErrorAsync(RequestId.Null, LspErrorCodes.ParseError, $"Parse error: {frame.Problem}", cancellationToken).ConfigureAwait(false);
                    continue;
                case LspFrameKind.Refused:
                    _log.Warn($"refused a message with {frame.Problem}; answered with ParseError");
                    await ReplyErrorAsync(RequestId.Null, LspErrorCodes.ParseError, $"Parse error: refused a message with {frame.Problem}", cancellationToken).ConfigureAwait(false);
                    continue;
            }

            JsonRpcMessage? message;
            try
            {
                message = Formatter.Deserialize(new ReadOnlySequence<byte>(frame.Body!));
            }
            catch (Exception ex) when (IsRecoverable(ex, cancellationToken))
            {
                // The framing held (the body was consumed) but the body was not a JSON-RPC message.
                _log.Warn($"unreadable message ({ex.GetType().Name}: {ex.Message}); answered with ParseError");
                await ReplyErrorAsync(RequestId.Null, LspErrorCodes.ParseError, "Parse error: " + ex.Message, cancellationToken).ConfigureAwait(false);
                continue;
            }

            if (message is not JsonRpcRequest request)
            {
                return message;
            }

            if (Admit(request) is not { } refusal)
            {
                if (!request.IsNotification)
                {
                    Track(request.RequestId);
                }

                return message;
            }

            // The formatter parsed the message in place: release its buffer, as JsonRpc does after dispatch.
            ((IJsonRpcMessageBufferManager)this).DeserializationComplete(request);
            if (!request.IsNotification)
            {
                await ReplyErrorAsync(request.RequestId, refusal.Code, refusal.Message, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                _log.Debug($"dropped notification {request.Method}: {refusal.Message}");
            }
        }
    }

    /// <summary>
    /// Completes when every admitted request has had its response flushed, or after <paramref name="timeout"/>
    /// (a request whose handler never answers must not keep the process alive). False on timeout.
    /// </summary>
    public async Task<bool> WhenAllAnsweredAsync(TimeSpan timeout)
    {
        Task pending;
        lock (_gate)
        {
            pending = _allAnswered.Task;
        }

        return await Task.WhenAny(pending, Task.Delay(timeout)).ConfigureAwait(false) == pending;
    }

    protected override void Write(JsonRpcMessage content, CancellationToken cancellationToken)
    {
        base.Write(content, cancellationToken);
        if (content is JsonRpcResult or JsonRpcError && ((IJsonRpcMessageWithId)content).RequestId is { IsEmpty: false } id)
        {
            lock (_gate)
            {
                _writtenSinceFlush.Add(id);
            }
        }
    }

    protected override async ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        await base.FlushAsync(cancellationToken).ConfigureAwait(false);
        lock (_gate)
        {
            foreach (var id in _writtenSinceFlush)
            {
                _unanswered.Remove(id);
            }

            _writtenSinceFlush.Clear();
            if (_unanswered.Count == 0)
            {
                _allAnswered.TrySetResult();
            }
        }
    }

    private static TaskCompletionSource CompletedSignal()
    {
        var signal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        signal.SetResult();
        return signal;
    }

    private void Track(RequestId id)
    {
        lock (_gate)
        {
            if (_unanswered.Count == 0)
            {
                _allAnswered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }

            _unanswered.Add(id);
        }
    }

    /// <summary>Null to let the message through, or the error that refuses it in the current phase.</summary>
    private (int Code, string Message)? Admit(JsonRpcRequest request)
    {
        string method = request.Method ?? "";
        if (method == "exit")
        {
            return null;
        }

        switch (_lifecycle.Phase)
        {
            // Phases change here, in arrival order, so a request read right after initialize or shutdown
            // is judged by the phase its sender saw, not by when a handler thread got to run.
            case LifecyclePhase.NotInitialized when method == "initialize":
                _lifecycle.TryBeginInitialize();
                return null;
            case LifecyclePhase.NotInitialized:
                return (LspErrorCodes.ServerNotInitialized, $"{method}: the server is not initialized yet (send initialize first)");
            case LifecyclePhase.Running when method == "initialize":
                return (LspErrorCodes.InvalidRequest, "initialize may only be sent once");
            case LifecyclePhase.ShuttingDown:
                return (LspErrorCodes.InvalidRequest, $"{method}: the server is shutting down (only exit is accepted)");
            case LifecyclePhase.Running when method == "shutdown":
                _lifecycle.BeginShutdown();
                return null;
            default:
                return null;
        }
    }

    private static bool IsRecoverable(Exception ex, CancellationToken cancellationToken) =>
        !cancellationToken.IsCancellationRequested
        && ex is not (OperationCanceledException or ObjectDisposedException);

    private async Task ReplyErrorAsync(RequestId id, int code, string message, CancellationToken cancellationToken)
    {
        var error = new JsonRpcError
        {
            Version = "2.0",
            RequestId = id,
            Error = new JsonRpcError.ErrorDetail { Code = (JsonRpcErrorCode)code, Message = message },
        };
        await WriteAsync(error, cancellationToken).ConfigureAwait(false);
    }
}
