// The block a code action works on: the enclosing block at the cursor by indentation and braces, or the
// selection widened to whole lines.
namespace CodeLlamaLsp.Prompting.Tests;

public class BlockFinderTests
{
    /// <summary>Finds the block for the caret (or selection) in <paramref name="markup"/> and compares its text.</summary>
    private static void Check(string markup, string expectedBlock, string languageId = "python")
    {
        var snapshot = Markup.Parse(markup, languageId);
        var block = BlockFinder.Find(snapshot);
        Assert.That(snapshot.Text[block.Range.Start..block.Range.End], Is.EqualTo(expectedBlock));
    }

    [Test]
    public void A_python_function_from_a_line_in_its_body()
    {
        Check("import os\n\n\ndef area(w, h):\n    if w < 0:\n        raise ValueError(w)\n    return w‸ * h\n\n\ndef other():\n    pass\n",
            "def area(w, h):\n    if w < 0:\n        raise ValueError(w)\n    return w * h");
    }

    [Test]
    public void The_innermost_block_holding_the_cursor()
    {
        Check("def area(w, h):\n    if w < 0:\n        raise ‸ValueError(w)\n    return w * h\n", "    if w < 0:\n        raise ValueError(w)");
    }

    [Test]
    public void A_header_line_selects_its_own_block_with_decorators()
    {
        Check("class Shape:\n    @property\n    def ar‸ea(self):\n        return 0\n\n    def size(self):\n        return 1\n", "    @property\n    def area(self):\n        return 0");
    }

    [Test]
    public void A_brace_block_includes_its_closing_brace()
    {
        Check("class Circle\n{\n    public double Area()\n    {\n        return Math.PI‸ * R * R;\n    }\n\n    public double R { get; }\n}\n",
            "    public double Area()\n    {\n        return Math.PI * R * R;\n    }", "csharp");
    }

    [Test]
    public void A_same_line_brace_block_with_attributes()
    {
        Check("impl Circle {\n    #[inline]\n    pub fn area(&self) -> f64 {\n        PI * self.r‸ * self.r\n    }\n}\n",
            "    #[inline]\n    pub fn area(&self) -> f64 {\n        PI * self.r * self.r\n    }", "rust");
    }

    [Test]
    public void The_cursor_on_a_closing_brace_selects_the_block_it_closes()
    {
        Check("function f() {\n  if (x) {\n    g();\n  }‸\n  return 1;\n}\n", "  if (x) {\n    g();\n  }", "typescript");
    }

    [Test]
    public void A_blank_line_belongs_to_the_code_above_it()
    {
        Check("def f():\n    a = 1\n‸\n    return a\n", "def f():\n    a = 1\n\n    return a");
    }

    [Test]
    public void A_selection_widens_to_whole_lines()
    {
        Check("a = 1\nb = [|2\nc = 3\n|]d = 4\n", "b = 2\nc = 3");
    }
}
