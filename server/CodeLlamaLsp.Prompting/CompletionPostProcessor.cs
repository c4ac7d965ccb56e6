// Turns the model's raw answer into the text the editor inserts. Each rule answers a complaint users have
// about completion tools: leaked special tokens and fences, repeats of the code below the cursor, wrong
// indentation, ^M in CRLF files, doubled auto-closed brackets, runaway multi-line answers.
namespace CodeLlamaLsp.Prompting;

/// <summary>Post-processes generated completions; every step is pure.</summary>
public static class CompletionPostProcessor
{
    /// <summary>Text that never belongs in code: where one appears the answer has left the code.</summary>
    private static readonly string[] LeakMarkers =
        ["```", "[INST]", "[/INST]", "<<SYS>>", "<</SYS>>", "<s>", "</s>", "<EOT>", "<PRE>", "<SUF>", "<MID>", "<unk>"];

    /// <summary>The edit for a generated answer, or null when nothing worth inserting remains.</summary>
    public static CompletionEdit? Process(CompletionContext context, string generated)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(generated);
        string text = CutAtLeaks(NormalizeNewlines(generated));
        text = DropHeldBackWhitespace(context, text);
        text = context.MultiLine ? CutAtBlockEnd(context, text) : FirstLine(text);
        text = MatchIndentation(context, text);
        text = context.MultiLine ? TrimRepeatedNextLines(context, text) : TrimLineSuffixOverlap(context.LineSuffix, text);
        text = TrimTrailingWhitespace(text);
        if (IsJunk(text))
        {
            return null;
        }

