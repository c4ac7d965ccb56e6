// Token-budget tests with the real tokenizer: the prompt never exceeds the window minus the answer, keeps
// the lines nearest the cursor, gives the prefix the larger share, adds snippets only when they fit, stays
// stable across keystrokes, and is fast on a 20,000-line file.
using System.Diagnostics;
using CodeLlamaLsp.Inference.Generation;

namespace CodeLlamaLsp.Prompting.Tests;

public class CompletionBudgetTests
{
    private static readonly string LargeFile = SampleSources.LargePython(20_000);

    /// <summary>Builds the prompt and proves it fits: ids within the window minus the answer and within the latency cap.</summary>
    private static CompletionPrompt Check(EditorSnapshot snapshot, ModelInfo model, PromptSettings? settings = null)
    {
        settings ??= new PromptSettings();
        var prompt = CompletionPromptBuilder.Build(snapshot, TestEnvironment.Tokenizer, model, settings);
        Assert.That(prompt.PromptIds.Count, Is.LessThanOrEqualTo(model.ContextLength - prompt.Options.MaxNewTokens), "prompt plus answer must fit the window");
        Assert.That(prompt.PromptIds.Count, Is.LessThanOrEqualTo(settings.MaxPromptTokens), "prompt must respect the latency cap");
        return prompt;
    }

    private static EditorSnapshot AtFunction(int index, string text = "")
    {
        string file = text.Length > 0 ? text : LargeFile;
        int function = file.IndexOf($"def scale_{index}(", StringComparison.Ordinal);
        int cursor = file.IndexOf("    return [v * factor", function, StringComparison.Ordinal) + "    return [v * fac".Length;
        return new EditorSnapshot(file, "python", "gen/scales.py", cursor);
    }

    [TestCase(256), TestCase(512), TestCase(1024), TestCase(3000), TestCase(16384)]
    public void The_prompt_fits_the_window_minus_the_answer_in_both_forms(int contextLength)
    {
        var snapshot = AtFunction(2000);
        var instruct = Check(snapshot, TestEnvironment.Instruct34B with { ContextLength = contextLength });
        var infill = Check(snapshot, TestEnvironment.Infill7B with { ContextLength = contextLength });
        var multiLine = Check(new EditorSnapshot(LargeFile, "python", "gen/scales.py", LargeFile.IndexOf("def scale_2001", StringComparison.Ordinal) - 1), TestEnvironment.Instruct34B with { ContextLength = contextLength });

        // The budget is used, not just respected: a large file fills most of it.
        int budget = Math.Min(contextLength - instruct.Options.MaxNewTokens, new PromptSettings().MaxPromptTokens);
        Assert.That(instruct.PromptIds.Count, Is.GreaterThan(budget * 0.75));
        Assert.That(infill.PromptIds.Count, Is.GreaterThan(budget * 0.75));
        Assert.That(multiLine.Context.MultiLine, Is.True);
    }

    [Test]
    public void The_latency_cap_bounds_the_prompt_below_the_window()
    {
        var prompt = Check(AtFunction(2000), TestEnvironment.Instruct34B, new PromptSettings { MaxPromptTokens = 700 });

        Assert.That(prompt.PromptIds.Count, Is.InRange(550, 700));
    }

    [Test]
    public void A_window_too_small_for_any_prompt_is_a_clear_error()
    {
        var error = Assert.Throws<ArgumentException>(() => CompletionPromptBuilder.Build(AtFunction(10), TestEnvironment.Tokenizer, TestEnvironment.Instruct34B with { ContextLength = 100 }));

        Assert.That(error!.Message, Does.Contain("budget"));
    }

    [Test]
    public void The_lines_nearest_the_cursor_are_kept_and_far_ones_dropped()
    {
        var prompt = Check(AtFunction(2000), TestEnvironment.Instruct34B with { ContextLength = 512 });

        Assert.That(prompt.PromptText, Does.Contain("def scale_2000(values, factor):\n    # Multiplies every value by factor plus 5.\n    return [v * fac"));
        Assert.That(prompt.PromptText, Does.Contain("tor + 5 for v in values]\n\n\ndef scale_2001(values, factor):"));
        Assert.That(prompt.PromptText, Does.Not.Contain("def scale_1990("));
        Assert.That(prompt.PromptText, Does.Not.Contain("def scale_2010("));
    }

