// Post-processing rules, one fixture per rule, with the inputs users complain about: repeats of the code
// below the cursor, leaked tokens and fences, doubled auto-closed brackets, wrong indentation and ^M.
namespace CodeLlamaLsp.Prompting.Tests;

public class CompletionPostProcessorTests
{
    /// <summary>Post-processes <paramref name="generated"/> at the caret of <paramref name="markup"/>; null means nothing is inserted.</summary>
    private static void Check(string markup, string generated, string? expected, string languageId = "python")
    {
        var snapshot = Markup.Parse(markup, languageId);
        var context = CompletionPromptBuilder.DescribeCursor(snapshot);
        var edit = CompletionPostProcessor.Process(context, generated);
        Assert.That(edit?.Text, Is.EqualTo(expected));
        if (edit != null)
        {
            Assert.That(edit.Replace, Is.EqualTo(new TextRange(snapshot.CursorOffset, snapshot.CursorOffset)));
        }
    }

    // Leaked special tokens, chat markers and fences.
    [TestCase("total + 1</s>", "total + 1")]
    [TestCase("total + 1[/INST]", "total + 1")]
    [TestCase("total + 1 [INST] explain", "total + 1")]
    [TestCase("total + 1<EOT>", "total + 1")]
    [TestCase("total + 1\n```\nThis adds one.", "total + 1")]
    [TestCase("</s>", null)]
    public void Special_tokens_markers_and_fences_never_reach_the_document(string generated, string? expected) =>
        Check("def f(total):\n    return ‸\n", generated, expected);

    [Test]
    public void An_answer_that_restarts_its_code_block_keeps_the_code_inside()
    {
        Check("def f(x):\n    ‸\n", "```python\ny = x * 2\n    return y\n```\nThe function doubles x.", "y = x * 2\n    return y");
    }

    // Single-line when text sits right of the cursor; multi-line at an empty line or after an opener.
    [Test]
    public void Text_right_of_the_cursor_makes_the_answer_single_line()
    {
        Check("result = compute(‸, limit)\n", "values\nprint(result)", "values");
    }

    [Test]
    public void End_of_a_plain_statement_is_single_line()
    {
        Check("count = count + ‸\nprint(count)\n", "1\ncount = 0", "1");
    }

    [Test]
    public void An_empty_line_in_a_block_allows_several_lines()
    {
        Check("def area(w, h):\n    ‸\n", "    if w < 0:\n        raise ValueError(w)\n    return w * h", "if w < 0:\n        raise ValueError(w)\n    return w * h");
    }

    [Test]
    public void After_a_block_opener_the_answer_starts_on_the_next_line()
    {
        Check("def area(w, h):‸\n", "\n    return w * h", "\n    return w * h");
    }

    // Never repeat what already follows the cursor.
    [Test]
    public void A_completion_stops_where_it_starts_repeating_the_next_lines()
    {
        Check("def f(x):\n    ‸\n    return y\n", "y = x * 2\n    return y\n", "y = x * 2");
    }

    [Test]
    public void A_completion_that_only_reproduces_the_next_lines_is_dropped()
    {
        Check("def f(x):\n    y = x * 2\n    ‸\n    return y\n\nprint(f(2))\n", "return y\n\nprint(f(2))", null);
    }

    [Test]
    public void A_completion_equal_to_the_text_right_of_the_cursor_is_dropped()
    {
        Check("print(‸\"done\")\n", "\"done\")", null);
    }

    [TestCase("print(‸)", "\"hello\")", "\"hello\"")]
    [TestCase("print(‸)", "format(name))", "format(name)")]
    [TestCase("print(‸)", "format(name)", "format(name)")]
    [TestCase("values = [‸]", "1, 2, 3]", "1, 2, 3")]
    [TestCase("run(‸);", "task);", "task")]
    public void Auto_closed_brackets_are_not_inserted_twice(string line, string generated, string expected)
    {
        Check(line + "\n", generated, expected);
    }

