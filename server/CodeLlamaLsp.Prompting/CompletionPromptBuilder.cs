// Builds the completion prompt for the code at the cursor, within a token budget measured with the real
// tokenizer. Two forms: an instruct conversation whose answer is primed with the code before the cursor
// (CodeLlama-34B-Instruct has no infilling), and PSM infilling for checkpoints with the infilling tokens.
//
// Prefix-cache stability, which is what keeps completion latency low while the user types:
// - Everything that does not change while the user types at the cursor comes first: the system text,
//   snippets from other files and the code after the cursor (typing never changes the suffix). The code
//   before the cursor, which grows with each keystroke, comes last, in the answer turn.
// - The prefix window starts at a line that is a multiple of an anchor step (PrefixAnchorLines, a power
//   of two, less when few lines fit), rounded towards the cursor (fewer lines, so it still fits), so it
//   moves in coarse steps rather than with every keystroke.
// - Each budget share is computed from the fixed template alone, never from what another part used this
//   time, except that the prefix takes what the suffix and snippets left; the suffix therefore stays put.
// - Segments are encoded separately (one dummy prefix per call, FACTS.md) and their ids joined, so a
//   change at the tail never re-tokenizes the head.
// PSM infilling puts the suffix after the prefix, so there the cache keeps only the head and the prefix.
using CodeLlamaLsp.Inference.Generation;
using CodeLlamaLsp.Inference.Tokenization;

namespace CodeLlamaLsp.Prompting;

/// <summary>Builds <see cref="CompletionPrompt"/>s.</summary>
public static class CompletionPromptBuilder
{
    /// <summary>CodeLlama infilling ids (FACTS.md): ▁&lt;PRE&gt;, ▁&lt;SUF&gt;, ▁&lt;MID&gt;, ▁&lt;EOT&gt;.</summary>
    public const int PrefixId = 32007;

    public const int SuffixId = 32008;

    public const int MiddleId = 32009;

    public const int EndOfTextId = 32010;

    /// <summary>Vocabulary size of checkpoints that have the infilling tokens.</summary>
    public const int InfillVocabSize = 32016;

    internal const string CompletionSystem =
        "You are a code completion engine inside a code editor. Continue the user's code exactly where it stops, "
        + "in the same style and indentation. Answer with code only, and stop at the end of the current statement or block.";

    /// <summary>Lines of the code before the cursor that snippets are matched against.</summary>
    private const int SnippetQueryLines = 30;

    /// <summary>Lines after the cursor kept for post-processing (repetition checks).</summary>
    private const int NextLinesKept = 64;

    /// <summary>Lines around the cursor used to detect the file's indentation.</summary>
    private const int IndentSampleLines = 400;

    /// <summary>
    /// An upper bound on the characters one token covers (Llama's longest piece is 16). Text longer than
    /// budget x this cannot fit the budget, so a long line is cut to that before it is tokenized: the cost of a
    /// completion follows the window used, not the length of a minified line.
    /// </summary>
    private const int MaxCharsPerToken = 32;

    /// <summary>
    /// The most of the cursor line kept on each side of the cursor (1M characters, more than any prompt budget
    /// can use at <see cref="MaxCharsPerToken"/>), so a 15 MB one-line file is not copied whole per keystroke.
    /// </summary>
    private const int MaxCursorLineChars = 1 << 20;

    /// <summary>What is kept of each line after the cursor for the repetition checks (longer than any answer).</summary>
    private const int MaxNextLineChars = 1 << 16;

    /// <summary>What indentation detection reads of each sample line.</summary>
    private const int IndentSampleChars = 1024;

    /// <summary>Tokens kept free for the variation of section headers between the measured template and the real one.</summary>
    private const int SafetyTokens = 8;

    /// <summary>Tokens of the "code from other open files" header, paid with the first snippet.</summary>
    private const int SnippetHeaderTokens = 16;

    /// <summary>Builds the prompt for the snapshot's cursor.</summary>
    public static CompletionPrompt Build(EditorSnapshot snapshot, ITokenizer tokenizer, ModelInfo model, PromptSettings? settings = null)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(model);
        settings ??= new PromptSettings();
        var mode = ResolveMode(settings.Mode, model);
        var language = LanguageInfo.For(snapshot.LanguageId);
        var lines = new TextLines(snapshot.Text);
        var counter = new LineTokenCounter(tokenizer);

        var context = DescribeCursor(snapshot, lines);
        int maxNew = context.MultiLine ? settings.MaxNewTokens : settings.MaxNewTokensSingleLine;
        int limit = Math.Min(model.ContextLength - maxNew, settings.MaxPromptTokens);
        if (limit < 64)
        {
            throw new ArgumentException($"The prompt budget is {limit} tokens (context {model.ContextLength}, answer {maxNew}, cap {settings.MaxPromptTokens}); completions need at least 64.", nameof(model));
        }

