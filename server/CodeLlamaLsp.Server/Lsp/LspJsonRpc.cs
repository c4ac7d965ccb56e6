// JsonRpc with LSP error mapping: bad positions, unknown documents and params of the wrong JSON shape become
// InvalidParams, anything else unexpected becomes InternalError; every failure is logged, and none of them stops the server.
using System.Reflection;
using CodeLlamaLsp.Server.Documents;
using CodeLlamaLsp.Server.Protocol;
using StreamJsonRpc;
using StreamJsonRpc.Protocol;

namespace CodeLlamaLsp.Server.Lsp;

public sealed class LspJsonRpc : JsonRpc
{
    private readonly ILspLog _log;

    public LspJsonRpc(IJsonRpcMessageHandler handler, ILspLog log)
        : base(handler)
    {
        _log = log;
    }

    protected override JsonRpcError.ErrorDetail CreateErrorDetails(JsonRpcRequest request, Exception exception)
    {
        ArgumentNullException.ThrowIfNull(request);
        var ex = exception is TargetInvocationException { InnerException: { } inner } ? inner : exception;
        if (FindJsonError(ex) is { } json)
        {
            _log.Warn($"{request.Method}: params do not match the LSP types: {json.Message}");
            return new JsonRpcError.ErrorDetail { Code = (JsonRpcErrorCode)LspErrorCodes.InvalidParams, Message = $"invalid params: {json.Message}" };
        }

        switch (ex)
        {
            case OperationCanceledException:
                _log.Debug($"{request.Method} cancelled");
                return base.CreateErrorDetails(request, ex);
            case InvalidPositionException or UnknownDocumentException or ArgumentException:
                _log.Warn($"{request.Method}: invalid params: {ex.Message}");
                return new JsonRpcError.ErrorDetail { Code = (JsonRpcErrorCode)LspErrorCodes.InvalidParams, Message = ex.Message };
            case LocalRpcException rpc:
                _log.Warn($"{request.Method}: {rpc.Message}");
                return base.CreateErrorDetails(request, ex);
            default:
                _log.Error($"{request.Method} failed: {ex}");
                return new JsonRpcError.ErrorDetail { Code = (JsonRpcErrorCode)LspErrorCodes.InternalError, Message = $"{request.Method} failed: {ex.Message}" };
        }
    }

    /// <summary>The System.Text.Json error behind a failed argument conversion, if that is what failed.</summary>
    private static System.Text.Json.JsonException? FindJsonError(Exception ex)
    {
        for (var e = ex; e is not null; e = e.InnerException)
        {
            if (e is System.Text.Json.JsonException json)
            {
                return json;
            }
        }

        return null;
    }
}
