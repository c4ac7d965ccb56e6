// The open documents, updated by didOpen/didChange/didClose in the order they arrive. Bad notifications
// (unknown document, edit outside the text) are logged and dropped: a notification has no reply to carry an error.
using System.Collections.Concurrent;
using System.Text;
using CodeLlamaLsp.Server.Lsp;
using CodeLlamaLsp.Server.Protocol;

namespace CodeLlamaLsp.Server.Documents;

public sealed class DocumentStore
{
    private readonly ConcurrentDictionary<string, DocumentSnapshot> _documents = new(StringComparer.Ordinal);
    private readonly ILspLog _log;

    public DocumentStore(ILspLog log)
    {
        _log = log;
    }

    public int Count => _documents.Count;

    public void Open(TextDocumentItem item)
    {
        ArgumentNullException.ThrowIfNull(item);
        _documents[item.Uri] = new DocumentSnapshot(item.Uri, item.LanguageId ?? "", item.Version, item.Text ?? "");
    }

    public void Close(string uri) => _documents.TryRemove(uri, out _);

    /// <summary>The other open documents of a language (snippet sources for a completion in <paramref name="uri"/>).</summary>
    public IReadOnlyList<DocumentSnapshot> Others(string uri, string languageId) =>
        _documents.Values.Where(d => d.Uri != uri && d.LanguageId == languageId).ToList();

    public DocumentSnapshot? TryGet(string uri) => _documents.TryGetValue(uri, out var doc) ? doc : null;

    /// <summary>The current snapshot, or an <see cref="UnknownDocumentException"/> for requests about unopened files.</summary>
    public DocumentSnapshot Get(string uri) => TryGet(uri) ?? throw new UnknownDocumentException(uri);

    /// <summary>
    /// Applies a didChange's edits in order. A version not newer than the document's is refused (a stale or
    /// replayed notification would silently overwrite newer text). If any edit does not fit the text, the whole
    /// notification is dropped (the document keeps its previous version) and the reason is logged: partial
    /// application would desynchronise silently, while a dropped one is visible in the log.
    /// </summary>
    public bool Change(VersionedTextDocumentIdentifier id, IReadOnlyList<TextDocumentContentChangeEvent> changes)
    {
        ArgumentNullException.ThrowIfNull(id);
        if (!_documents.TryGetValue(id.Uri, out var doc))
        {
            _log.Warn($"didChange for a document that is not open ({id.Uri}); ignored");
            return false;
        }

        if (id.Version <= doc.Version)
        {
            _log.Warn($"didChange of {id.Uri} to version {id.Version} is stale (the document is at version {doc.Version}); ignored");
            return false;
        }

        changes ??= [];
        string? error = null;
        string? text = TryApplyInOnePass(doc.Text, changes) ?? ApplyInOrder(doc.Text, changes, out error);
        if (text is null)
        {
            _log.Warn($"didChange of {id.Uri} to version {id.Version}: {error}; the change is ignored");
            return false;
        }

        _documents[id.Uri] = doc.WithText(id.Version, text);
        return true;
    }

    /// <summary>
    /// The edits applied with one line index and one copy of the text, or null when they are not in the order
    /// that allows it: each range ending at or before the previous one's start (VS Code's order for multi-cursor
    /// edits), so every position still means what it meant in the original text. O(text + edits).
    /// </summary>
    private static string? TryApplyInOnePass(string text, IReadOnlyList<TextDocumentContentChangeEvent> changes)
    {
        if (changes.Count == 0 || changes.Any(c => c.Range is null))
        {
            return changes.Count == 0 ? text : null;
        }

        var index = new LineIndex(text);
        var spans = new (int Start, int End, string? Text)[changes.Count];
        int limit = text.Length;
        for (int i = 0; i < changes.Count; i++)
        {
            if (index.TryGetOffset(changes[i].Range!.Start, out _) is not int start || index.TryGetOffset(changes[i].Range!.End, out _) is not int end
                || end < start || end > limit)
            {
                return null; // out of order or invalid: ApplyInOrder decides, and names the problem
            }

            spans[i] = (start, end, changes[i].Text);
            limit = start;
        }

        var result = new StringBuilder(text.Length + spans.Sum(s => (s.Text?.Length ?? 0) - (s.End - s.Start)));
        int copied = 0;
        foreach (var (start, end, insert) in spans.Reverse())
        {
            result.Append(text, copied, start - copied).Append(insert);
            copied = end;
        }

        return result.Append(text, copied, text.Length - copied).ToString();
    }

    /// <summary>The edits applied one after another, each against the previous result; null with the reason when one does not fit.</summary>
    private static string? ApplyInOrder(string text, IReadOnlyList<TextDocumentContentChangeEvent> changes, out string? error)
    {
        error = null;
        foreach (var change in changes)
        {
            if (change.Range is null)
            {
                text = change.Text ?? "";
                continue;
            }

            var index = new LineIndex(text);
            if (index.TryGetOffset(change.Range.Start, out error) is not int start
                || index.TryGetOffset(change.Range.End, out error) is not int end)
            {
                return null;
            }

            if (end < start)
            {
                error = "range end before start";
                return null;
            }

            text = new StringBuilder(text.Length - (end - start) + (change.Text?.Length ?? 0))
                .Append(text, 0, start).Append(change.Text).Append(text, end, text.Length - end).ToString();
        }

        return text;
    }
}

/// <summary>A request named a document that was never opened (or was closed).</summary>
public sealed class UnknownDocumentException : Exception
{
    public UnknownDocumentException(string uri)
        : base($"document {uri} is not open (send textDocument/didOpen first)")
    {
    }

    public UnknownDocumentException()
    {
    }

    public UnknownDocumentException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
