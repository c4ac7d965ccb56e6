// Prompts for the code actions (Explain, Fix, Generate documentation, Generate tests) and the readers that
// turn each answer into markdown or an edit. Explain, Fix and Docs use the Llama 2 chat form with a system
// text; Generate tests asks for new code, so it uses the seed model's single-turn template (FACTS.md).
using CodeLlamaLsp.Inference.Generation;
using CodeLlamaLsp.Inference.Tokenization;

namespace CodeLlamaLsp.Prompting;

/// <summary>The code actions the server offers.</summary>
public enum CodeActionKind
{
    Explain,
    Fix,
    GenerateDocs,
    GenerateTests,
}

/// <summary>A text edit: replace <see cref="Range"/> (empty for an insertion) with <see cref="NewText"/>.</summary>
public sealed record TextEdit(TextRange Range, string NewText);

/// <summary>What an action's answer means for the editor: markdown to show, or an edit to apply.</summary>
public sealed record CodeActionResult(string? Markdown, TextEdit? Edit);

/// <summary>A code action's prompt and the reader of its answer.</summary>
public sealed class CodeActionPrompt(CodeActionKind kind, IReadOnlyList<int> promptIds, string promptText, GenerationOptions options, CodeBlock target, Func<string, CodeActionResult?> interpret)
{
    public CodeActionKind Kind => kind;

    public IReadOnlyList<int> PromptIds => promptIds;

    public string PromptText => promptText;

    public GenerationOptions Options => options;

    /// <summary>The code the action works on.</summary>
    public CodeBlock Target => target;

    public GenerationRequest ToRequest() => new(promptIds, promptText, options);

    /// <summary>The answer as markdown (Explain) or as an edit (the others); null when the answer holds nothing usable.</summary>
    public CodeActionResult? Interpret(string answer)
    {
        ArgumentNullException.ThrowIfNull(answer);
        return interpret(answer);
    }
}

/// <summary>Builds code action prompts.</summary>
public static class CodeActionPrompts
{
    /// <summary>Builds the prompt for an action on the snapshot's selection, or the block enclosing its cursor.</summary>
    public static CodeActionPrompt Build(CodeActionKind kind, EditorSnapshot snapshot, ITokenizer tokenizer, ModelInfo model)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(model);
        var block = BlockFinder.Find(snapshot);
        var lines = new TextLines(snapshot.Text);
        var language = LanguageInfo.For(snapshot.LanguageId);
        var style = IndentStyle.Detect(Enumerable.Range(0, Math.Min(lines.Count, 2000)).Select(i => lines[i]));
        string code = lines.Join(block.FirstLine, block.LastLine);
        int codeTokens = tokenizer.Encode(code).Count;
        var action = new ActionInput(snapshot, block, lines, language, style, code);

        var (ids, text, options, interpret) = kind switch
        {
            CodeActionKind.Explain => Explain(action, tokenizer, codeTokens),
            CodeActionKind.Fix => Fix(action, tokenizer, codeTokens),
            CodeActionKind.GenerateDocs => Docs(action, tokenizer),
            CodeActionKind.GenerateTests => Tests(action, tokenizer, codeTokens),
            _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown code action."),
        };

        if (ids.Count + options.MaxNewTokens > model.ContextLength)
        {
            throw new InvalidOperationException(
                $"The {kind} prompt for lines {block.FirstLine + 1}-{block.LastLine + 1} of '{snapshot.Path}' needs {ids.Count} tokens plus {options.MaxNewTokens} for the answer, over the model's window of {model.ContextLength}. Select a smaller range.");
        }