    // The block ends where indentation drops or a brace closes.
    [Test]
    public void A_multi_line_answer_stops_when_indentation_drops_below_the_block()
    {
        Check("class Shape:\n    def area(self):\n        ‸\n", "return 0\n\n    def perimeter(self):\n        return 0", "return 0");
    }

    [Test]
    public void A_brace_that_closes_the_cursors_block_ends_the_answer()
    {
        Check("void Run() {\n    ‸\n", "Start(); }\nvoid Other() {}", "Start();", "csharp");
    }

    [Test]
    public void The_closing_brace_is_left_out_when_the_editor_already_closed_the_block()
    {
        Check("if (ready) {‸\n}\n", "\n    Start();\n}\nelse {", "\n    Start();", "csharp");
    }

    [Test]
    public void The_closing_brace_is_kept_when_the_block_is_not_closed_yet()
    {
        Check("if (ready) {‸\n", "\n    Start();\n}\nelse {", "\n    Start();\n}", "csharp");
    }

    // Indentation and line endings in the file's style.
    [Test]
    public void Spaces_from_the_model_become_tabs_in_a_tab_indented_file()
    {
        Check("func main() {\n\tif ok {\n\t\tstart()\n\t}\n\t‸\n}\n", "for i := range xs {\n        use(i)\n    }", "for i := range xs {\n\t\tuse(i)\n\t}", "go");
    }

    [Test]
    public void Four_space_steps_become_two_in_a_two_space_file()
    {
        Check("function f(x) {\n  if (x) {\n    g();\n  }\n  ‸\n}\n", "for (const y of x) {\n      use(y);\n  }", "for (const y of x) {\n    use(y);\n  }", "typescript");
    }

    [Test]
    public void A_crlf_file_gets_crlf_and_no_stray_carriage_returns()
    {
        Check("def f(x):\r\n    ‸\r\n", "y = x\r\n    return y\r", "y = x\r\n    return y");
    }

    [Test]
    public void An_lf_file_gets_no_carriage_returns()
    {
        Check("def f(x):\n    ‸\n", "y = x\r\n    return y", "y = x\n    return y");
    }

    [Test]
    public void Whitespace_the_prompt_held_back_is_not_doubled()
    {
        Check("total = ‸\n", " 42", "42");
    }

    // Empty rather than junk.
    [TestCase("")]
    [TestCase("   \n  ")]
    [TestCase("\uFFFD\uFFFD")]
    [TestCase("\u0001\u0002")]
    public void Junk_gives_no_completion(string generated) => Check("x = ‸\n", generated, null);

    /// <summary>Whether generation may stop after <paramref name="soFar"/> at the caret of <paramref name="markup"/>.</summary>
    private static bool IsFinished(string markup, string soFar, string languageId = "python") =>
        CompletionPostProcessor.IsFinished(CompletionPromptBuilder.DescribeCursor(Markup.Parse(markup, languageId)), soFar);

    [Test]
    public void Streaming_stops_once_a_complete_line_leaves_the_block()
    {
        string markup = "class Shape:\n    def area(self):\n        ‸\n";

        Assert.That(IsFinished(markup, "return 0\n\n    def per"), Is.False, "the dedented line is not complete yet");
        Assert.That(IsFinished(markup, "return 0\n\n    def perimeter(self):\n"), Is.True);
        Assert.That(IsFinished(markup, "x = 1\n        return x\n"), Is.False);
    }

    [Test]
    public void Streaming_stops_at_a_closing_fence_or_a_leaked_marker()
    {
        string markup = "def f(x):\n    ‸\n";

        Assert.That(IsFinished(markup, "```python\ny = x\n"), Is.False, "an opening fence is not the end");
        Assert.That(IsFinished(markup, "y = x\n```\n"), Is.True);
        Assert.That(IsFinished(markup, "y = x [/INST]\n"), Is.True);
    }

    [Test]
    public void Streaming_stops_at_the_first_line_break_in_single_line_mode()
    {
        Assert.That(IsFinished("result = compute(‸, limit)\n", "values"), Is.False);
        Assert.That(IsFinished("result = compute(‸, limit)\n", "values\n"), Is.True);
    }
}
