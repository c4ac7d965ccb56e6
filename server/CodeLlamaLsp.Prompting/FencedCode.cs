// Reads code out of an instruct answer (the first ``` fenced block) and fits it into the document: the
// range's indentation, the file's tabs or spaces, the file's line ending.
namespace CodeLlamaLsp.Prompting;

/// <summary>Fenced-block extraction and reindentation.</summary>
public static class FencedCode
{
    /// <summary>
    /// The body of the first fenced block, with whether its closing fence was seen (an answer cut off by the
    /// token limit has none). Null when the answer has no fence at all.
    /// </summary>
    public static (string Code, bool Closed)? Extract(string answer)
    {
        ArgumentNullException.ThrowIfNull(answer);
        var lines = CompletionPostProcessor.NormalizeNewlines(answer).Split('\n');
        int open = Array.FindIndex(lines, l => l.TrimStart().StartsWith("```", StringComparison.Ordinal));
        if (open < 0)
        {
            return null;
        }

        int close = Array.FindIndex(lines, open + 1, l => l.TrimStart().StartsWith("```", StringComparison.Ordinal));
        var body = lines[(open + 1)..(close < 0 ? lines.Length : close)];
        return (CleanMarkers(string.Join('\n', body)), close >= 0);
    }

    /// <summary>Cuts at chat markers or special tokens that leaked into the text.</summary>
    public static string CleanMarkers(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        foreach (var marker in new[] { "[INST]", "[/INST]", "<<SYS>>", "<</SYS>>", "</s>", "<s>", "<EOT>" })
        {
            int at = text.IndexOf(marker, StringComparison.Ordinal);
            if (at >= 0)
            {
                text = text[..at];
            }
        }

        return text;
    }

    /// <summary>
    /// Shifts code so its least-indented line sits at <paramref name="baseIndent"/>, converting the
    /// indentation to the file's style, and trims blank lines at both ends. Lines use "\n".
    /// </summary>
    public static string Reindent(string code, string baseIndent, IndentStyle style)
    {
        ArgumentNullException.ThrowIfNull(code);
        ArgumentNullException.ThrowIfNull(baseIndent);
        ArgumentNullException.ThrowIfNull(style);
        var lines = code.Split('\n').Select(l => l.TrimEnd()).ToList();
        while (lines.Count > 0 && lines[0].Length == 0)
        {
            lines.RemoveAt(0);
        }

        while (lines.Count > 0 && lines[^1].Length == 0)
        {
            lines.RemoveAt(lines.Count - 1);
        }

        // The answer's own step (often 4 spaces) is rescaled to the file's (2 spaces, a tab).
        var answerStyle = IndentStyle.Detect(lines, style);
        var nonBlank = lines.Where(l => l.Length > 0).ToList();
        if (nonBlank.Count == 0)
        {
            return string.Empty;
        }

        int least = nonBlank.Min(l => answerStyle.Columns(TextLines.LeadingWhitespace(l)));
        int baseColumns = style.Columns(baseIndent);
        return string.Join('\n', lines.Select(line =>
        {
            if (line.Length == 0)
            {
                return line;
            }

            string lead = TextLines.LeadingWhitespace(line);
            int relative = answerStyle.Columns(lead) - least;
            int columns = baseColumns + (relative / answerStyle.Width * style.Width) + (relative % answerStyle.Width);
            return style.Render(columns) + line[lead.Length..];
        }));
    }

    /// <summary>Removes the indentation that all non-blank lines share, so quoted code starts at column 0.</summary>
    public static string Dedent(string code)
    {
        ArgumentNullException.ThrowIfNull(code);
        var lines = code.Split('\n');
        var nonBlank = lines.Where(l => !TextLines.IsBlank(l)).ToList();
        if (nonBlank.Count == 0)
        {
            return code;
        }

        string shared = TextLines.LeadingWhitespace(nonBlank[0]);
        foreach (var line in nonBlank)
        {
            int common = 0;
            while (common < shared.Length && common < line.Length && line[common] == shared[common])
            {
                common++;
            }

            shared = shared[..common];
        }

        return string.Join('\n', lines.Select(l => TextLines.IsBlank(l) ? string.Empty : l[shared.Length..]));
    }

    /// <summary>Applies a line ending to "\n"-separated text.</summary>
    public static string WithLineEnding(string text, string lineEnding)
    {
        ArgumentNullException.ThrowIfNull(text);
        return lineEnding == "\n" ? text : text.Replace("\n", lineEnding, StringComparison.Ordinal);
    }
}
