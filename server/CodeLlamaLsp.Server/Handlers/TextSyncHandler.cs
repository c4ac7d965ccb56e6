// didOpen / didChange / didClose / didSave. These run in arrival order and return before the next message
// is dispatched, so a completion that follows an edit always sees it.
using CodeLlamaLsp.Server.Lsp;
using CodeLlamaLsp.Server.Protocol;
using StreamJsonRpc;

namespace CodeLlamaLsp.Server.Handlers;

public sealed class TextSyncHandler(ServerContext context)
{
    [JsonRpcMethod("textDocument/didOpen", UseSingleObjectParameterDeserialization = true)]
    public void DidOpen(DidOpenTextDocumentParams request)
    {
        if (request?.TextDocument is null)
        {
            context.Log.Warn("didOpen without a textDocument; ignored");
            return;
        }

        context.Documents.Open(request.TextDocument);
        context.Log.Debug($"opened {request.TextDocument.Uri} ({request.TextDocument.Text?.Length ?? 0} chars)");
    }

    [JsonRpcMethod("textDocument/didChange", UseSingleObjectParameterDeserialization = true)]
    public void DidChange(DidChangeTextDocumentParams request)
    {
        if (request?.TextDocument is null)
        {
            context.Log.Warn("didChange without a textDocument; ignored");
            return;
        }

        context.Documents.Change(request.TextDocument, request.ContentChanges ?? []);
    }

    [JsonRpcMethod("textDocument/didClose", UseSingleObjectParameterDeserialization = true)]
    public void DidClose(DidCloseTextDocumentParams request)
    {
        if (request?.TextDocument is null)
        {
            return;
        }

        context.Documents.Close(request.TextDocument.Uri);
        context.Cache.Forget(request.TextDocument.Uri);
    }

    [JsonRpcMethod("textDocument/didSave", UseSingleObjectParameterDeserialization = true)]
    public void DidSave(DidSaveTextDocumentParams request)
    {
        // Saving changes nothing the server tracks; the text already arrived through didChange.
        context.Log.Debug($"saved {request?.TextDocument?.Uri}");
    }
}
