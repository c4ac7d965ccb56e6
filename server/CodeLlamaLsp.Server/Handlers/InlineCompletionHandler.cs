// textDocument/inlineCompletion (LSP 3.18): ghost text at the cursor. With selectedCompletionInfo the
// suggestion continues the item selected in the completion widget and replaces that item's range.
using CodeLlamaLsp.Server.Lsp;
using CodeLlamaLsp.Server.Protocol;
using StreamJsonRpc;
using Range = CodeLlamaLsp.Server.Protocol.Range;

namespace CodeLlamaLsp.Server.Handlers;

public sealed class InlineCompletionHandler(ServerContext context, SuggestionService suggestions)
{
    [JsonRpcMethod("textDocument/inlineCompletion", UseSingleObjectParameterDeserialization = true)]
    public async Task<InlineCompletionList> InlineCompletionAsync(InlineCompletionParams request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        // Snapshot and offsets are taken before the first await: later edits cannot change what we complete.
        var document = context.Documents.Get(request.TextDocument.Uri);
        int offset = document.OffsetOf(request.Position);
        bool invoked = request.Context?.TriggerKind == 1;
        if (request.Context?.SelectedCompletionInfo is { } selected)
        {
            var (start, end) = FromLsp.Span(document.Lines, selected.Range);
            if (offset != end)
            {
                throw new InvalidPositionException("selectedCompletionInfo.range must end at the requested position");
            }

            // Complete as if the selected item were already accepted, then offer item + continuation over the item's range.
            string text = string.Concat(document.Text.AsSpan(0, start), selected.Text, document.Text.AsSpan(end));
            int acceptedCursor = start + selected.Text.Length;
            var continuation = await suggestions.SuggestAsync(document.WithText(document.Version, text), acceptedCursor, cancellationToken, invoked).ConfigureAwait(false);
            if (continuation is null || continuation.Start != acceptedCursor)
            {
                return new InlineCompletionList([]);
            }

            // Map the continuation's end back into the real document (past the item, offsets shift by its length change).
            int replaceEnd = continuation.End - selected.Text.Length + (end - start);
            return new InlineCompletionList([new InlineCompletionItem(selected.Text + continuation.Text, ToLsp.Range(document.Lines, start, replaceEnd))]);
        }

        var edit = await suggestions.SuggestAsync(document, offset, cancellationToken, invoked).ConfigureAwait(false);
        return edit is null
            ? new InlineCompletionList([])
            : new InlineCompletionList([new InlineCompletionItem(edit.Text, ToLsp.Range(document.Lines, edit.Start, edit.End))]);
    }
}