        int cursorLine = lines.LineOf(snapshot.CursorOffset);
        string linePrefix = context.LinePrefix[..^context.HeldBackWhitespace.Length];
        var parts = new PromptParts(mode, language, snapshot.Path, [], string.Empty, string.Empty, string.Empty, 0);
        int available = limit - Assemble(parts with { Suffix = "x" }, tokenizer).Ids.Count - SafetyTokens;

        // The suffix: the rest of the cursor line, then the following lines, nearest first.
        int suffixBudget = (int)(available * settings.SuffixShare);
        var (suffix, suffixUsed) = TakeSuffix(lines, cursorLine, context.LineSuffix, suffixBudget, counter);

        // Snippets from other documents, matched against the full lines before the cursor line (not the
        // line being typed, so the choice does not flicker with each keystroke).
        int snippetBudget = Math.Min(settings.MaxSnippetTokens, (int)(available * settings.SnippetShare));
        string query = lines.Join(Math.Max(0, cursorLine - SnippetQueryLines), cursorLine - 1);
        var snippets = new List<Snippet>();
        int snippetsUsed = 0;
        foreach (var snippet in SnippetSelector.Candidates(snapshot, query, settings.SnippetLines, settings.MaxSnippets))
        {
            int cost = counter.CountText(FormatSnippet(mode, language, snippet), addDummyPrefix: false) + (snippets.Count == 0 ? SnippetHeaderTokens : 2);
            if (snippetsUsed + cost <= snippetBudget)
            {
                snippets.Add(snippet);
                snippetsUsed += cost;
            }
        }

        // The snippets read best with the most similar nearest the code.
        snippets.Reverse();

        // The prefix: the cursor line's text before the cursor, then lines upward while they fit.
        int prefixBudget = available - suffixUsed - snippetsUsed;
        linePrefix = KeepTail(linePrefix, prefixBudget, counter);
        int used = counter.CountText(linePrefix, addDummyPrefix: false);
        int first = cursorLine;
        while (first > 0 && Fits(lines, first - 1, prefixBudget - used, counter))
        {
            first--;
            used += counter.CountWithNewline(lines[first]);
        }

        int anchor = AnchorLine(first, cursorLine, settings.PrefixAnchorLines);
        parts = new PromptParts(mode, language, snapshot.Path, snippets, suffix, lines.Join(anchor, cursorLine - 1), linePrefix, anchor);
        var (ids, text) = Assemble(parts, tokenizer);

        // Per-line counts are exact for sentencepiece but the window must hold whatever the tokenizer does:
        // drop lines from the top until the measured prompt fits.
        while (ids.Count > limit && anchor < cursorLine)
        {
            int over = ids.Count - limit;
            while (over > 0 && anchor < cursorLine)
            {
                over -= counter.CountWithNewline(lines[anchor]);
                anchor++;
            }

            parts = parts with { Window = lines.Join(anchor, cursorLine - 1), WindowFirstLine = anchor };
            (ids, text) = Assemble(parts, tokenizer);
        }

        if (ids.Count > limit)
        {
            throw new InvalidOperationException($"The completion prompt for '{snapshot.Path}' needs {ids.Count} tokens, over the budget of {limit}, even without the lines before the cursor.");
        }

