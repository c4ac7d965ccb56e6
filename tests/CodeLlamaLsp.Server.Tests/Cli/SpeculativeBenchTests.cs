// bench's speculative rows on the CPU engine with the tiny fixture (bench itself needs CUDA): drafts from the
// plain answer are all accepted, with every other token corrupted about half the answer comes from drafts,
// and every speculative run reproduces the plain greedy answer (Measure throws otherwise).
using System.Text.RegularExpressions;
using CodeLlamaLsp.Inference.Engine;
using CodeLlamaLsp.Inference.Loading;
using CodeLlamaLsp.Server.Cli;

namespace CodeLlamaLsp.Server.Tests.Cli;

public partial class SpeculativeBenchTests
{
    [Test]
    public void The_rows_measure_full_half_and_no_acceptance_against_plain_decode()
    {
        var fixture = Path.GetFullPath(Path.Combine(ServerProcess.RepoRoot, "..", "shared", "fixtures", "tiny-32k-4bit-g32"));
        using var generator = EngineFactory.Create(ModelLoader.Load(fixture), DeviceKind.Cpu, contextLength: 256);
        var random = new Random(7);
        int[] prompt = [1, .. Enumerable.Range(0, 40).Select(_ => random.Next(3, 32000))];

        var rows = SpeculativeBench.Measure(generator.Session, prompt, answerTokens: 41, repeats: 1);
        foreach (var (what, value) in rows)
        {
            TestContext.Out.WriteLine($"{what}: {value}");
        }

        var counts = rows.Skip(1).Select(r => Counts().Match(r.Value)).Select(m => (Accepted: int.Parse(m.Groups[1].Value), Drafted: int.Parse(m.Groups[2].Value), PerPass: double.Parse(m.Groups[3].Value))).ToArray();
        Assert.Multiple(() =>
        {
            Assert.That(rows, Has.Count.EqualTo(4));
            Assert.That(counts[0].Accepted, Is.EqualTo(counts[0].Drafted).And.Positive, "full acceptance");
            Assert.That(counts[0].PerPass, Is.GreaterThan(SpeculativeBench.DraftLength - 1));
            Assert.That(counts[1].PerPass, Is.InRange(1.8, 2.0), "one accepted draft token and the model's own per pass");
            Assert.That(counts[2].PerPass, Is.GreaterThanOrEqualTo(1.0), "prompt lookup");
        });
    }

    [GeneratedRegex(@"(\d+) of (\d+) draft tokens accepted, ([\d.]+) tokens per pass")]
    private static partial Regex Counts();
}
