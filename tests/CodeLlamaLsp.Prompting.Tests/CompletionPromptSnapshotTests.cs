// Snapshot tests of completion prompts: four languages at six cursor positions in both prompt forms, and a
// 20,000-line file. The approved files under Snapshots/ show exactly what the model is asked.
using CodeLlamaLsp.Inference.Generation;

namespace CodeLlamaLsp.Prompting.Tests;

public class CompletionPromptSnapshotTests
{
    public static IEnumerable<TestCaseData> Cases() =>
        from sample in SampleSources.All
        from position in SampleSources.Positions
        select new TestCaseData(sample.LanguageId, sample.Path, sample.Markup, position).SetName($"{sample.LanguageId}_{position}");

    [TestCaseSource(nameof(Cases))]
    public void Instruct_prompt(string languageId, string path, string markup, string position) =>
        Check($"instruct-{languageId}-{position}", Markup.Parse(markup, languageId, path, position), TestEnvironment.Instruct34B);

    [TestCaseSource(nameof(Cases))]
    public void Infill_prompt(string languageId, string path, string markup, string position) =>
        Check($"infill-{languageId}-{position}", Markup.Parse(markup, languageId, path, position), TestEnvironment.Infill7B);

    [Test]
    public void Instruct_prompt_with_a_snippet_from_another_open_file()
    {
        var snapshot = Markup.Parse(SampleSources.Python, "python", "shapes/circle.py", "empty") with
        {
            OtherDocuments =
            [
                new OpenDocument("shapes/square.py", "python", "from dataclasses import dataclass\n\n\n@dataclass\nclass Square:\n    side: float\n\n    def scaled(self, factor: float) -> \"Square\":\n        if factor <= 0:\n            raise ValueError(\"factor must be positive\")\n        return Square(self.side * factor)\n", DateTimeOffset.UnixEpoch.AddHours(2)),
                new OpenDocument("web/app.ts", "typescript", "export const factor = 2;\n", DateTimeOffset.UnixEpoch.AddHours(3)),
            ],
        };
        Check("instruct-python-snippet", snapshot, TestEnvironment.Instruct34B);
    }

    [Test]
    public void Instruct_prompt_in_a_20000_line_file()
    {
        string text = SampleSources.LargePython(20_000);
        int function = text.IndexOf("def scale_2000(", StringComparison.Ordinal);
        int cursor = text.IndexOf("    return [v * factor", function, StringComparison.Ordinal) + "    return [v * fac".Length;
        var snapshot = new EditorSnapshot(text, "python", "gen/scales.py", cursor);
        Check("instruct-python-20000-lines", snapshot, TestEnvironment.Instruct34B);
    }

    /// <summary>Builds the prompt and compares a readable rendering of it (mode, cursor facts, options, text) with the approved file.</summary>
    private static void Check(string name, EditorSnapshot snapshot, ModelInfo model)
    {
        var prompt = CompletionPromptBuilder.Build(snapshot, TestEnvironment.Tokenizer, model);
        Assert.That(prompt.PromptIds.Count, Is.LessThanOrEqualTo(Math.Min(model.ContextLength - prompt.Options.MaxNewTokens, new PromptSettings().MaxPromptTokens)));
        var context = prompt.Context;
        var options = prompt.Options;
        string rendered =
            $"mode: {prompt.Mode}\n"
            + $"multiLine: {context.MultiLine}; blockIndent: {context.BlockIndentColumns}; indent: {(context.Indent.UseTabs ? "tabs" : "spaces")} {context.Indent.Width}; lineEnding: {Snapshots.Escape(context.LineEnding)}; heldBack: \"{Snapshots.Escape(context.HeldBackWhitespace)}\"\n"
            + $"linePrefix: \"{Snapshots.Escape(context.LinePrefix)}\"; lineSuffix: \"{Snapshots.Escape(context.LineSuffix)}\"\n"
            + $"maxNewTokens: {options.MaxNewTokens}; temperature: {options.Temperature}; stopIds: [{string.Join(", ", options.StopTokenIds)}]; stopStrings: [{string.Join(", ", options.StopStrings.Select(s => "\"" + Snapshots.Escape(s) + "\""))}]\n"
            + "---- prompt text ----\n"
            + prompt.PromptText
            + "\n---- end ----\n";
        Snapshots.Approve(name, rendered);
    }
}