        return new CodeActionPrompt(kind, ids, text, options, block, interpret);
    }

    private sealed record ActionInput(EditorSnapshot Snapshot, CodeBlock Block, TextLines Lines, LanguageInfo Language, IndentStyle Style, string Code)
    {
        /// <summary>The code as the model sees it: dedented to column 0 (answers are reindented to the range).</summary>
        public string Fenced => $"```{Language.FenceName}\n{FencedCode.Dedent(Code)}\n```";

        public string LineEnding => Lines.LineEnding;
    }

    private static GenerationOptions Options(ITokenizer tokenizer, int maxNewTokens) => new()
    {
        MaxNewTokens = maxNewTokens,
        Temperature = 0.2f,
        TopK = 40,
        TopP = 0.95f,
        RepetitionPenalty = 1f,
        StopTokenIds = [tokenizer.EosId],
    };

    private static (IReadOnlyList<int>, string, GenerationOptions, Func<string, CodeActionResult?>) Explain(ActionInput input, ITokenizer tokenizer, int codeTokens)
    {
        string system = $"You are an expert {input.Language.DisplayName} programmer. You explain code clearly and concisely, in Markdown.";
        string user = $"Explain what this {input.Language.DisplayName} code from {input.Snapshot.Path} does. Start with a one-sentence summary, then give the key points as a short list.\n\n{input.Fenced}";
        var (ids, text) = ChatTemplate.Chat(tokenizer, system, user);
        _ = codeTokens;
        return (ids, text, Options(tokenizer, 512), answer =>
        {
            string markdown = FencedCode.CleanMarkers(CompletionPostProcessor.NormalizeNewlines(answer)).Trim();
            return markdown.Length == 0 ? null : new CodeActionResult(markdown, null);
        });
    }

    private static (IReadOnlyList<int>, string, GenerationOptions, Func<string, CodeActionResult?>) Fix(ActionInput input, ITokenizer tokenizer, int codeTokens)
    {
        var problems = input.Snapshot.Diagnostics
            .Where(d => d.Range.Touches(input.Block.Range))
            .OrderBy(d => d.Range.Start)
            .Select(d => $"- line {input.Lines.LineOf(d.Range.Start) - input.Block.FirstLine + 1}: {d.Severity.ToString().ToLowerInvariant()}: {d.Message.Trim()}")
            .ToList();
        string problemText = problems.Count > 0
            ? "The editor reports these problems (line numbers count from the first line of the code):\n" + string.Join('\n', problems)
            : "The editor reports no problems here; fix any bug you find.";
        string system = $"You are an expert {input.Language.DisplayName} programmer. You fix code with the smallest change that works and keep everything else as it is.";
        string user = $"Fix this {input.Language.DisplayName} code from {input.Snapshot.Path}.\n\n{problemText}\n\n{input.Fenced}\n\nAnswer with the whole corrected code in a single ```{input.Language.FenceName} block, then at most one sentence on what you changed.";
        var (ids, text) = ChatTemplate.Chat(tokenizer, system, user);

        // The answer repeats the whole range, so it needs room for about as many tokens as the code.
        int maxNew = Math.Clamp((codeTokens * 3 / 2) + 64, 256, 4096);
        return (ids, text, Options(tokenizer, maxNew), answer =>
        {
            if (FencedCode.Extract(answer) is not { Closed: true } fenced)
            {
                return null;
            }

            string code = FencedCode.Reindent(fenced.Code, BaseIndent(input), input.Style);
            if (code.Length == 0 || code == FencedCode.Reindent(input.Code, BaseIndent(input), input.Style))
            {
                return null;
            }

            return new CodeActionResult(null, new TextEdit(input.Block.Range, FencedCode.WithLineEnding(code, input.LineEnding)));
        });
    }

    private static (IReadOnlyList<int>, string, GenerationOptions, Func<string, CodeActionResult?>) Docs(ActionInput input, ITokenizer tokenizer)
    {
        var language = input.Language;
        string style = DocStyleDescription(language);
        string system = $"You are an expert {language.DisplayName} programmer. You write accurate, brief documentation.";
        string user = $"Write a documentation comment for this {language.DisplayName} code from {input.Snapshot.Path}, as {style}. Say what it does, its parameters and what it returns. Answer with only the comment in a single ```{language.FenceName} block; do not repeat the code.\n\n{input.Fenced}";
        var (ids, text) = ChatTemplate.Chat(tokenizer, system, user);
        return (ids, text, Options(tokenizer, 384), answer =>
        {
            string raw = FencedCode.Extract(answer)?.Code ?? FencedCode.CleanMarkers(CompletionPostProcessor.NormalizeNewlines(answer));
            var comment = DocComments.Normalize(raw, language);
            if (comment.Count == 0)
            {
                return null;
            }

            return new CodeActionResult(null, DocComments.Insertion(comment, input.Block, input.Lines, language, input.Style));
        });
    }

    private static (IReadOnlyList<int>, string, GenerationOptions, Func<string, CodeActionResult?>) Tests(ActionInput input, ITokenizer tokenizer, int codeTokens)
    {
        string problem = $"Write unit tests for this {input.Language.DisplayName} code from {input.Snapshot.Path}, using {input.Language.TestFramework}. Cover the usual cases and the edge cases.\n{input.Fenced}";
        var (ids, text) = ChatTemplate.SeedSingleTurn(tokenizer, problem);
        int maxNew = Math.Clamp(codeTokens * 3, 512, 2048);
        return (ids, text, Options(tokenizer, maxNew), answer =>
        {
            if (FencedCode.Extract(answer) is not { Closed: true } fenced)
            {
                return null;
            }

            string code = FencedCode.Reindent(fenced.Code, input.Block.Indent, input.Style);
            if (code.Length == 0)
            {
                return null;
            }

            // Below the block, after a blank line.
            int end = input.Block.Range.End;
            string newText = input.LineEnding + input.LineEnding + FencedCode.WithLineEnding(code, input.LineEnding);
            return new CodeActionResult(null, new TextEdit(new TextRange(end, end), newText));
        });
    }

    /// <summary>The indentation of the range's least-indented line: the answer is shifted to it.</summary>
    private static string BaseIndent(ActionInput input)
    {
        string? least = null;
        for (int i = input.Block.FirstLine; i <= input.Block.LastLine; i++)
        {
            string line = input.Lines[i];
            if (TextLines.IsBlank(line))
            {
                continue;
            }

            string lead = TextLines.LeadingWhitespace(line);
            if (least == null || input.Style.Columns(lead) < input.Style.Columns(least))
            {
                least = lead;
            }
        }

        return least ?? string.Empty;
    }

    private static string DocStyleDescription(LanguageInfo language) => (language.DocStyle, language.Id) switch
    {
        (DocCommentStyle.TripleSlash, "csharp") => "an XML documentation comment (/// <summary>, <param>, <returns>)",
        (DocCommentStyle.TripleSlash, _) => "a /// doc comment (Markdown, with # Examples only if useful)",
        (DocCommentStyle.SlashStarStar, "java") => "a /** ... */ Javadoc comment with @param and @return",
        (DocCommentStyle.SlashStarStar, _) => "a /** ... */ JSDoc comment with @param and @returns",
        (DocCommentStyle.Docstring, _) => "a \"\"\" docstring (Google style, with Args: and Returns:)",
        _ => $"{language.LineComment} line comments",
    };
}