    [Test]
    public void The_prefix_gets_the_larger_share()
    {
        var prompt = Check(AtFunction(2000), TestEnvironment.Instruct34B with { ContextLength = 1024 });
        string text = prompt.PromptText;
        int suffixStart = text.IndexOf("```python\n", StringComparison.Ordinal) + "```python\n".Length;
        string suffix = text[suffixStart..text.IndexOf("\n```", suffixStart, StringComparison.Ordinal)];
        string prefix = text[(text.LastIndexOf("```python\n", StringComparison.Ordinal) + "```python\n".Length)..];

        int prefixTokens = TestEnvironment.Tokenizer.Encode(prefix).Count;
        int suffixTokens = TestEnvironment.Tokenizer.Encode(suffix).Count;
        Assert.That(prefixTokens, Is.GreaterThan(2 * suffixTokens), $"prefix {prefixTokens} tokens, suffix {suffixTokens}");
    }

    [Test]
    public void The_prefix_window_starts_at_a_coarse_line_boundary()
    {
        var settings = new PromptSettings { PrefixAnchorLines = 32 };
        foreach (int function in new[] { 1000, 1001, 1500, 3000 })
        {
            var prompt = Check(AtFunction(function), TestEnvironment.Instruct34B, settings);
            var match = System.Text.RegularExpressions.Regex.Match(prompt.PromptText, "from line (\\d+) up to the cursor");
            Assert.That(match.Success, Is.True);
            Assert.That((int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) - 1) % 32, Is.Zero);
        }
    }

    [Test]
    public void Typing_at_the_cursor_only_changes_the_tail_of_the_prompt()
    {
        var before = AtFunction(2000);
        foreach (var model in new[] { TestEnvironment.Instruct34B, TestEnvironment.Infill7B })
        {
            var first = Check(before, model);
            string typed = before.Text.Insert(before.CursorOffset, "t");
            var second = Check(new EditorSnapshot(typed, before.LanguageId, before.Path, before.CursorOffset + 1), model);

            int shared = first.PromptIds.Zip(second.PromptIds).TakeWhile(pair => pair.First == pair.Second).Count();
            if (model.SupportsInfill)
            {
                // PSM puts the suffix after the prefix; the prefix up to the cursor line still hits the cache.
                Assert.That(shared, Is.GreaterThan(first.PromptIds.Count / 2), model.Name);
            }
            else
            {
                int cursorLineTokens = TestEnvironment.Tokenizer.Encode("    return [v * fact").Count;
                Assert.That(shared, Is.GreaterThanOrEqualTo(first.PromptIds.Count - cursorLineTokens - 2), model.Name);
            }
        }
    }

    [Test]
    public void Snippets_are_added_only_as_the_budget_allows()
    {
        var other = new OpenDocument("gen/offsets.py", "python", "def offset_all(values, factor):\n    return [v + factor for v in values]\n", DateTimeOffset.UnixEpoch);
        var snapshot = AtFunction(20, SampleSources.LargePython(200)) with { OtherDocuments = [other] };

        var roomy = Check(snapshot, TestEnvironment.Instruct34B);
        var tight = Check(snapshot, TestEnvironment.Instruct34B, new PromptSettings { MaxSnippetTokens = 20 });

        Assert.That(roomy.PromptText, Does.Contain("# gen/offsets.py\ndef offset_all(values, factor):"));
        Assert.That(tight.PromptText, Does.Not.Contain("offset_all"));
    }

    [Test]
    public void Snippets_come_from_the_most_similar_documents_of_the_same_language()
    {
        var similar = new OpenDocument("gen/offsets.py", "python", "import os\n\n\ndef offset_all(values, factor):\n    return [v + factor for v in values]\n", DateTimeOffset.UnixEpoch);
        var unrelated = new OpenDocument("net/http.py", "python", "import socket\n\n\ndef fetch(url):\n    return socket.create_connection((url, 80))\n", DateTimeOffset.UnixEpoch.AddDays(1));
        var otherLanguage = new OpenDocument("gen/scale.ts", "typescript", "export function scaleAll(values: number[], factor: number) {\n  return values.map((v) => v * factor);\n}\n", DateTimeOffset.UnixEpoch.AddDays(2));
        var snapshot = AtFunction(20, SampleSources.LargePython(200)) with { OtherDocuments = [unrelated, similar, otherLanguage] };

        var prompt = Check(snapshot, TestEnvironment.Instruct34B, new PromptSettings { MaxSnippets = 1 });

        Assert.That(prompt.PromptText, Does.Contain("offset_all"));
        Assert.That(prompt.PromptText, Does.Not.Contain("fetch(url)"));
        Assert.That(prompt.PromptText, Does.Not.Contain("scaleAll"));
    }

    [Test]
    public void Infill_ids_follow_the_psm_layout()
    {
        var prompt = Check(AtFunction(2000), TestEnvironment.Infill7B with { ContextLength = 1024 });
        var ids = prompt.PromptIds;
        string suffix = prompt.PromptText[(prompt.PromptText.IndexOf("<SUF>", StringComparison.Ordinal) + 5)..^" <MID>".Length];
        int suffixId = ids.ToList().IndexOf(CompletionPromptBuilder.SuffixId);

        Assert.That(ids.Take(2), Is.EqualTo(new[] { 1, CompletionPromptBuilder.PrefixId }));
        Assert.That(ids[^1], Is.EqualTo(CompletionPromptBuilder.MiddleId));
        Assert.That(ids.Skip(suffixId + 1).SkipLast(1), Is.EqualTo(TestEnvironment.Tokenizer.Encode(suffix, addDummyPrefix: false)));
        Assert.That(prompt.Options.StopTokenIds, Does.Contain(CompletionPromptBuilder.EndOfTextId));
    }

    [Test]
    public void Instruct_ids_decode_to_the_prompt_text()
    {
        var prompt = Check(AtFunction(2000), TestEnvironment.Instruct34B with { ContextLength = 1024 });

        Assert.That(prompt.PromptIds[0], Is.EqualTo(TestEnvironment.Tokenizer.BosId));
        Assert.That(TestEnvironment.Tokenizer.Decode(prompt.PromptIds), Is.EqualTo(prompt.PromptText["<s>".Length..]));
    }

    [TestCase(PromptMode.Auto, true, PromptMode.Infill)]
    [TestCase(PromptMode.Auto, false, PromptMode.Instruct)]
    [TestCase(PromptMode.Instruct, true, PromptMode.Instruct)]
    [TestCase(PromptMode.Infill, true, PromptMode.Infill)]
    public void The_prompt_form_follows_the_model_unless_overridden(PromptMode requested, bool supportsInfill, PromptMode expected)
    {
        var model = supportsInfill ? TestEnvironment.Infill7B : TestEnvironment.Instruct34B;

        Assert.That(CompletionPromptBuilder.ResolveMode(requested, model), Is.EqualTo(expected));
    }

    [Test]
    public void Forcing_infill_on_a_model_without_infilling_tokens_is_a_clear_error()
    {
        var error = Assert.Throws<InvalidOperationException>(() => CompletionPromptBuilder.ResolveMode(PromptMode.Infill, TestEnvironment.Instruct34B));

        Assert.That(error!.Message, Does.Contain("32016").And.Contain("CodeLlama-34B-Instruct-GPTQ"));
    }

    [Test]
    public void A_20000_line_file_costs_a_small_part_of_tokenizing_it()
    {
        double build = FastestBuild(AtFunction(2000));
        var watch = Stopwatch.StartNew();
        int fileTokens = TestEnvironment.Tokenizer.Encode(LargeFile).Count;
        double wholeFile = watch.Elapsed.TotalMilliseconds;

        TestContext.Out.WriteLine($"20,000-line file: prompt build {build:F1} ms (fastest of 3); tokenizing the whole file ({fileTokens} tokens) {wholeFile:F1} ms");
        Assert.That(build, Is.LessThan(wholeFile / 4), "the cost must follow the prompt budget, not the file size");
        Assert.That(build, Is.LessThan(500), "a completion prompt must cost far less than a model call");
    }

    private static double FastestBuild(EditorSnapshot snapshot)
    {
        Check(snapshot, TestEnvironment.Instruct34B);
        double best = double.MaxValue;
        for (int i = 0; i < 3; i++)
        {
            var watch = Stopwatch.StartNew();
            CompletionPromptBuilder.Build(snapshot, TestEnvironment.Tokenizer, TestEnvironment.Instruct34B);
            best = Math.Min(best, watch.Elapsed.TotalMilliseconds);
        }

        return best;
    }
}

