// The file's indentation (tabs or N spaces), detected from its own lines so that inserted code matches it.
namespace CodeLlamaLsp.Prompting;

/// <summary>One indentation level: a tab, or <see cref="Width"/> spaces.</summary>
public sealed record IndentStyle(bool UseTabs, int Width)
{
    public static readonly IndentStyle FourSpaces = new(false, 4);

    /// <summary>The text of one level.</summary>
    public string Unit => UseTabs ? "\t" : new string(' ', Width);

    /// <summary>Visual width of leading whitespace, counting a tab as one level.</summary>
    public int Columns(string leadingWhitespace)
    {
        ArgumentNullException.ThrowIfNull(leadingWhitespace);
        int columns = 0;
        foreach (char c in leadingWhitespace)
        {
            columns += c == '\t' ? Width : 1;
        }

        return columns;
    }

    /// <summary>Leading whitespace for a visual width, in this style (spaces fill what a tab cannot).</summary>
    public string Render(int columns)
    {
        if (columns <= 0)
        {
            return string.Empty;
        }

        return UseTabs ? new string('\t', columns / Width) + new string(' ', columns % Width) : new string(' ', columns);
    }

    /// <summary>
    /// Detects the style from the lines' leading whitespace: tabs if more lines start with a tab, otherwise
    /// the most common positive difference between consecutive indented lines (2, 4 or 8 usually).
    /// </summary>
    public static IndentStyle Detect(IEnumerable<string> lines, IndentStyle? fallback = null)
    {
        ArgumentNullException.ThrowIfNull(lines);
        int tabs = 0;
        int spaces = 0;
        var deltas = new Dictionary<int, int>();
        int previous = 0;
        foreach (var line in lines)
        {
            if (TextLines.IsBlank(line))
            {
                continue;
            }

            var lead = TextLines.LeadingWhitespace(line);
            if (lead.StartsWith('\t'))
            {
                tabs++;
                continue;
            }

            if (lead.Length > 0)
            {
                spaces++;
            }

            int delta = lead.Length - previous;
            if (delta is > 0 and <= 8)
            {
                deltas[delta] = deltas.GetValueOrDefault(delta) + 1;
            }

            previous = lead.Length;
        }

        if (tabs > spaces)
        {
            return new IndentStyle(true, fallback?.Width ?? 4);
        }

        if (deltas.Count == 0)
        {
            return fallback ?? FourSpaces;
        }

        // Ties go to the smaller width: a 2-space file has as many 4-column steps (nested openers) as 2-column ones.
        int width = deltas.OrderByDescending(pair => pair.Value).ThenBy(pair => pair.Key).First().Key;
        return new IndentStyle(false, width == 1 ? (fallback ?? FourSpaces).Width : width);
    }
}
