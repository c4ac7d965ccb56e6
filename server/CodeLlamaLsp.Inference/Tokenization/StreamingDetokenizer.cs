// Turns generated ids into text one id at a time, in O(1) per id, with sentencepiece's decoding rules:
// spaces kept, special pieces invisible, byte-fallback runs assembled into UTF-8 and never split mid-character.
using System.Text;

namespace CodeLlamaLsp.Inference.Tokenization;

/// <summary>
/// Incremental decoder. Concatenating everything <see cref="Push(int)"/> and <see cref="Finish()"/> return
/// equals <see cref="LlamaTokenizer.Decode"/> of the same ids when <c>isStartOfText</c> is true; with false
/// (the default, for text that continues a prompt) the first piece keeps its leading space too.
/// </summary>
public sealed class StreamingDetokenizer
{
    private const char SpaceSymbol = '\u2581';
    private const char ReplacementCharacter = '\uFFFD';

    private readonly LlamaTokenizer _tokenizer;

    // An incomplete UTF-8 character from byte pieces: at most 3 bytes ever wait for the rest.
    private readonly byte[] _pendingBytes = new byte[4];
    private int _pendingCount;

    // sentencepiece's is_bos_ws / bos_ws_seen: only the very first "▁" of the text is a dummy prefix.
    private bool _mayStripSpace;
    private bool _strippedSpace;
    private bool _emittedText;

    public StreamingDetokenizer(LlamaTokenizer tokenizer, bool isStartOfText = false)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        _tokenizer = tokenizer;
        _mayStripSpace = isStartOfText && tokenizer.StripsDummyPrefix;
    }

    /// <summary>Bytes of a UTF-8 character still waiting for the byte pieces that complete it.</summary>
    public int HeldBackByteCount => _pendingCount;

    /// <summary>Adds one id and returns the text it completes (often empty for a byte piece or a control id).</summary>
    public string Push(int id)
    {
        var text = new StringBuilder();
        Push(id, text);
        return text.ToString();
    }

    /// <summary>Ends the stream: bytes of a character that never completed come out as U+FFFD, one per byte.</summary>
    public string Finish()
    {
        var text = new StringBuilder();
        Finish(text);
        return text.ToString();
    }

    internal void Push(int id, StringBuilder output)
    {
        var type = _tokenizer.GetPieceType(id);
        var piece = _tokenizer.IdToPiece(id);
        if (type == SentencePieceType.Byte)
        {
            _pendingBytes[_pendingCount++] = ParseBytePiece(piece);
            DrainBytes(output, isRunComplete: false);
            return;
        }

        DrainBytes(output, isRunComplete: true);
        if (_strippedSpace || _emittedText)
        {
            _mayStripSpace = false;
        }

        _strippedSpace = false;
        var start = output.Length;
        switch (type)
        {
            case SentencePieceType.Control:
                break;
            case SentencePieceType.Unknown:
                output.Append(_tokenizer.UnknownSurface);
                break;
            default:
                var skip = 0;
                if (_mayStripSpace && piece[0] == SpaceSymbol)
                {
                    skip = 1;
                    _strippedSpace = true;
                }

                output.Append(piece, skip, piece.Length - skip);
                output.Replace(SpaceSymbol, ' ', start, output.Length - start);
                break;
        }

        _emittedText |= output.Length > start;
    }

    internal void Finish(StringBuilder output) => DrainBytes(output, isRunComplete: true);

    private static byte ParseBytePiece(string piece)
    {
        // Byte pieces are "<0xNN>"; the tokenizer checked their type, so the shape is certain.
        return Convert.ToByte(piece.Substring(3, 2), 16);
    }

    private static void AppendCodePoint(StringBuilder output, int codePoint)
    {
        if (codePoint < 0x10000)
        {
            output.Append((char)codePoint);
        }
        else
        {
            output.Append((char)(0xD800 + ((codePoint - 0x10000) >> 10))).Append((char)(0xDC00 + ((codePoint - 0x10000) & 0x3FF)));
        }
    }

    private static bool IsTrailByte(byte b) => (b & 0xC0) == 0x80;

    private static bool IsValidCodePoint(int c) => c < 0xD800 || (c >= 0xE000 && c <= 0x10FFFF);

    /// <summary>
    /// Decodes pending bytes as sentencepiece does (each byte of a malformed sequence becomes U+FFFD). While
    /// the run may continue, an incomplete character waits; once it is complete, its missing bytes are errors.
    /// </summary>
    private void DrainBytes(StringBuilder output, bool isRunComplete)
    {
        var start = output.Length;
        var pos = 0;
        while (pos < _pendingCount)
        {
            var lead = _pendingBytes[pos];
            var needed = lead < 0x80 ? 1
                : (lead & 0xE0) == 0xC0 ? 2
                : (lead & 0xF0) == 0xE0 ? 3
                : (lead & 0xF8) == 0xF0 ? 4
                : 0;
            var available = _pendingCount - pos;
            if (needed > available && !isRunComplete)
            {
                break;
            }

            var codePoint = needed == 0 || needed > available ? -1 : DecodeSequence(pos, needed);
            if (codePoint < 0)
            {
                output.Append(ReplacementCharacter);
                pos++;
            }
            else
            {
                AppendCodePoint(output, codePoint);
                pos += needed;
            }
        }

        Array.Copy(_pendingBytes, pos, _pendingBytes, 0, _pendingCount - pos);
        _pendingCount -= pos;
        _emittedText |= output.Length > start;
    }

    /// <summary>The code point of a complete sequence, or -1 where sentencepiece's DecodeUTF8 rejects it.</summary>
    private int DecodeSequence(int pos, int length)
    {
        var b = _pendingBytes.AsSpan(pos, length);
        for (var i = 1; i < length; i++)
        {
            if (!IsTrailByte(b[i]))
            {
                return -1;
            }
        }

        var (codePoint, minimum) = length switch
        {
            1 => (b[0], 0),
            2 => (((b[0] & 0x1F) << 6) | (b[1] & 0x3F), 0x80),
            3 => (((b[0] & 0x0F) << 12) | ((b[1] & 0x3F) << 6) | (b[2] & 0x3F), 0x800),
            _ => (((b[0] & 0x07) << 18) | ((b[1] & 0x3F) << 12) | ((b[2] & 0x3F) << 6) | (b[3] & 0x3F), 0x10000),
        };
        return codePoint >= minimum && IsValidCodePoint(codePoint) ? codePoint : -1;
    }
}