public class CompletionPromptTextTests
{
    /// <summary>Builds an instruct prompt for the markup's caret.</summary>
    private static CompletionPrompt Check(string markup, string languageId = "python") =>
        CompletionPromptBuilder.Build(Markup.Parse(markup, languageId), TestEnvironment.Tokenizer, TestEnvironment.Instruct34B);

    [Test]
    public void A_crlf_document_gives_a_prompt_without_carriage_returns()
    {
        var prompt = Check("def f(x):\r\n    y = x\r\n    ‸\r\n    return y\r\n");

        Assert.That(prompt.PromptText, Does.Not.Contain("\r"));
        Assert.That(prompt.PromptText, Does.EndWith("```python\ndef f(x):\n    y = x\n"));
        Assert.That(prompt.Context.LineEnding, Is.EqualTo("\r\n"));
    }

    [Test]
    public void Pressing_enter_keeps_the_head_of_the_prompt()
    {
        string before = "def f(x):\n    y = x‸\n    return y\n";
        var first = Check(before);
        var second = Check(before.Replace("‸", "\n    ‸", StringComparison.Ordinal));
        int shared = first.PromptIds.Zip(second.PromptIds).TakeWhile(pair => pair.First == pair.Second).Count();

        Assert.That(shared, Is.GreaterThanOrEqualTo(first.PromptIds.Count - 1));
    }

