// A line index over a document's text: line starts, line contents without their line break, and the
// file's line-ending style. Built once per request in one pass; nothing here tokenizes.
namespace CodeLlamaLsp.Prompting;

/// <summary>Lines of a text, split at "\n" with a preceding "\r" kept out of the content.</summary>
internal sealed class TextLines
{
    private readonly string _text;
    private readonly List<int> _starts = [0];

    public TextLines(string text)
    {
        _text = text;
        int crlf = 0;
        int lf = 0;
        for (int i = 0; i < text.Length; i++)
        {
            if (text[i] == '\n')
            {
                _starts.Add(i + 1);
                if (i > 0 && text[i - 1] == '\r')
                {
                    crlf++;
                }
                else
                {
                    lf++;
                }
            }
        }

        UsesCrlf = crlf > lf;
    }

    public int Count => _starts.Count;

    /// <summary>True when most line breaks are "\r\n": inserted text then gets "\r\n" too.</summary>
    public bool UsesCrlf { get; }

    public string LineEnding => UsesCrlf ? "\r\n" : "\n";

    public int LineStart(int line) => _starts[line];

    /// <summary>End of the line's content (before "\r\n" or "\n").</summary>
    public int LineEnd(int line)
    {
        int end = line + 1 < _starts.Count ? _starts[line + 1] - 1 : _text.Length;
        if (line + 1 < _starts.Count && end > _starts[line] && _text[end - 1] == '\r')
        {
            end--;
        }

        return end;
    }

    public string this[int line] => _text[LineStart(line)..LineEnd(line)];

    /// <summary>The first <paramref name="maxChars"/> characters of a line: all that indentation or a comparison needs of a very long one.</summary>
    public string Head(int line, int maxChars) => _text.Substring(LineStart(line), Math.Min(maxChars, LineEnd(line) - LineStart(line)));

    public int LineLength(int line) => LineEnd(line) - LineStart(line);

    /// <summary>The line holding an offset (an offset at a line break belongs to the line it ends).</summary>
    public int LineOf(int offset)
    {
        int index = _starts.BinarySearch(offset);
        return index >= 0 ? index : ~index - 1;
    }

    /// <summary>Lines [first, last] joined with "\n", whatever the file uses: prompts always see "\n".</summary>
    public string Join(int first, int last)
    {
        if (last < first)
        {
            return string.Empty;
        }

        var builder = new System.Text.StringBuilder();
        for (int line = first; line <= last; line++)
        {
            if (line > first)
            {
                builder.Append('\n');
            }

            builder.Append(this[line]);
        }

        return builder.ToString();
    }

    public static bool IsBlank(string line) => string.IsNullOrWhiteSpace(line);

    /// <summary>Leading spaces and tabs of a line.</summary>
    public static string LeadingWhitespace(string line)
    {
        int i = 0;
        while (i < line.Length && (line[i] == ' ' || line[i] == '\t'))
        {
            i++;
        }

        return line[..i];
    }
}
