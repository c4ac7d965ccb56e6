// Code actions: snapshot tests of the prompts (what the model is asked), and tests of the answer readers
// (markdown for Explain, replacement code for Fix, doc comments and tests inserted where they belong).
using CodeLlamaLsp.Inference.Generation;

namespace CodeLlamaLsp.Prompting.Tests;

public class CodeActionTests
{
    private const string PythonWithBug = """
        import math


        def circle_area(radius):
            if radius < 0:
                raise ValueError("negative radius")
            return math.pi * radius ** 2 + ‸undefined_offset


        def main():
            print(circle_area(2))
        """;

    private const string CSharpMethod = """
        namespace Shapes;

        public static class Geometry
        {
            [Obsolete("use Circle.Area")]
            public static double CircleArea(double radius)
            {
                return Math.PI * rad‸ius * radius;
            }
        }
        """;

    private const string TypeScriptFunction = """
        export function area(radius: number): number {
          if (radius < 0) {
            throw new Error("negative radius");
          }
          return Math.PI * radius ** 2;‸
        }
        """;

    private const string RustFunction = """
        pub fn area(radius: f64) -> f64 {
            std::f64::consts::PI * radius * ra‸dius
        }
        """;

    public static IEnumerable<TestCaseData> PromptCases()
    {
        var samples = new (string Language, string Path, string Markup)[]
        {
            ("python", "shapes/area.py", PythonWithBug),
            ("csharp", "Shapes/Geometry.cs", CSharpMethod),
            ("typescript", "src/area.ts", TypeScriptFunction),
            ("rust", "src/area.rs", RustFunction),
        };
        foreach (var kind in Enum.GetValues<CodeActionKind>())
        {
            foreach (var (language, path, markup) in samples)
            {
                yield return new TestCaseData(kind, language, path, markup).SetName($"{kind}_{language}");
            }
        }
    }

    /// <summary>Builds an action's prompt and compares a readable rendering with the approved snapshot.</summary>
    private static CodeActionPrompt CheckPrompt(CodeActionKind kind, EditorSnapshot snapshot, string name)
    {
        var prompt = CodeActionPrompts.Build(kind, snapshot, TestEnvironment.Tokenizer, TestEnvironment.Instruct34B);
        Assert.That(prompt.PromptIds[0], Is.EqualTo(TestEnvironment.Tokenizer.BosId));
        Assert.That(TestEnvironment.Tokenizer.Decode(prompt.PromptIds), Is.EqualTo(prompt.PromptText["<s>".Length..]));
        string rendered =
            $"action: {kind}; target lines {prompt.Target.FirstLine + 1}-{prompt.Target.LastLine + 1} (header {prompt.Target.HeaderLine + 1})\n"
            + $"maxNewTokens: {prompt.Options.MaxNewTokens}; temperature: {prompt.Options.Temperature}; stopIds: [{string.Join(", ", prompt.Options.StopTokenIds)}]\n"
            + "---- prompt text ----\n" + prompt.PromptText + "\n---- end ----\n";
        Snapshots.Approve(name, rendered);
        return prompt;
    }

    [TestCaseSource(nameof(PromptCases))]
    public void Action_prompt(CodeActionKind kind, string language, string path, string markup)
    {
        var snapshot = Markup.Parse(markup, language, path);
        if (kind == CodeActionKind.Fix && language == "python")
        {
            int at = snapshot.Text.IndexOf("undefined_offset", StringComparison.Ordinal);
            snapshot = snapshot with
            {
                Diagnostics =
                [
                    new DiagnosticInfo("\"undefined_offset\" is not defined", DiagnosticSeverity.Error, new TextRange(at, at + "undefined_offset".Length)),
                    new DiagnosticInfo("\"main\" is never called", DiagnosticSeverity.Hint, new TextRange(snapshot.Text.IndexOf("def main", StringComparison.Ordinal), snapshot.Text.IndexOf("def main", StringComparison.Ordinal) + 8)),
                ],
            };
        }

        CheckPrompt(kind, snapshot, $"action-{kind}-{language}");
    }

    [Test]
    public void Explain_on_a_selection_uses_exactly_the_selected_lines()
    {
        var snapshot = Markup.Parse("x = 1\n[|y = x + 1\nz = y * 2\n|]print(z)\n", "python", "calc.py");
        CheckPrompt(CodeActionKind.Explain, snapshot, "action-Explain-selection");
    }

    [Test]
    public void A_range_too_large_for_the_window_is_a_clear_error()
    {
        var snapshot = new EditorSnapshot(SampleSources.LargePython(2_000), "python", "big.py", 0) { Selection = new TextRange(0, 40_000) };
        var error = Assert.Throws<InvalidOperationException>(() => CodeActionPrompts.Build(CodeActionKind.Explain, snapshot, TestEnvironment.Tokenizer, TestEnvironment.Instruct34B with { ContextLength = 4096 }));

        Assert.That(error!.Message, Does.Contain("big.py").And.Contain("Select a smaller range"));
    }

