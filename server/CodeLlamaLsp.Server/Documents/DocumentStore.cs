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
    /// Applies a didChange's edits in order. If any edit does not fit the text, the whole notification is
    /// dropped (the document keeps its previous version) and the reason is logged: partial application would
    /// desynchronise silently, while a dropped one is visible in the log.
    /// </summary>
    public bool Change(VersionedTextDocumentIdentifier id, IReadOnlyList<TextDocumentContentChangeEvent> changes)
    {
        ArgumentNullException.ThrowIfNull(id);
        if (!_documents.TryGetValue(id.Uri, out var doc))
        {
            _log.Warn($"didChange for a document that is not open ({id.Uri}); ignored");
            return false;
        }

        string text = doc.Text;
        foreach (var change in changes ?? [])
        {
            if (change.Range is null)
            {
                text = change.Text ?? "";
                continue;
            }

            var index = new LineIndex(text);
            if (index.TryGetOffset(change.Range.Start, out string? error) is not int start
                || index.TryGetOffset(change.Range.End, out error) is not int end)
            {
                _log.Warn($"didChange of {id.Uri} to version {id.Version}: {error}; the change is ignored");
                return false;
            }

            if (end < start)
            {
                _log.Warn($"didChange of {id.Uri} to version {id.Version}: range end before start; the change is ignored");
                return false;
            }

            text = new StringBuilder(text.Length - (end - start) + (change.Text?.Length ?? 0))
                .Append(text, 0, start).Append(change.Text).Append(text, end, text.Length - end).ToString();
        }

        _documents[id.Uri] = doc.WithText(id.Version, text);
        return true;
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
