// The LSP base protocol's framing on the way in: header lines, then a Content-Length body. Written for a
// hostile or buggy client: every size is capped, every malformed frame is reported once and the reader then
// resynchronises on the next "Content-Length:" it finds, so no input makes it loop, buffer without bound or
// end the process. What the frame means (JSON-RPC) is the message handler's business, not this class's.
using System.Buffers;
using System.Globalization;
using System.IO.Pipelines;
using System.Text;

namespace CodeLlamaLsp.Server.Lsp;

/// <summary>What one read produced.</summary>
public enum LspFrameKind
{
    /// <summary>A UTF-8 body to parse.</summary>
    Message,

    /// <summary>A well-framed message that is refused (unsupported charset, empty body): consumed, answer ParseError.</summary>
    Refused,

    /// <summary>Framing that cannot be trusted: answer ParseError; the next read first skips to the next Content-Length header.</summary>
    Garbled,

    /// <summary>The stream ended between messages.</summary>
    End,

    /// <summary>The stream ended inside a message.</summary>
    Truncated,
}

public sealed record LspFrame(LspFrameKind Kind, byte[]? Body = null, string? Problem = null);

public sealed class LspFrameReader(PipeReader reader)
{
    /// <summary>A header line longer than this is not an LSP header ("Content-Type: application/vscode-jsonrpc; charset=utf-8" is 55).</summary>
    public const int MaxHeaderLineBytes = 1024;

    /// <summary>Header lines per message; LSP defines two.</summary>
    public const int MaxHeaderLines = 16;

    /// <summary>Largest body accepted: 64 MiB, room for a didOpen of a ~30 MB file with JSON escaping.</summary>
    public const int MaxBodyBytes = 64 * 1024 * 1024;

    private static readonly byte[] ContentLengthName = "Content-Length:"u8.ToArray();

    // Set by a garbled frame: the next read first skips to a "Content-Length:". _skipFirstByte when the bad line
    // was left unread (too long), so the scan cannot find that same line's own header name again and loop.
    private bool _resynchronise;
    private bool _skipFirstByte;

    public async ValueTask<LspFrame> ReadAsync(CancellationToken cancellationToken)
    {
        if (_resynchronise)
        {
            _resynchronise = false;
            if (!await SkipToNextContentLengthAsync(_skipFirstByte, cancellationToken).ConfigureAwait(false))
            {
                return new LspFrame(LspFrameKind.End);
            }
        }

        int? contentLength = null;
        string? refusal = null;
        for (int lines = 0; ; lines++)
        {
            var (line, ended) = await ReadLineAsync(cancellationToken).ConfigureAwait(false);
            if (line is null)
            {
                return ended ? new LspFrame(lines == 0 ? LspFrameKind.End : LspFrameKind.Truncated) : Garbled($"a header line longer than {MaxHeaderLineBytes} bytes", lineLeftUnread: true);
            }

            if (line.Length == 0)
            {
                if (lines == 0)
                {
                    // A stray line break between messages: skip it rather than call the frame broken.
                    lines--;
                    continue;
                }

                break;
            }

            if (lines >= MaxHeaderLines)
            {
                return Garbled($"more than {MaxHeaderLines} header lines");
            }

            int colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0)
            {
                return Garbled("a header line without 'Name: value'");
            }

            string name = line[..colon].Trim();
            string value = line[(colon + 1)..].Trim();
            if (name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
            {
                if (!long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out long length))
                {
                    return Garbled("Content-Length is not a decimal number");
                }

                if (length > MaxBodyBytes)
                {
                    return Garbled($"Content-Length {length} exceeds the {MaxBodyBytes}-byte limit");
                }

                contentLength = (int)length;
            }
            else if (name.Equals("Content-Type", StringComparison.OrdinalIgnoreCase))
            {
                refusal = CharsetRefusal(value);
            }
        }

        if (contentLength is not { } bodyLength)
        {
            return Garbled("no Content-Length header");
        }

        byte[]? body = await ReadBodyAsync(bodyLength, cancellationToken).ConfigureAwait(false);
        if (body is null)
        {
            return new LspFrame(LspFrameKind.Truncated);
        }