    /// <summary>Interprets <paramref name="answer"/> for an action at the caret and returns the document after the edit (or the markdown, or null).</summary>
    private static string? Check(CodeActionKind kind, string markup, string answer, string languageId = "python")
    {
        var snapshot = Markup.Parse(markup, languageId);
        var prompt = CodeActionPrompts.Build(kind, snapshot, TestEnvironment.Tokenizer, TestEnvironment.Instruct34B);
        var result = prompt.Interpret(answer);
        if (result?.Edit is { } edit)
        {
            return snapshot.Text[..edit.Range.Start] + edit.NewText + snapshot.Text[edit.Range.End..];
        }

        return result?.Markdown;
    }

    [Test]
    public void Explain_answers_markdown_without_leaked_markers()
    {
        Assert.That(Check(CodeActionKind.Explain, "def f():\n    return 1‸\n", " Returns **one**.\n\n- constant</s>[INST]"), Is.EqualTo("Returns **one**.\n\n- constant"));
        Assert.That(Check(CodeActionKind.Explain, "def f():\n    return 1‸\n", "  </s>"), Is.Null);
    }

    [Test]
    public void Fix_replaces_the_block_with_the_fenced_code_reindented_to_it()
    {
        string markup = "class Shape:\n    def area(self):\n        return self.w * ‸self.hh\n\n    def name(self):\n        return 'shape'\n";
        string answer = "Here is the fix:\n```python\ndef area(self):\n    return self.w * self.h\n```\nI renamed hh to h.";

        Assert.That(Check(CodeActionKind.Fix, markup, answer), Is.EqualTo("class Shape:\n    def area(self):\n        return self.w * self.h\n\n    def name(self):\n        return 'shape'\n"));
    }

    [Test]
    public void Fix_keeps_tabs_and_crlf_of_the_file()
    {
        string markup = "func f() int {\r\n\tif ok {\r\n\t\treturn 1‸\r\n\t}\r\n\treturn 0\r\n}\r\n";
        string answer = "```go\nif ok {\n    return 2\n}\n```";

        Assert.That(Check(CodeActionKind.Fix, markup, answer, "go"), Is.EqualTo("func f() int {\r\n\tif ok {\r\n\t\treturn 2\r\n\t}\r\n\treturn 0\r\n}\r\n"));
    }

    [TestCase("The code looks fine to me.")]
    [TestCase("```python\ndef area(self):\n    return self.w *")]
    [TestCase("```python\ndef area(self):\n    return self.w * self.hh\n```")]
    public void Fix_without_usable_code_gives_no_edit(string answer)
    {
        Assert.That(Check(CodeActionKind.Fix, "def area(self):\n    return self.w * ‸self.hh\n", answer), Is.Null);
    }

    [Test]
    public void Python_docs_become_the_first_statement_of_the_body()
    {
        string markup = "class Shape:\n    def area(self, scale):\n        return self.w * ‸scale\n";
        string answer = "```python\n\"\"\"Returns the area.\n\nArgs:\n    scale: factor.\n\"\"\"\n```";

        Assert.That(Check(CodeActionKind.GenerateDocs, markup, answer), Is.EqualTo("class Shape:\n    def area(self, scale):\n        \"\"\"Returns the area.\n\n        Args:\n            scale: factor.\n        \"\"\"\n        return self.w * scale\n"));
    }

    [Test]
    public void Csharp_docs_go_above_the_attributes_in_triple_slash_form()
    {
        string markup = "class G\n{\n    [Pure]\n    public static int Twice(int x)\n    {\n        return 2 * ‸x;\n    }\n}\n";
        string answer = "```csharp\n/// <summary>Doubles x.</summary>\n/// <param name=\"x\">The value.</param>\npublic static int Twice(int x)\n```";

        Assert.That(Check(CodeActionKind.GenerateDocs, markup, answer, "csharp"), Is.EqualTo("class G\n{\n    /// <summary>Doubles x.</summary>\n    /// <param name=\"x\">The value.</param>\n    [Pure]\n    public static int Twice(int x)\n    {\n        return 2 * x;\n    }\n}\n"));
    }

    [Test]
    public void Typescript_docs_without_comment_markers_are_wrapped_in_jsdoc()
    {
        string markup = "export function twice(x: number): number {\n  return 2 * ‸x;\n}\n";

        Assert.That(Check(CodeActionKind.GenerateDocs, markup, "Doubles a number.\n@param x the value", "typescript"),
            Is.EqualTo("/**\n * Doubles a number.\n * @param x the value\n */\nexport function twice(x: number): number {\n  return 2 * x;\n}\n"));
    }

    [Test]
    public void Generated_tests_are_inserted_below_the_block()
    {
        string markup = "pub fn twice(x: i32) -> i32 {\n    2 * ‸x\n}\n";
        string answer = "```rust\n#[cfg(test)]\nmod tests {\n    use super::*;\n\n    #[test]\n    fn doubles() {\n        assert_eq!(twice(2), 4);\n    }\n}\n```";

        Assert.That(Check(CodeActionKind.GenerateTests, markup, answer, "rust"), Is.EqualTo("pub fn twice(x: i32) -> i32 {\n    2 * x\n}\n\n#[cfg(test)]\nmod tests {\n    use super::*;\n\n    #[test]\n    fn doubles() {\n        assert_eq!(twice(2), 4);\n    }\n}\n"));
    }
}
