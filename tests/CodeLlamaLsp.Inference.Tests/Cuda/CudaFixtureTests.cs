// The CUDA done-when on the shared fixtures (their README's fp16 GPU targets): relative L2 error of the
// last logits below 1e-2, the same argmax at every prompt position, and the first 8 greedy tokens equal.
// A position (prompt or greedy step) where the fp32 oracle's top two logits differ by less than one fp16 step of
// the logits themselves may flip (IsNearTie); the flip is printed. The CUDA engine is checked as the server runs it
// (CudaModel and CudaDecodingSession, greedy tokens through BeginGeneration and Advance). GPU only: on ILGPU's CPU
// accelerator a 32000-word vocabulary takes minutes per case, so CI covers the same kernels through BackendOpsTests
// instead.
using CodeLlamaLsp.Inference.Engine;
using CodeLlamaLsp.Inference.Engine.Cuda;
using CodeLlamaLsp.Inference.Generation;
using CodeLlamaLsp.Inference.Loading;
using CodeLlamaLsp.Inference.Tests.Engine;
using CodeLlamaLsp.Inference.Tests.Loading;

namespace CodeLlamaLsp.Inference.Tests.Cuda;

[NonParallelizable]
public class CudaFixtureTests
{
    /// <summary>Fixture README: fp16 GPU path, relative L2 error of last_logits.</summary>
    private const double LastLogitsTolerance = 1e-2;

    /// <summary>
    /// True when two logits of the fp32 CPU oracle (which matches the reference to 1e-4) differ by less than one fp16
    /// step at their magnitude (2^-7 = 0.0078 for logits in [8, 16)): the GPU keeps activations and the KV cache in
    /// fp16, which cannot order such a pair. History: a fixed 2e-3, then 5e-3 once the prefill GEMM moved fp16
    /// roundings (mini-8bit prompt 3 position 167, gap 0.00243); with fp16 activations in the decode GEMV, mini-8bit
    /// prompt 1's seventh greedy token (109 vs 473, oracle logits 10.9174 and 10.9123, gap 0.0052) flips.
    /// </summary>
    private static bool IsNearTie(float a, float b)
    {
        float magnitude = Math.Max(Math.Abs(a), Math.Abs(b));
        float fp16Step = magnitude < 6.1e-5f ? 6e-8f : MathF.Pow(2, MathF.Floor(MathF.Log2(magnitude)) - 10);
        return Math.Abs(a - b) < fp16Step;
    }

    /// <summary>Fixture README: greedy tokens identical for at least the first 8.</summary>
    private const int GreedyTokensChecked = 8;

    [OneTimeTearDown]
    public void ReleaseOracles() => ReferenceModel.DisposeAll();

    public static IEnumerable<TestCaseData> Cases()
    {
        foreach (var f in ReferenceModel.FixtureNames)
        {
            // A missing fixture folder still yields a case, which then fails saying what is missing.
            int count = File.Exists(Path.Combine(Fixtures.Path(f), "reference.json")) ? Reference.Read(f).Count : 1;
            for (int i = 0; i < count; i++)
            {
                yield return new TestCaseData("gpu", f, i).SetArgDisplayNames("gpu", f, $"prompt{i}").SetCategory("Gpu");
            }
        }
    }

    [TestCaseSource(nameof(Cases))]
    public void Cuda_session_meets_the_fp16_targets(string kind, string fixture, int promptIndex)
    {
        var device = TestDevices.Get(kind);
        var expected = Reference.Read(fixture)[promptIndex];
        using var checkpoint = ModelLoader.Load(Fixtures.Path(fixture));
        using var backend = new CudaBackend(device, ownsDevice: false);
        using var model = CudaModel.Load(backend, checkpoint.Weights);
        using var session = new CudaDecodingSession(model, contextLength: 512, maxBatchRows: 128);
        int vocab = checkpoint.Config.VocabSize;

        var all = session.EvaluateAllPositions(expected.Prompt);
        CheckLogits(fixture, expected, all, vocab);

        // Greedy as the server runs it: a cold prefill with the first id chosen on the device, then one graph replay per token.
        session.Reset();
        var greedy = new List<int> { session.BeginGeneration(expected.Prompt, GenerationOptions.Greedy(GreedyTokensChecked), CancellationToken.None) };
        while (greedy.Count < GreedyTokensChecked)
        {
            greedy.Add(session.Advance(greedy[^1]));
        }

        CheckGreedy(fixture, expected, greedy, vocab);
    }

