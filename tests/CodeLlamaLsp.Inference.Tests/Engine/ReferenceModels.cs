// Loads the shared fixture checkpoints once per test run on the CPU backend, and reads their reference
// outputs (transformers in fp32 on the dequantized weights), for the engine's golden tests.
using System.Text.Json;
using CodeLlamaLsp.Inference.Engine;
using CodeLlamaLsp.Inference.Engine.Cpu;
using CodeLlamaLsp.Inference.Loading;
using CodeLlamaLsp.Inference.Tests.Loading;

namespace CodeLlamaLsp.Inference.Tests.Engine;

/// <summary>One prompt of a fixture's reference.json.</summary>
internal sealed record ReferenceCase(int[] Prompt, int[] Greedy, float[] LastLogits, int[] AllPositionsArgmax);

/// <summary>A fixture loaded on the CPU backend, shared by the tests of one run.</summary>
internal sealed class ReferenceModel : IDisposable
{
    private static readonly Dictionary<string, ReferenceModel> Loaded = [];

    private ReferenceModel(string fixture)
    {
        Fixture = fixture;
        Checkpoint = ModelLoader.Load(Fixtures.Path(fixture));
        Backend = new CpuBackend();
        Model = LlamaModel.Load(Checkpoint.Weights, Backend);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixtures.Path(fixture), "reference.json")));
        Cases = doc.RootElement.GetProperty("results").EnumerateArray().Select(r => new ReferenceCase(
            Ints(r.GetProperty("prompt")),
            Ints(r.GetProperty("greedy")),
            r.GetProperty("last_logits").EnumerateArray().Select(v => v.GetSingle()).ToArray(),
            Ints(r.GetProperty("all_positions_argmax")))).ToArray();
    }

    public static string[] FixtureNames => [Fixtures.Tiny, Fixtures.Mini4Bit, Fixtures.Mini8Bit];

    public string Fixture { get; }

    public LoadedModel Checkpoint { get; }

    public CpuBackend Backend { get; }

    public LlamaModel Model { get; }

    public IReadOnlyList<ReferenceCase> Cases { get; }

    /// <summary>Every (fixture, prompt index) pair, for TestCaseSource.</summary>
    public static IEnumerable<TestCaseData> AllCases() =>
        from f in FixtureNames
        from i in Enumerable.Range(0, PromptCount(f))
        select new TestCaseData(f, i).SetArgDisplayNames(f, $"prompt{i}");

    public static ReferenceModel Get(string fixture)
    {
        lock (Loaded)
        {
            if (!Loaded.TryGetValue(fixture, out var model))
            {
                model = new ReferenceModel(fixture);
                Loaded[fixture] = model;
            }

            return model;
        }
    }

    public static void DisposeAll()
    {
        lock (Loaded)
        {
            foreach (var m in Loaded.Values)
            {
                m.Dispose();
            }

            Loaded.Clear();
        }
    }

    public void Dispose()
    {
        Model.Dispose();
        Backend.Dispose();
        Checkpoint.Dispose();
    }

    private static int PromptCount(string fixture)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixtures.Path(fixture), "reference-prompts.json")));
        return doc.RootElement.GetArrayLength();
    }

    private static int[] Ints(JsonElement array) => array.EnumerateArray().Select(v => v.GetInt32()).ToArray();
}

/// <summary>Numeric comparisons the golden tests share.</summary>
internal static class Numerics
{
    /// <summary>||a - b|| / ||b||.</summary>
    public static double RelativeL2(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected)
    {
        double diff = 0, norm = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double d = actual[i] - expected[i];
            diff += d * d;
            norm += (double)expected[i] * expected[i];
        }

        return Math.Sqrt(diff / norm);
    }

    public static int Argmax(ReadOnlySpan<float> values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best])
            {
                best = i;
            }
        }

        return best;
    }
}
