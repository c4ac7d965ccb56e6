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
        if (request.Context?.SelectedCompletionInfo is { } selected)
        {
            var (start, end) = FromLsp.Span(document.Lines, selected.Range);
            if (offset != end)
            {
                throw new InvalidPositionException("selectedCompletionInfo.range must end at the requested position");
            }

            // Complete as if the selected item were already accepted, then offer item + continuation.
            string text = string.Concat(document.Text.AsSpan(0, start), selected.Text, document.Text.AsSpan(end));
            var accepted = document.WithText(document.Version, text);
            string continuation = await suggestions.SuggestAsync(accepted, start + selected.Text.Length, cancellationToken).ConfigureAwait(false);
            return new InlineCompletionList([new InlineCompletionItem(selected.Text + continuation, selected.Range)]);
        }

        string suggestion = await suggestions.SuggestAsync(document, offset, cancellationToken).ConfigureAwait(false);
        return suggestion.Length == 0
            ? new InlineCompletionList([])
            : new InlineCompletionList([new InlineCompletionItem(suggestion, new Range(request.Position, request.Position))]);
    }
}