    /// <summary>
    /// The greedy tokens equal the reference's; at the first difference the fp32 oracle is asked for that step's
    /// logits, and a near-tie there ends the comparison (later tokens follow another context), anything else fails.
    /// </summary>
    private static void CheckGreedy(string fixture, ReferenceCase expected, List<int> greedy, int vocab)
    {
        int step = 0;
        while (step < GreedyTokensChecked && greedy[step] == expected.Greedy[step])
        {
            step++;
        }

        if (step < GreedyTokensChecked)
        {
            var oracle = ReferenceModel.Get(fixture);
            using var session = new InferenceSession(oracle.Model, contextLength: 512, maxBatchTokens: 128);
            var logits = session.Prefill([.. expected.Prompt, .. expected.Greedy.Take(step)]);
            float want = logits[expected.Greedy[step]];
            float got = logits[greedy[step]];
            TestContext.Out.WriteLine($"greedy token {step}: expected {expected.Greedy[step]}, got {greedy[step]}; fp32 oracle logits {want} and {got}");
            Assert.That(IsNearTie(want, got), $"greedy token {step}: {greedy[step]} instead of {expected.Greedy[step]} where the fp32 oracle's gap is {Math.Abs(want - got):G3}, above fp16 resolution");
        }
    }

    private static void CheckLogits(string fixture, ReferenceCase expected, float[] all, int vocab)
    {
        int n = expected.Prompt.Length;
        var argmax = Enumerable.Range(0, n).Select(t => Numerics.Argmax(all.AsSpan(t * vocab, vocab))).ToArray();
        var differing = Enumerable.Range(0, n).Where(t => argmax[t] != expected.AllPositionsArgmax[t]).ToArray();
        if (differing.Length > 0)
        {
            // Accept a flip only where the fp32 oracle itself sees a near-tie between the two tokens.
            var oracle = ReferenceModel.Get(fixture);
            using var session = new InferenceSession(oracle.Model, contextLength: 512, maxBatchTokens: 128);
            var cpu = session.EvaluateAllPositions(expected.Prompt);
            foreach (int t in differing)
            {
                float want = cpu[(t * vocab) + expected.AllPositionsArgmax[t]];
                float got = cpu[(t * vocab) + argmax[t]];
                TestContext.Out.WriteLine($"position {t}: expected {expected.AllPositionsArgmax[t]}, got {argmax[t]}; fp32 oracle gap {Math.Abs(want - got):G3}");
                if (IsNearTie(want, got))
                {
                    argmax[t] = expected.AllPositionsArgmax[t];
                }
            }
        }

        var last = all.AsSpan((n - 1) * vocab, vocab).ToArray();
        Assert.Multiple(() =>
        {
            Assert.That(argmax, Is.EqualTo(expected.AllPositionsArgmax), "argmax at every prompt position");
            Assert.That(Numerics.RelativeL2(last, expected.LastLogits), Is.LessThan(LastLogitsTolerance), "relative L2 error of the last logits");
        });
    }

    /// <summary>Reads a fixture's reference cases without loading its weights.</summary>
    private static class Reference
    {
        private static readonly Dictionary<string, IReadOnlyList<ReferenceCase>> Cache = [];

        public static IReadOnlyList<ReferenceCase> Read(string fixture)
        {
            lock (Cache)
            {
                if (!Cache.TryGetValue(fixture, out var cases))
                {
                    using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixtures.Path(fixture), "reference.json")));
                    cases = doc.RootElement.GetProperty("results").EnumerateArray().Select(r => new ReferenceCase(
                        r.GetProperty("prompt").EnumerateArray().Select(v => v.GetInt32()).ToArray(),
                        r.GetProperty("greedy").EnumerateArray().Select(v => v.GetInt32()).ToArray(),
                        r.GetProperty("last_logits").EnumerateArray().Select(v => v.GetSingle()).ToArray(),
                        r.GetProperty("all_positions_argmax").EnumerateArray().Select(v => v.GetInt32()).ToArray())).ToArray();
                    Cache[fixture] = cases;
                }

                return cases;
            }
        }
    }
}
