// The one place where LSP positions (line + UTF-16 code unit) and offsets into the document text meet.
// .NET strings are UTF-16, so a character count is a char count; lines end at \n, \r\n or \r as LSP says.
namespace CodeLlamaLsp.Server.Protocol;

/// <summary>Line starts of one text, for converting positions to offsets and back.</summary>
public sealed class LineIndex
{
    private readonly string _text;

    // Offset of the first character of each line; line i's content ends where its line break begins.
    private readonly int[] _lineStarts;

    public LineIndex(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        _text = text;
        var starts = new List<int> { 0 };
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (c == '\r')
            {
                if (i + 1 < text.Length && text[i + 1] == '\n')
                {
                    i++;
                }

                starts.Add(i + 1);
            }
            else if (c == '\n')
            {
                starts.Add(i + 1);
            }
        }

        _lineStarts = [.. starts];
    }

    public int LineCount => _lineStarts.Length;

    /// <summary>Length of a line without its line break.</summary>
    public int LineLength(int line)
    {
        int start = _lineStarts[line];
        int end = line + 1 < _lineStarts.Length ? _lineStarts[line + 1] : _text.Length;
        while (end > start && (_text[end - 1] == '\n' || _text[end - 1] == '\r'))
        {
            end--;
        }

        return end - start;
    }

    /// <summary>
    /// The offset of a position, or null (with the reason) when the line does not exist, the character lies
    /// past the line's end, or it falls between the two halves of a surrogate pair.
    /// </summary>
    public int? TryGetOffset(Position position, out string? error)
    {
        ArgumentNullException.ThrowIfNull(position);
        error = null;
        if (position.Line < 0 || position.Line >= _lineStarts.Length)
        {
            error = $"line {position.Line} is outside the document (0..{_lineStarts.Length - 1})";
            return null;
        }

        int length = LineLength(position.Line);
        if (position.Character < 0 || position.Character > length)
        {
            error = $"character {position.Character} is outside line {position.Line} (0..{length})";
            return null;
        }

        int offset = _lineStarts[position.Line] + position.Character;
        if (offset > 0 && offset < _text.Length && char.IsHighSurrogate(_text[offset - 1]) && char.IsLowSurrogate(_text[offset]))
        {
            error = $"character {position.Character} of line {position.Line} splits a surrogate pair";
            return null;
        }

        return offset;
    }

    /// <summary>The position of an offset (0..text length); an offset inside a \r\n counts as the line's end.</summary>
    public Position GetPosition(int offset)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(offset, _text.Length);
        int line = Array.BinarySearch(_lineStarts, offset);
        if (line < 0)
        {
            line = ~line - 1;
        }

        return new Position(line, Math.Min(offset - _lineStarts[line], LineLength(line)));
    }
}

/// <summary>LSP -> text: positions and ranges to offsets, failing with a message that names the bad position.</summary>
public static class FromLsp
{
    public static int Offset(LineIndex index, Position position)
    {
        ArgumentNullException.ThrowIfNull(index);
        return index.TryGetOffset(position, out string? error) ?? throw new InvalidPositionException(error!);
    }

    /// <summary>Start and end offsets of a range; an end before its start is an error too.</summary>
    public static (int Start, int End) Span(LineIndex index, Range range)
    {
        ArgumentNullException.ThrowIfNull(range);
        int start = Offset(index, range.Start);
        int end = Offset(index, range.End);
        if (end < start)
        {
            throw new InvalidPositionException($"range end ({range.End.Line}:{range.End.Character}) lies before its start ({range.Start.Line}:{range.Start.Character})");
        }

        return (start, end);
    }
}

/// <summary>Text -> LSP: offsets to positions and ranges.</summary>
public static class ToLsp
{
    public static Position Position(LineIndex index, int offset)
    {
        ArgumentNullException.ThrowIfNull(index);
        return index.GetPosition(offset);
    }

    public static Range Range(LineIndex index, int start, int end) => new(Position(index, start), Position(index, end));
}

/// <summary>A position or range that does not exist in the document it names.</summary>
public sealed class InvalidPositionException : Exception
{
    public InvalidPositionException(string message)
        : base(message)
    {
    }

    public InvalidPositionException()
    {
    }

    public InvalidPositionException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
