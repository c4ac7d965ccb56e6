// An immutable view of one open document at one version: what a completion captures before it is queued,
// so later edits never change the text a generation is working from.
using CodeLlamaLsp.Server.Protocol;

namespace CodeLlamaLsp.Server.Documents;

public sealed class DocumentSnapshot
{
    private LineIndex? _lines;

    public DocumentSnapshot(string uri, string languageId, int version, string text, DateTimeOffset? lastEdited = null)
    {
        Uri = uri;
        LanguageId = languageId;
        Version = version;
        Text = text;
        LastEdited = lastEdited ?? DateTimeOffset.UtcNow;
    }

    /// <summary>When the text last changed; prompts prefer snippets from recently edited files.</summary>
    public DateTimeOffset LastEdited { get; }

    public string Uri { get; }

    public string LanguageId { get; }

    public int Version { get; }

    public string Text { get; }

    /// <summary>Built on first use; snapshots are immutable, so the index never goes stale.</summary>
    public LineIndex Lines => _lines ??= new LineIndex(Text);

    /// <summary>The offset of a request's position; throws <see cref="InvalidPositionException"/> when it does not exist.</summary>
    public int OffsetOf(Position position) => FromLsp.Offset(Lines, position);

    public DocumentSnapshot WithText(int version, string text) => new(Uri, LanguageId, version, text);

    /// <summary>This document as Prompting's OpenDocument (a snippet source for completions in other files).</summary>
    public Prompting.OpenDocument ToOpenDocument() => new(Backend.PromptingSuggestions.PathOf(Uri), LanguageId, Text, LastEdited);
}
