// An immutable view of one open document at one version: what a completion captures before it is queued,
// so later edits never change the text a generation is working from.
using CodeLlamaLsp.Server.Protocol;

namespace CodeLlamaLsp.Server.Documents;

public sealed class DocumentSnapshot
{
    private LineIndex? _lines;

    public DocumentSnapshot(string uri, string languageId, int version, string text)
    {
        Uri = uri;
        LanguageId = languageId;
        Version = version;
        Text = text;
    }

    public string Uri { get; }

    public string LanguageId { get; }

    public int Version { get; }

    public string Text { get; }

    /// <summary>Built on first use; snapshots are immutable, so the index never goes stale.</summary>
    public LineIndex Lines => _lines ??= new LineIndex(Text);

    /// <summary>The offset of a request's position; throws <see cref="InvalidPositionException"/> when it does not exist.</summary>
    public int OffsetOf(Position position) => FromLsp.Offset(Lines, position);

    public DocumentSnapshot WithText(int version, string text) => new(Uri, LanguageId, version, text);
}
