// Server-sent event framing as the engines write it: CRLF or LF, "data:" with or without a space,
// keep-alive comments, other fields, and multi-line data.
using System.Text;
using CodeLlamaLsp.Inference.Remote;

namespace CodeLlamaLsp.Inference.Tests.Remote;

public class ServerSentEventReaderTests
{
    [Test]
    public async Task Data_of_each_event_is_returned_and_everything_else_is_skipped()
    {
        const string wire = ": keep-alive\r\n\r\nevent: message\r\nid: 7\r\ndata: {\"a\":1}\r\n\r\ndata:{\"b\":2}\n\ndata: line one\ndata: line two\n\ndata: [DONE]";
        using var reader = new ServerSentEventReader(new MemoryStream(Encoding.UTF8.GetBytes(wire)));
        int lines = 0;
        reader.LineReceived = () => lines++;

        var events = new List<string>();
        while (await reader.ReadEventAsync(CancellationToken.None) is { } data)
        {
            events.Add(data);
        }

        Assert.That(events, Is.EqualTo(new[] { "{\"a\":1}", "{\"b\":2}", "line one\nline two", "[DONE]" }));
        Assert.That(lines, Is.EqualTo(12), "every line, comments included, counts as a sign of life for the idle timeout");
    }
}
