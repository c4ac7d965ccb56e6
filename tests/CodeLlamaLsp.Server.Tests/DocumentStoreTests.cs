// Document sync: incremental edits land where the UTF-16 positions say, full replacements replace, and
// bad notifications (unknown document, edit outside the text) leave the document as it was.
using CodeLlamaLsp.Server.Documents;
using CodeLlamaLsp.Server.Lsp;
using CodeLlamaLsp.Server.Protocol;
using Range = CodeLlamaLsp.Server.Protocol.Range;

namespace CodeLlamaLsp.Server.Tests;

public class DocumentStoreTests
{
    private const string Uri = "file:///t.py";

    private static (DocumentStore Store, StringWriter Log) Open(string text)
    {
        var log = new StringWriter();
        var store = new DocumentStore(new LspLog(log));
        store.Open(new TextDocumentItem(Uri, "python", 1, text));
        return (store, log);
    }

    private static TextDocumentContentChangeEvent Edit(int l1, int c1, int l2, int c2, string text) =>
        new(text, new Range(new Position(l1, c1), new Position(l2, c2)));

    [Test]
    public void Incremental_edits_apply_in_order_after_astral_characters_and_crlf()
    {
        var (store, _) = Open("s = '\U0001F600'\r\nprint(s)\r\n");
        bool applied = store.Change(new VersionedTextDocumentIdentifier(Uri, 2), [Edit(0, 7, 0, 7, "!"), Edit(1, 6, 1, 7, "s, s")]);

        Assert.That(applied, Is.True);
        Assert.That(store.Get(Uri).Text, Is.EqualTo("s = '\U0001F600!'\r\nprint(s, s)\r\n"));
        Assert.That(store.Get(Uri).Version, Is.EqualTo(2));
    }

    [Test]
    public void A_change_without_range_replaces_the_text()
    {
        var (store, _) = Open("old");
        store.Change(new VersionedTextDocumentIdentifier(Uri, 5), [new TextDocumentContentChangeEvent("new\ntext")]);
        Assert.That(store.Get(Uri).Text, Is.EqualTo("new\ntext"));
    }

    [Test]
    public void An_out_of_range_edit_is_logged_and_the_document_keeps_its_version()
    {
        var (store, log) = Open("abc");
        bool applied = store.Change(new VersionedTextDocumentIdentifier(Uri, 2), [Edit(0, 1, 0, 1, "x"), Edit(3, 0, 3, 0, "y")]);

        Assert.That(applied, Is.False);
        Assert.That(store.Get(Uri).Text, Is.EqualTo("abc"));
        Assert.That(store.Get(Uri).Version, Is.EqualTo(1));
        Assert.That(log.ToString(), Does.Contain("line 3 is outside"));
    }

    [Test]
    public void A_change_to_an_unknown_document_is_logged_and_ignored()
    {
        var (store, log) = Open("abc");
        bool applied = store.Change(new VersionedTextDocumentIdentifier("file:///other.py", 2), [new TextDocumentContentChangeEvent("x")]);

        Assert.That(applied, Is.False);
        Assert.That(store.Count, Is.EqualTo(1));
        Assert.That(log.ToString(), Does.Contain("not open"));
    }

    [Test]
    public void Snapshots_do_not_change_when_the_document_does()
    {
        var (store, _) = Open("abc");
        var before = store.Get(Uri);
        store.Change(new VersionedTextDocumentIdentifier(Uri, 2), [Edit(0, 3, 0, 3, "d")]);

        Assert.That(before.Text, Is.EqualTo("abc"));
        Assert.That(store.Get(Uri).Text, Is.EqualTo("abcd"));
    }

    [Test]
    public void Closed_documents_are_unknown_to_requests()
    {
        var (store, _) = Open("abc");
        store.Close(Uri);
        Assert.That(() => store.Get(Uri), Throws.TypeOf<UnknownDocumentException>().With.Message.Contains(Uri));
    }
}
