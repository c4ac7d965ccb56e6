// Content-Length framing (StreamJsonRpc's HeaderDelimitedMessageHandler) made robust for editors: a body
// that is not JSON-RPC gets a ParseError reply instead of closing the connection, and the lifecycle gate
// answers requests that arrive before initialize (ServerNotInitialized) or after shutdown (InvalidRequest).
using System.IO.Pipelines;
using CodeLlamaLsp.Server.Protocol;
using StreamJsonRpc;
using StreamJsonRpc.Protocol;
using StreamJsonRpc.Reflection;

namespace CodeLlamaLsp.Server.Lsp;

public sealed class LspMessageHandler : HeaderDelimitedMessageHandler
{
    private readonly ServerLifecycle _lifecycle;
    private readonly ILspLog _log;

    public LspMessageHandler(Stream sending, Stream receiving, IJsonRpcMessageFormatter formatter, ServerLifecycle lifecycle, ILspLog log)
        : base(sending, receiving, formatter)
    {
        _lifecycle = lifecycle;
        _log = log;
    }

    protected override async ValueTask<JsonRpcMessage?> ReadCoreAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            JsonRpcMessage? message;
            try
            {
                message = await base.ReadCoreAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (IsRecoverable(ex, cancellationToken))
            {
                // The framing held (the body was consumed) but the body was not a JSON-RPC message.
                _log.Warn($"unreadable message ({ex.GetType().Name}: {ex.Message}); answered with ParseError");
                await ReplyErrorAsync(RequestId.Null, LspErrorCodes.ParseError, "Parse error: " + ex.Message, cancellationToken).ConfigureAwait(false);
                continue;
            }

            if (message is not JsonRpcRequest request || Admit(request) is not { } refusal)
            {
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
        && ex is not (OperationCanceledException or EndOfStreamException or ObjectDisposedException or IOException or BadRpcHeaderException);

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