        var options = new GenerationOptions
        {
            MaxNewTokens = maxNew,
            Temperature = settings.Temperature,
            TopK = 40,
            TopP = 0.95f,

            // A repetition penalty pushes code away from the identifiers it must repeat.
            RepetitionPenalty = 1f,
            StopTokenIds = mode == PromptMode.Infill ? [EndOfTextId, tokenizer.EosId] : [tokenizer.EosId],
            StopStrings = StopStrings(mode, context.MultiLine),
        };
        return new CompletionPrompt(ids, text, options, context, mode);
    }

    /// <summary>Auto picks infilling when the model has the tokens; a forced infill on a model without them is an error.</summary>
    public static PromptMode ResolveMode(PromptMode requested, ModelInfo model)
    {
        ArgumentNullException.ThrowIfNull(model);
        bool hasInfillTokens = model.SupportsInfill && model.VocabSize >= InfillVocabSize;
        return requested switch
        {
            PromptMode.Auto => hasInfillTokens ? PromptMode.Infill : PromptMode.Instruct,
            PromptMode.Infill when !hasInfillTokens => throw new InvalidOperationException(
                $"promptMode 'infill' needs a checkpoint with the infilling tokens (vocabulary {InfillVocabSize}); '{model.Name}' has {model.VocabSize}{(model.SupportsInfill ? string.Empty : " and no infilling")}. Use 'auto' or 'instruct'."),
            _ => requested,
        };
    }

    private static List<string> StopStrings(PromptMode mode, bool multiLine)
    {
        var stops = new List<string>();
        if (mode == PromptMode.Instruct)
        {
            stops.Add("```");
        }

        // Two blank lines end a top-level definition in most styles: a natural place for a multi-line answer to stop.
        stops.Add(multiLine ? "\n\n\n" : "\n");
        return stops;
    }

    /// <summary>
    /// The first line of the prefix window, rounded up to a multiple of the anchor step so that it moves in
    /// steps. The step is the largest power of two no larger than <paramref name="step"/> nor a quarter of
    /// the lines that fit, so a small budget loses at most a quarter of its window to the rounding, and the
    /// step itself changes only when the fitting window doubles or halves.
    /// </summary>
    internal static int AnchorLine(int firstThatFits, int cursorLine, int step)
    {
        int quarter = (cursorLine - firstThatFits) / 4;
        int effective = 1;
        while (effective * 2 <= Math.Min(step, quarter))
        {
            effective *= 2;
        }

        if (firstThatFits == 0 || effective <= 1)
        {
            return firstThatFits;
        }

        return (firstThatFits + effective - 1) / effective * effective;
    }

    /// <summary>What post-processing needs to know about the cursor (also usable without building a prompt).</summary>
    public static CompletionContext DescribeCursor(EditorSnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        return DescribeCursor(snapshot, new TextLines(snapshot.Text));
    }

    private static CompletionContext DescribeCursor(EditorSnapshot snapshot, TextLines lines)
    {
        var language = LanguageInfo.For(snapshot.LanguageId);
        int cursor = snapshot.CursorOffset;
        int line = lines.LineOf(cursor);
        int lineStart = lines.LineStart(line);
        int lineEnd = lines.LineEnd(line);
        int prefixStart = Math.Max(lineStart, Math.Min(cursor, lineEnd) - MaxCursorLineChars);
        string linePrefix = snapshot.Text[prefixStart..Math.Min(cursor, lineEnd)];
        string lineSuffix = cursor <= lineEnd ? snapshot.Text[cursor..Math.Min(lineEnd, cursor + MaxCursorLineChars)] : string.Empty;

        int sampleFirst = Math.Max(0, line - (IndentSampleLines / 2));
        int sampleLast = Math.Min(lines.Count - 1, line + (IndentSampleLines / 2));
        var indent = IndentStyle.Detect(Enumerable.Range(sampleFirst, sampleLast - sampleFirst + 1).Select(i => lines.Head(i, IndentSampleChars)));

        bool opener = BlockSyntax.EndsWithOpener(linePrefix);
        bool multiLine = TextLines.IsBlank(lineSuffix) && (TextLines.IsBlank(linePrefix) || opener);
        int blockIndent;
        if (opener)
        {
            blockIndent = indent.Columns(TextLines.LeadingWhitespace(linePrefix)) + indent.Width;
        }
        else if (TextLines.IsBlank(linePrefix) && linePrefix.Length == 0)
        {
            blockIndent = IndentAfterPreviousLine(lines, line, indent);
        }
        else
        {
            blockIndent = indent.Columns(TextLines.LeadingWhitespace(linePrefix));
        }

        int heldBack = linePrefix.Length - linePrefix.TrimEnd(' ', '\t').Length;
        var next = new List<string>();
        for (int i = line + 1; i < lines.Count && next.Count < NextLinesKept; i++)
        {
            next.Add(lines.Head(i, MaxNextLineChars));
        }

        return new CompletionContext
        {
            CursorOffset = cursor,
            LinePrefix = linePrefix,
            LineSuffix = lineSuffix,
            NextLines = next,
            MultiLine = multiLine,
            BlockIndentColumns = blockIndent,
            Indent = indent,
            LineEnding = lines.LineEnding,
            Language = language,
            HeldBackWhitespace = linePrefix[(linePrefix.Length - heldBack)..],
        };
    }

    /// <summary>At column 0 of an empty line the block is the previous code line's, one level deeper after an opener.</summary>
    private static int IndentAfterPreviousLine(TextLines lines, int line, IndentStyle indent)
    {
        for (int i = line - 1; i >= 0; i--)
        {
            string previous = lines[i];
            if (!TextLines.IsBlank(previous))
            {
                int columns = indent.Columns(TextLines.LeadingWhitespace(previous));
                return BlockSyntax.EndsWithOpener(previous) ? columns + indent.Width : columns;
            }
        }

        return 0;
    }

    private static (string Text, int Tokens) TakeSuffix(TextLines lines, int cursorLine, string lineSuffix, int budget, LineTokenCounter counter)
    {
        string head = KeepHead(lineSuffix, budget, counter);
        int used = counter.CountText(head, addDummyPrefix: false);
        int last = cursorLine;
        while (last + 1 < lines.Count && Fits(lines, last + 1, budget - used, counter))
        {
            last++;
            used += counter.CountWithNewline(lines[last]);
        }

        string text = last > cursorLine ? head + "\n" + lines.Join(cursorLine + 1, last) : head;
        return (text, used);
    }

    /// <summary>Whether a whole line and its line break fit <paramref name="room"/> tokens; a line too long to fit is not tokenized.</summary>
    private static bool Fits(TextLines lines, int line, int room, LineTokenCounter counter) =>
        lines.LineLength(line) <= MaxChars(room) && counter.CountWithNewline(lines[line]) <= room;

    /// <summary>The most characters <paramref name="tokens"/> tokens can cover (0 for a spent budget).</summary>
    private static int MaxChars(int tokens) => (int)Math.Min(int.MaxValue, Math.Max(0L, tokens) * MaxCharsPerToken);

    /// <summary>The end of a very long line (minified code) that fits the budget.</summary>
    private static string KeepTail(string text, int budget, LineTokenCounter counter)
    {
        text = text.Length > MaxChars(budget) ? text[^MaxChars(budget)..] : text;
        while (text.Length > 0 && counter.CountText(text, addDummyPrefix: false) > budget)
        {
            text = text[(text.Length / 4 + 1)..];
        }

        return text;
    }

    /// <summary>The start of a very long line that fits the budget.</summary>
    private static string KeepHead(string text, int budget, LineTokenCounter counter)
    {
        text = text.Length > MaxChars(budget) ? text[..MaxChars(budget)] : text;
        while (text.Length > 0 && counter.CountText(text, addDummyPrefix: false) > budget)
        {
            text = text[..(text.Length * 3 / 4)];
        }

        return text;
    }

    internal static string FormatSnippet(PromptMode mode, LanguageInfo language, Snippet snippet)
    {
        if (mode == PromptMode.Infill)
        {
            // Commented out, so that the model does not take another file's code for this file's.
            var builder = new System.Text.StringBuilder();
            builder.Append(language.LineComment).Append(" Path: ").Append(snippet.Path).Append('\n');
            foreach (var line in snippet.Text.Split('\n'))
            {
                builder.Append(language.LineComment).Append(' ').Append(line.TrimEnd('\r')).Append('\n');
            }

            return builder.Append('\n').ToString();
        }

        return $"```{language.FenceName}\n{language.LineComment} {snippet.Path}\n{snippet.Text}\n```\n\n";
    }

    /// <summary>The parts of one prompt, and how they are laid out and encoded.</summary>
    private sealed record PromptParts(PromptMode Mode, LanguageInfo Language, string Path, IReadOnlyList<Snippet> Snippets, string Suffix, string Window, string LinePrefix, int WindowFirstLine);

    private static (List<int> Ids, string Text) Assemble(PromptParts parts, ITokenizer tokenizer)
    {
        string snippets = string.Concat(parts.Snippets.Select(s => FormatSnippet(parts.Mode, parts.Language, s)));
        string prefix = parts.Window.Length > 0 ? parts.Window + "\n" + parts.LinePrefix : parts.LinePrefix;
        var ids = new List<int> { tokenizer.BosId };
        if (parts.Mode == PromptMode.Infill)
        {
            ids.Add(PrefixId);
            ids.AddRange(tokenizer.Encode(snippets + prefix, addDummyPrefix: true));
            ids.Add(SuffixId);
            ids.AddRange(tokenizer.Encode(parts.Suffix, addDummyPrefix: false));
            ids.Add(MiddleId);
            return (ids, $"<s><PRE> {snippets}{prefix} <SUF>{parts.Suffix} <MID>");
        }

        var user = new System.Text.StringBuilder();
        if (snippets.Length > 0)
        {
            user.Append("Code from other open files, for reference:\n\n").Append(snippets);
        }

        string suffixShown = parts.Suffix.TrimEnd();
        if (suffixShown.Trim().Length > 0)
        {
            user.Append("The code right after the cursor in ").Append(parts.Path).Append(" (context only; do not repeat it):\n```")
                .Append(parts.Language.FenceName).Append('\n').Append(suffixShown.TrimStart('\n', '\r')).Append("\n```\n\n");
        }

        user.Append("Complete the ").Append(parts.Language.DisplayName).Append(" code in ").Append(parts.Path)
            .Append(" at the cursor. Your answer repeats the file from line ").Append(parts.WindowFirstLine + 1)
            .Append(" up to the cursor and continues from there.");
        string head = ChatTemplate.InstructionText(CompletionSystem, user.ToString());
        string prime = "```" + parts.Language.FenceName + "\n" + prefix;
        ids.AddRange(tokenizer.Encode(head, addDummyPrefix: true));

        // The dummy prefix of this second encode is the space between "[/INST]" and the answer.
        ids.AddRange(tokenizer.Encode(prime, addDummyPrefix: true));
        return (ids, "<s>" + head + " " + prime);
    }
}
