// The engine's done-when (issue 3): on every fixture and reference prompt, the CPU backend's fp32 forward
// pass matches transformers: same argmax at every prompt position, last logits within 1e-4 relative L2,
// and the same 32 greedy tokens.
using CodeLlamaLsp.Inference.Engine;

namespace CodeLlamaLsp.Inference.Tests.Engine;

[NonParallelizable]
public class ReferenceFixtureTests
{
    /// <summary>README.md of the fixtures: what the fp32 CPU path must reach.</summary>
    private const double LastLogitsTolerance = 1e-4;

    [OneTimeTearDown]
    public void ReleaseModels() => ReferenceModel.DisposeAll();

    [TestCaseSource(typeof(ReferenceModel), nameof(ReferenceModel.AllCases))]
    public void Forward_pass_matches_the_reference(string fixture, int promptIndex)
    {
        var reference = ReferenceModel.Get(fixture);
        var expected = reference.Cases[promptIndex];
        int vocab = reference.Model.Config.VocabSize;
        using var session = new InferenceSession(reference.Model, contextLength: 512, maxBatchTokens: 128);

        var all = session.EvaluateAllPositions(expected.Prompt);
        var argmax = Enumerable.Range(0, expected.Prompt.Length).Select(t => Numerics.Argmax(all.AsSpan(t * vocab, vocab))).ToArray();
        var last = all.AsSpan((expected.Prompt.Length - 1) * vocab, vocab).ToArray();

        Assert.Multiple(() =>
        {
            Assert.That(argmax, Is.EqualTo(expected.AllPositionsArgmax), "argmax at every prompt position");
            Assert.That(Numerics.RelativeL2(last, expected.LastLogits), Is.LessThan(LastLogitsTolerance), "relative L2 error of the last logits");
        });

        var greedy = new List<int>();
        var logits = last;
        while (greedy.Count < expected.Greedy.Length)
        {
            int next = Numerics.Argmax(logits);
            greedy.Add(next);
            logits = session.Decode(next);
        }

        Assert.That(greedy, Is.EqualTo(expected.Greedy), "greedy tokens");
    }
}