        return new CompletionEdit(context.LineEnding == "\n" ? text : text.Replace("\n", context.LineEnding, StringComparison.Ordinal), new TextRange(context.CursorOffset, context.CursorOffset));
    }

    /// <summary>
    /// True when the answer streamed so far is already past the end of what will be inserted: a leaked
    /// marker or closing fence, a line break in single-line mode, or a complete line beyond the end of the
    /// cursor's block. The server can then stop generating instead of waiting for a stop string.
    /// </summary>
    public static bool IsFinished(CompletionContext context, string generatedSoFar)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(generatedSoFar);
        string text = NormalizeNewlines(generatedSoFar);
        int lastNewline = text.LastIndexOf('\n');
        if (lastNewline < 0)
        {
            return false;
        }

        // Only complete lines are judged: the line being written may still turn out differently.
        string complete = text[..lastNewline];
        string body = CutAtLeaks(complete);
        bool restartedFence = complete.TrimStart().StartsWith("```", StringComparison.Ordinal);
        int expected = restartedFence ? complete.Length - complete.IndexOf('\n', StringComparison.Ordinal) - 1 : complete.Length;
        if (body.Length < Math.Max(0, expected))
        {
            return true;
        }

        if (!context.MultiLine)
        {
            return true;
        }

        body = DropHeldBackWhitespace(context, body);
        return CutAtBlockEnd(context, body).Length < body.Length;
    }

    /// <summary>"\r\n" and lone "\r" become "\n"; the file's line ending is applied at the very end.</summary>
    internal static string NormalizeNewlines(string text) =>
        text.Replace("\r\n", "\n", StringComparison.Ordinal).Replace('\r', '\n');

    /// <summary>
    /// Cuts at the first special token, chat marker or fence. An answer that opens with a fence line
    /// (the model restarting its code block) keeps what follows that line.
    /// </summary>
    internal static string CutAtLeaks(string text)
    {
        if (text.TrimStart().StartsWith("```", StringComparison.Ordinal))
        {
            int newline = text.IndexOf('\n', StringComparison.Ordinal);
            text = newline < 0 ? string.Empty : text[(newline + 1)..];
        }

        int cut = text.Length;
        foreach (var marker in LeakMarkers)
        {
            int at = text.IndexOf(marker, StringComparison.Ordinal);
            if (at >= 0 && at < cut)
            {
                cut = at;
            }
        }

        return cut == text.Length ? text : text[..cut];
    }

    /// <summary>The prompt left trailing spaces of the line out; the answer repeating them must not double them.</summary>
    internal static string DropHeldBackWhitespace(CompletionContext context, string text)
    {
        string held = context.HeldBackWhitespace;
        return held.Length > 0 && text.StartsWith(held, StringComparison.Ordinal) ? text[held.Length..] : text;
    }

    /// <summary>Single-line mode keeps the answer up to its first line break.</summary>
    internal static string FirstLine(string text)
    {
        int newline = text.IndexOf('\n', StringComparison.Ordinal);
        return newline < 0 ? text : text[..newline];
    }

    /// <summary>
    /// Multi-line answers end with the cursor's block: at the first later line indented less than the block,
    /// or where a closing brace closes more than the answer opened. A closing line of brackets that the
    /// document does not already have right below the cursor is kept, so that the block is complete.
    /// </summary>
    internal static string CutAtBlockEnd(CompletionContext context, string text)
    {
        var lines = text.Split('\n');
        int depth = 0;
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i];
            if (i > 0 && !TextLines.IsBlank(line))
            {
                int columns = context.Indent.Columns(TextLines.LeadingWhitespace(line));
                if (columns < context.BlockIndentColumns)
                {
                    bool keepCloser = IsClosingLine(line) && !NextCodeLineStartsWith(context, line.Trim()) && depth + OpenerCountOnCursorLine(context) > 0;
                    return string.Join('\n', lines[..(keepCloser ? i + 1 : i)]);
                }
            }

            if (context.Language.UsesBraces)
            {
                var (_, _, curly) = BlockSyntax.Balance(line);
                depth += curly;
                if (depth < 0 && !(i > 0 && IsClosingLine(line)))
                {
                    // A brace closing the cursor's block mid-line: keep the line up to it.
                    int close = line.LastIndexOf('}');
                    return string.Join('\n', lines[..i].Append(line[..close].TrimEnd()));
                }
            }
        }

        return text;
    }

    private static bool IsClosingLine(string line)
    {
        string trimmed = line.Trim();
        return trimmed.Length > 0 && BlockSyntax.IsCloseBracket(trimmed[0]) && trimmed.All(c => BlockSyntax.IsCloseBracket(c) || c is ';' or ',' or ' ');
    }

    private static int OpenerCountOnCursorLine(CompletionContext context) =>
        BlockSyntax.EndsWithOpener(context.LinePrefix) && context.Language.UsesBraces ? 1 : 0;

    private static bool NextCodeLineStartsWith(CompletionContext context, string trimmed)
    {
        var next = context.NextLines.FirstOrDefault(l => !TextLines.IsBlank(l));
        return next != null && trimmed.Length > 0 && next.TrimStart().StartsWith(trimmed[0]);
    }

    /// <summary>
    /// Multi-line: the answer stops where it starts reproducing the lines that already follow the cursor;
    /// an answer made only of those lines is dropped.
    /// </summary>
    internal static string TrimRepeatedNextLines(CompletionContext context, string text)
    {
        var next = context.NextLines.Where(l => !TextLines.IsBlank(l)).Take(3).Select(l => LineKey(context, l)).ToList();
        if (next.Count == 0)
        {
            return text;
        }

        var lines = text.Split('\n');
        var keys = lines.Select((l, i) => TextLines.IsBlank(l) ? null : LineKey(context, i == 0 ? context.LinePrefix + l : l)).ToArray();
        for (int i = 0; i < lines.Length; i++)
        {
            if (keys[i] != null && StartsRepeat(keys, i, next))
            {
                return string.Join('\n', lines[..i]);
            }
        }

        return text;
    }

    /// <summary>
    /// What two lines must share to count as the same: the code, and for a line of closing brackets also
    /// its indentation (a "}" closing the answer's own inner block is not the "}" of the enclosing one).
    /// </summary>
    private static string LineKey(CompletionContext context, string line) =>
        IsClosingLine(line) ? context.Indent.Columns(TextLines.LeadingWhitespace(line)) + ":" + line.Trim() : line.Trim();

    /// <summary>True when the answer's non-blank lines from <paramref name="start"/> match the next lines as far as both go.</summary>
    private static bool StartsRepeat(string?[] keys, int start, List<string> next)
    {
        int matched = 0;
        int answerLines = 0;
        for (int i = start; i < keys.Length; i++)
        {
            if (keys[i] == null)
            {
                continue;
            }

            answerLines++;
            if (matched < next.Count)
            {
                if (keys[i] != next[matched])
                {
                    return false;
                }

                matched++;
            }
        }

        // One matching line is a repeat only when the answer ends with it (a lone "}" or "return x").
        return matched >= Math.Min(2, next.Count) || matched == answerLines;
    }

    /// <summary>
    /// Single-line: the answer's tail that reproduces the start of the text right of the cursor is cut
    /// (cursor before an auto-closed ")" and the answer ends in ")"), unless cutting would leave a bracket
    /// the answer opened unclosed. An answer that only reproduces that text is dropped.
    /// </summary>
    internal static string TrimLineSuffixOverlap(string lineSuffix, string text)
    {
        string right = lineSuffix.TrimEnd();
        if (right.Length == 0 || text.Length == 0)
        {
            return text;
        }

        if (right.StartsWith(text.Trim(), StringComparison.Ordinal) && text.Trim().Length > 0)
        {
            return string.Empty;
        }

        for (int k = Math.Min(text.Length, right.Length); k > 0; k--)
        {
            if (!text.EndsWith(right[..k], StringComparison.Ordinal))
            {
                continue;
            }

            string kept = text[..^k];
            var (round, square, curly) = BlockSyntax.Balance(kept);
            var (fullRound, fullSquare, fullCurly) = BlockSyntax.Balance(text);

            // Keep the overlap when the answer needs it to close what it opened itself.
            bool closesOwnBracket = (round > 0 && round > fullRound) || (square > 0 && square > fullSquare) || (curly > 0 && curly > fullCurly);
            if (!closesOwnBracket)
            {
                return kept;
            }
        }

        return text;
    }

    /// <summary>
    /// Lines after the first take the file's indentation: tabs or spaces, and its width when the model used
    /// another one. Widths are rescaled relative to the block, never below it.
    /// </summary>
    internal static string MatchIndentation(CompletionContext context, string text)
    {
        var lines = text.Split('\n');
        if (lines.Length < 2)
        {
            return text;
        }

        var file = context.Indent;
        int block = context.BlockIndentColumns;
        int modelStep = ModelIndentStep(lines, file, block);
        for (int i = 1; i < lines.Length; i++)
        {
            if (TextLines.IsBlank(lines[i]))
            {
                lines[i] = string.Empty;
                continue;
            }

            string lead = TextLines.LeadingWhitespace(lines[i]);
            int columns = file.Columns(lead);
            if (modelStep != file.Width && columns > block)
            {
                int relative = columns - block;
                columns = block + (relative / modelStep * file.Width) + (relative % modelStep);
            }

            lines[i] = file.Render(columns) + lines[i][lead.Length..];
        }

        return string.Join('\n', lines);
    }

    /// <summary>The indentation step the model used inside the block, when every deeper line agrees on it.</summary>
    private static int ModelIndentStep(string[] lines, IndentStyle file, int block)
    {
        var relative = lines.Skip(1)
            .Where(l => !TextLines.IsBlank(l) && !TextLines.LeadingWhitespace(l).Contains('\t', StringComparison.Ordinal))
            .Select(l => TextLines.LeadingWhitespace(l).Length - block)
            .Where(r => r > 0)
            .ToList();
        if (file.UseTabs || relative.Count == 0)
        {
            return file.Width;
        }

        int step = relative.Min();
        return step is 2 or 4 or 8 && relative.All(r => r % step == 0) ? step : file.Width;
    }

    private static string TrimTrailingWhitespace(string text)
    {
        var lines = text.Split('\n').Select(l => l.TrimEnd(' ', '\t')).ToList();
        while (lines.Count > 1 && lines[^1].Length == 0)
        {
            lines.RemoveAt(lines.Count - 1);
        }

        return string.Join('\n', lines);
    }

    /// <summary>Whitespace only, replacement characters (broken bytes) or control characters: nothing to insert.</summary>
    internal static bool IsJunk(string text) =>
        string.IsNullOrWhiteSpace(text) || text.Any(c => c == '\uFFFD' || (char.IsControl(c) && c is not '\n' and not '\t'));
}