        refusal ??= bodyLength == 0 ? "an empty body" : null;
        return refusal is null ? new LspFrame(LspFrameKind.Message, body) : new LspFrame(LspFrameKind.Refused, Problem: refusal);
    }

    /// <summary>
    /// Null when a Content-Type value allows UTF-8 (no charset, or utf-8 spelled any way clients spell it), else
    /// why the message is refused: the JSON formatter reads UTF-8 only, and LSP allows nothing else.
    /// </summary>
    private static string? CharsetRefusal(string contentType)
    {
        foreach (string parameter in contentType.Split(';').Skip(1))
        {
            int eq = parameter.IndexOf('=', StringComparison.Ordinal);
            if (eq < 0 || !parameter[..eq].Trim().Equals("charset", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            // "utf8" is what early LSP clients sent; the spec accepts it for compatibility.
            string charset = parameter[(eq + 1)..].Trim().Trim('"').Trim();
            return charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase) || charset.Equals("utf8", StringComparison.OrdinalIgnoreCase)
                ? null
                : $"the unsupported charset '{charset}' (only utf-8 is accepted)";
        }

        return null;
    }

    private LspFrame Garbled(string problem, bool lineLeftUnread = false)
    {
        _resynchronise = true;
        _skipFirstByte = lineLeftUnread;
        return new LspFrame(LspFrameKind.Garbled, Problem: problem);
    }

    /// <summary>
    /// One header line without its line break (CRLF, or a bare LF from lenient clients); null with ended = true at
    /// the end of the stream, null with ended = false when no line break comes within <see cref="MaxHeaderLineBytes"/>.
    /// </summary>
    private async ValueTask<(string? Line, bool Ended)> ReadLineAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            var window = buffer.Slice(0, Math.Min(buffer.Length, MaxHeaderLineBytes + 2));
            if (window.PositionOf((byte)'\n') is { } newline)
            {
                string line = Encoding.Latin1.GetString(window.Slice(0, newline)).TrimEnd('\r');
                if (line.Length <= MaxHeaderLineBytes)
                {
                    reader.AdvanceTo(buffer.GetPosition(1, newline));
                    return (line, false);
                }
            }

            if (buffer.Length > MaxHeaderLineBytes + 1)
            {
                // Leave the bytes in place: the resynchronising scan that follows consumes them.
                reader.AdvanceTo(buffer.Start);
                return (null, false);
            }

            if (result.IsCompleted || result.IsCanceled)
            {
                reader.AdvanceTo(buffer.End);
                return (null, true);
            }

            reader.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    /// <summary>The body's bytes (copied: the pipe's buffer is reused), or null when the stream ends first.</summary>
    private async ValueTask<byte[]?> ReadBodyAsync(int length, CancellationToken cancellationToken)
    {
        var body = new byte[length];
        int filled = 0;
        while (filled < length)
        {
            var result = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            var chunk = result.Buffer.Slice(0, Math.Min(result.Buffer.Length, length - filled));
            chunk.CopyTo(body.AsSpan(filled));
            filled += (int)chunk.Length;
            reader.AdvanceTo(chunk.End);
            if (filled < length && (result.IsCompleted || result.IsCanceled))
            {
                return null;
            }
        }

        return body;
    }

    /// <summary>
    /// Discards input up to the next "Content-Length:" (where the next frame most likely starts), holding at most
    /// one read's worth of bytes at a time. False when the stream ends first.
    /// </summary>
    private async ValueTask<bool> SkipToNextContentLengthAsync(bool skipFirstByte, CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            if (skipFirstByte && buffer.Length > 0)
            {
                buffer = buffer.Slice(1);
                skipFirstByte = false;
            }

            if (IndexOf(buffer, ContentLengthName) is { } found)
            {
                reader.AdvanceTo(buffer.GetPosition(found));
                return true;
            }

            if (result.IsCompleted || result.IsCanceled)
            {
                reader.AdvanceTo(buffer.End);
                return false;
            }

            // Keep a tail shorter than the name: it may hold the name's first bytes, split across reads.
            long keep = Math.Min(buffer.Length, ContentLengthName.Length - 1);
            reader.AdvanceTo(buffer.GetPosition(buffer.Length - keep), buffer.End);
        }
    }

    private static long? IndexOf(ReadOnlySequence<byte> buffer, byte[] needle)
    {
        if (buffer.IsSingleSegment)
        {
            int i = buffer.FirstSpan.IndexOf(needle);
            return i < 0 ? null : i;
        }

        // Segments are scanned with their neighbours' edges so a needle split between two is still found.
        long offset = 0;
        byte[] carry = [];
        foreach (var segment in buffer)
        {
            byte[] joined = [.. carry, .. segment.Span];
            int i = joined.AsSpan().IndexOf(needle);
            if (i >= 0)
            {
                return offset - carry.Length + i;
            }

            int tail = Math.Min(joined.Length, needle.Length - 1);
            carry = joined[^tail..];
            offset += segment.Length;
        }

        return null;
    }
}