    [Test]
    public void The_answer_is_primed_with_the_code_before_the_cursor_without_trailing_spaces()
    {
        var prompt = Check("total = ‸\n");

        Assert.That(prompt.PromptText, Does.EndWith("[/INST] ```python\ntotal ="));
        Assert.That(prompt.Context.HeldBackWhitespace, Is.EqualTo(" "));
    }

    [TestCase(null, PromptMode.Auto)]
    [TestCase("instruct", PromptMode.Instruct)]
    [TestCase(" Infill ", PromptMode.Infill)]
    public void The_prompt_mode_setting_is_read(string? value, PromptMode expected) =>
        Assert.That(PromptSettings.ParseMode(value), Is.EqualTo(expected));

    [Test]
    public void An_unknown_prompt_mode_setting_is_a_clear_error()
    {
        var error = Assert.Throws<ArgumentException>(() => PromptSettings.ParseMode("fim"));

        Assert.That(error!.Message, Does.Contain("'fim'"));
    }

    [Test]
    public void A_cursor_outside_the_text_is_a_clear_error()
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => _ = new EditorSnapshot("abc", "python", "a.py", 4));

        Assert.That(error!.Message, Does.Contain("a.py"));
    }

    [Test]
    public void An_empty_document_gets_a_prompt_in_both_forms_and_code_actions_do_not_fail()
    {
        var empty = new EditorSnapshot(string.Empty, "rust", "src/lib.rs", 0);

        var instruct = CompletionPromptBuilder.Build(empty, TestEnvironment.Tokenizer, TestEnvironment.Instruct34B);
        var infill = CompletionPromptBuilder.Build(empty, TestEnvironment.Tokenizer, TestEnvironment.Infill7B);
        var explain = CodeActionPrompts.Build(CodeActionKind.Explain, empty, TestEnvironment.Tokenizer, TestEnvironment.Instruct34B);

        Assert.That(instruct.PromptText, Does.EndWith("[/INST] ```rust\n"));
        Assert.That(infill.PromptIds, Is.EqualTo(new[] { 1, CompletionPromptBuilder.PrefixId, CompletionPromptBuilder.SuffixId, CompletionPromptBuilder.MiddleId }));
        Assert.That(explain.Target.Range, Is.EqualTo(new TextRange(0, 0)));
    }
}
