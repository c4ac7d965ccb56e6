// Prompting tests grow here; this first one pins the project wiring (Prompting sees the Inference contracts).
using CodeLlamaLsp.Inference.Generation;

namespace CodeLlamaLsp.Prompting.Tests;

public class ProjectWiringTests
{
    [Test]
    public void Greedy_options_are_deterministic()
    {
        var options = GenerationOptions.Greedy(16);

        Assert.That(options.Temperature, Is.Zero);
        Assert.That(options.MaxNewTokens, Is.EqualTo(16));
    }
}
