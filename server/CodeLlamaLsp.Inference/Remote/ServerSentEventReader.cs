// Reads a text/event-stream body line by line and hands out the data of each event, the way the
// OpenAI-compatible engines frame their streamed completions ("data: {...}" then a blank line).
using System.Text;

namespace CodeLlamaLsp.Inference.Remote;

/// <summary>Yields the data field of each server-sent event; comments and other fields are skipped.</summary>
internal sealed class ServerSentEventReader : IDisposable
{
    private readonly StreamReader _reader;
    private readonly StringBuilder _data = new();
    private bool _hasData;

    public ServerSentEventReader(Stream stream)
    {
        _reader = new StreamReader(stream, new UTF8Encoding(false), detectEncodingFromByteOrderMarks: false, bufferSize: 4096);
    }

    /// <summary>Called after every line read, so the caller can re-arm its idle timeout.</summary>
    public Action? LineReceived { get; set; }

    /// <summary>The data of the next event, or null at the end of the stream.</summary>
    public async Task<string?> ReadEventAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            string? line = await _reader.ReadLineAsync(cancellationToken).ConfigureAwait(false);
            if (line is null)
            {
                // The spec drops an unterminated event at end of stream; engines that close right after
                // their last "data:" line still mean it, so it is delivered.
                return TakeEvent();
            }

            LineReceived?.Invoke();
            if (line.Length == 0)
            {
                string? data = TakeEvent();
                if (data is not null)
                {
                    return data;
                }

                continue;
            }

            if (line[0] == ':')
            {
                continue; // A comment, used by some servers as a keep-alive.
            }

            int colon = line.IndexOf(':', StringComparison.Ordinal);
            string field = colon < 0 ? line : line[..colon];
            if (field != "data")
            {
                continue; // event:, id:, retry: carry nothing the completions stream needs.
            }

            string value = colon < 0 ? string.Empty : line[(colon + 1)..];
            if (value.StartsWith(' '))
            {
                value = value[1..];
            }

            if (_hasData)
            {
                _data.Append('\n');
            }

            _data.Append(value);
            _hasData = true;
        }
    }

    public void Dispose() => _reader.Dispose();

    private string? TakeEvent()
    {
        if (!_hasData)
        {
            return null;
        }

        string data = _data.ToString();
        _data.Clear();
        _hasData = false;
        return data;
    }
}
