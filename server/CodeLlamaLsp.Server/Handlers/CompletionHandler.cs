// textDocument/completion for clients without inline completion: one item whose textEdit inserts the
// suggestion. The edit starts at the word being typed so clients that filter by that word keep the item,
// and the list is incomplete so every keystroke asks again.
using CodeLlamaLsp.Server.Lsp;
using CodeLlamaLsp.Server.Protocol;
using StreamJsonRpc;

namespace CodeLlamaLsp.Server.Handlers;

public sealed class CompletionHandler(ServerContext context, SuggestionService suggestions)
{
    private const int LabelLength = 60;

    [JsonRpcMethod("textDocument/completion", UseSingleObjectParameterDeserialization = true)]
    public async Task<CompletionList> CompletionAsync(CompletionParams request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var document = context.Documents.Get(request.TextDocument.Uri);
        int offset = document.OffsetOf(request.Position);
        var edit = await suggestions.SuggestAsync(document, offset, cancellationToken, invoked: request.Context?.TriggerKind == 1).ConfigureAwait(false);
        if (edit is null || edit.Text.Trim().Length == 0)
        {
            return new CompletionList(true, []);
        }

        // Completion edits must start at or before the cursor and stay on its line; the word is re-typed.
        int wordStart = Math.Min(edit.Start, offset);
        while (wordStart > 0 && (char.IsLetterOrDigit(document.Text[wordStart - 1]) || document.Text[wordStart - 1] == '_'))
        {
            wordStart--;
        }

        string newText = document.Text[wordStart..edit.Start] + edit.Text;
        var item = new CompletionItem
        {
            Label = Label(newText),
            Kind = CompletionItemKind.Snippet,
            Detail = "CodeLlama",
            FilterText = newText,
            SortText = "0",
            Preselect = true,
            InsertTextFormat = 1,
            TextEdit = new TextEdit(ToLsp.Range(document.Lines, wordStart, edit.End), newText),
        };
        return new CompletionList(true, [item]);
    }

    /// <summary>The first non-empty line, shortened: labels are one line in every completion menu.</summary>
    private static string Label(string text)
    {
        string line = text.Split('\n').Select(l => l.TrimEnd('\r')).FirstOrDefault(l => l.Trim().Length > 0) ?? text;
        line = line.Trim();
        return line.Length <= LabelLength ? line : line[..(LabelLength - 1)] + "…";
    }
}
