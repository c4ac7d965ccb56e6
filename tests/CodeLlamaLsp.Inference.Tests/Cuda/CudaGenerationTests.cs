// The CUDA generation path (InProcessGenerator over CudaDecodingSession: fused forward pass, prefix cache, token
// selection on the device) against the CPU path on the same weights: the same greedy tokens (with and
// without repetition penalty), the same sampled tokens for a seed (device top-k/top-p and the host fallback
// for top_k 0), prefix reuse with a rewind, cancellation and a full context. "sim" runs on ILGPU's CPU
// accelerator with MicroLlama; "gpu" on a real device.
using CodeLlamaLsp.Inference.Engine;
using CodeLlamaLsp.Inference.Engine.Cpu;
using CodeLlamaLsp.Inference.Engine.Cuda;
using CodeLlamaLsp.Inference.Generation;
using CodeLlamaLsp.Inference.Loading;
using CodeLlamaLsp.Inference.Model;
using CodeLlamaLsp.Inference.Tests.Engine;
using CodeLlamaLsp.Inference.Tests.Loading;

using ILGPU.Runtime.Cuda;

namespace CodeLlamaLsp.Inference.Tests.Cuda;

[NonParallelizable]
public class CudaGenerationTests
{
    private const int Context = 64;
    private static readonly LlamaWeights Weights = MicroLlama.Create(seed: 5);
    private static readonly int[] Prompt = RandomIds(new Random(3), 20);

    private static readonly GenerationOptions Sampled = new() { MaxNewTokens = 8, Temperature = 0.8f, TopK = 8, TopP = 0.9f, RepetitionPenalty = 1.2f, Seed = 11 };

    public static IEnumerable<TestCaseData> Kinds()
    {
        yield return new TestCaseData("sim");
        yield return new TestCaseData("gpu").SetCategory("Gpu");
    }

    public static IEnumerable<TestCaseData> OptionCases()
    {
        foreach (var kind in new[] { "sim", "gpu" })
        {
            foreach (var (name, options, onDevice) in new (string, GenerationOptions, bool)[]
            {
                ("greedy", GenerationOptions.Greedy(8), true),
                ("greedy-penalty", GenerationOptions.Greedy(8) with { RepetitionPenalty = 1.5f }, true),
                ("sampled-topk8", Sampled, true),
                ("sampled-topk0-host", Sampled with { TopK = 0 }, false),
            })
            {
                var data = new TestCaseData(kind, options, onDevice).SetArgDisplayNames(kind, name);
                yield return kind == "gpu" ? data.SetCategory("Gpu") : data;
            }
        }
    }

    [TestCaseSource(nameof(OptionCases))]
    public async Task Tokens_equal_the_cpu_generators(string kind, GenerationOptions options, bool onDevice)
    {
        using var cpu = CpuGenerator(Context);
        using var cuda = CudaGenerator(kind, Context);

        var expected = await cpu.GenerateAllAsync(Request(Prompt, options), CancellationToken.None);
        var actual = await cuda.GenerateAllAsync(Request(Prompt, options), CancellationToken.None);

        Assert.Multiple(() =>
        {
            Assert.That(actual.TokenIds, Is.EqualTo(expected.TokenIds));
            Assert.That(expected.TokenIds, Has.Count.GreaterThanOrEqualTo(5), "enough tokens before an end-of-sequence id to compare");
            Assert.That(((CudaDecodingSession)cuda.Session).LastSelectedOnDevice, Is.EqualTo(onDevice));
        });
    }

    /// <summary>
    /// Act-order layers (a permutation each): q/k/v and gate/up run as separate layers whose inputs one norm writes in
    /// three and two layouts. The prompt's logits and the greedy tokens match the CPU engine's.
    /// </summary>
    [TestCaseSource(nameof(Kinds))]
    public async Task Act_order_tokens_equal_the_cpu_generators(string kind)
    {
        var weights = MicroLlama.Create(seed: 7, actOrder: true);
        using var cpu = MicroLlama.CpuGenerator(weights, Context);
        using var cuda = MicroLlama.CudaGenerator(kind, weights, Context, maxBatchRows: 8);

        var expectedLogits = cpu.Session.Prefill(Prompt);
        var actualLogits = cuda.Session.Prefill(Prompt);
        var expected = await cpu.GenerateAllAsync(Request(Prompt, GenerationOptions.Greedy(8)), CancellationToken.None);
        var actual = await cuda.GenerateAllAsync(Request(Prompt, GenerationOptions.Greedy(8)), CancellationToken.None);

        Assert.Multiple(() =>
        {
            Assert.That(Numerics.RelativeL2(actualLogits, expectedLogits), Is.LessThan(1e-2), "the prompt's last logits");
            Assert.That(actual.TokenIds, Is.EqualTo(expected.TokenIds));
            Assert.That(expected.TokenIds, Has.Count.GreaterThanOrEqualTo(5), "enough tokens before an end-of-sequence id to compare");
        });
    }

    /// <summary>
    /// On an sm_90+ GPU every kernel starts with griddepcontrol.wait and the decode step's graph links consecutive
    /// kernels by programmatic edges (the other tests check the tokens it produces); elsewhere it has none.
    /// </summary>
    [Test]
    [Category("Gpu")]
    public async Task The_decode_graph_launches_kernels_before_their_predecessor_ends_on_sm90()
    {
        using var cuda = CudaGenerator("gpu", Context);
        await cuda.GenerateAllAsync(Request(Prompt, GenerationOptions.Greedy(4)), CancellationToken.None);
        var session = (CudaDecodingSession)cuda.Session;
        bool hopper = ((CudaAccelerator)TestDevices.Get("gpu").Accelerator).Architecture is { Major: >= 9 };
        Assert.That(session.LaunchesPerDecodeStep, Is.GreaterThan(10));
        Assert.That(session.ProgrammaticEdgesPerDecodeStep, hopper ? Is.EqualTo(session.LaunchesPerDecodeStep - 1) : Is.Zero);
    }

    [TestCaseSource(nameof(Kinds))]
    public async Task The_prefix_cache_reuses_the_shared_tokens_and_rewinds_past_the_rest(string kind)
    {
        var edited = Prompt[..15].Concat(RandomIds(new Random(9), 6)).ToArray();
        using var fresh = CudaGenerator(kind, Context);
        var expected = await fresh.GenerateAllAsync(Request(edited, GenerationOptions.Greedy(4)), CancellationToken.None);
        using var warm = CudaGenerator(kind, Context);
        await warm.GenerateAllAsync(Request(Prompt, GenerationOptions.Greedy(4)), CancellationToken.None);
        int cachedBefore = warm.Session.Position;

        var reused = await warm.GenerateAllAsync(Request(edited, GenerationOptions.Greedy(4)), CancellationToken.None);
        int reusedTokens = warm.Session.LastReusedTokens;
        int processed = warm.Session.LastProcessedTokens;
        var again = await warm.GenerateAllAsync(Request(edited, GenerationOptions.Greedy(4)), CancellationToken.None);

        Assert.Multiple(() =>
        {
            Assert.That(cachedBefore, Is.EqualTo(Prompt.Length + 3), "prompt plus the answer tokens fed back");
            Assert.That(reusedTokens, Is.EqualTo(15));
            Assert.That(processed, Is.EqualTo(6));
            Assert.That(reused.TokenIds, Is.EqualTo(expected.TokenIds), "after the rewind");
            Assert.That(warm.Session.LastProcessedTokens, Is.EqualTo(1), "the same prompt again");
            Assert.That(again.TokenIds, Is.EqualTo(expected.TokenIds));
            Assert.That(warm.Session.CachedTokens.Take(edited.Length), Is.EqualTo(edited));
        });
    }

    [TestCaseSource(nameof(Kinds))]
    public async Task Cancelling_stops_between_tokens(string kind)
    {
        using var cuda = CudaGenerator(kind, Context);
        var all = await cuda.GenerateAllAsync(Request(Prompt, GenerationOptions.Greedy(6)), CancellationToken.None);
        using var cancel = new CancellationTokenSource();
        var chunks = new List<GenerationChunk>();
        await foreach (var chunk in cuda.GenerateAsync(Request(Prompt, GenerationOptions.Greedy(6)), cancel.Token))
        {
            chunks.Add(chunk);
            if (chunks.Count == 3)
            {
                await cancel.CancelAsync();
            }
        }

        Assert.Multiple(() =>
        {
            Assert.That(chunks.SelectMany(c => c.TokenIds), Is.EqualTo(all.TokenIds.Take(3)));
            Assert.That(chunks[^1].Finished, Is.EqualTo(StopReason.Cancelled));
        });
    }

    [TestCaseSource(nameof(Kinds))]
    public async Task A_full_context_ends_generation(string kind)
    {
        using var cpu = CpuGenerator(Context);
        var expected = await cpu.GenerateAllAsync(Request(Prompt, GenerationOptions.Greedy(5)), CancellationToken.None);
        using var cuda = CudaGenerator(kind, Prompt.Length + 5);

        var result = await cuda.GenerateAllAsync(Request(Prompt, GenerationOptions.Greedy(12)), CancellationToken.None);

        Assert.Multiple(() =>
        {
            Assert.That(result.TokenIds, Is.EqualTo(expected.TokenIds));
            Assert.That(result.StopReason, Is.EqualTo(StopReason.ContextFull));
        });
    }

    /// <summary>Ids are checked on the host before they reach the device: a prompt's by the KvCache prompt check, a step's token by the session.</summary>
    [Test]
    public void Ids_outside_the_vocabulary_are_refused_before_they_reach_the_device()
    {
        using var cuda = CudaGenerator("sim", Context);
        var session = cuda.Session;
        int vocab = MicroLlama.Config.VocabSize;

        Assert.That(() => session.BeginGeneration([1, vocab], GenerationOptions.Greedy(1), CancellationToken.None), Throws.ArgumentException.With.Message.Contains("outside the vocabulary"));
        session.BeginGeneration(Prompt[..3], GenerationOptions.Greedy(1), CancellationToken.None);
        Assert.That(() => session.Advance(vocab), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("outside the vocabulary"));
    }

    /// <summary>
    /// The model holds nothing per sequence: two sessions on one CudaModel, their steps interleaved, each choose the
    /// greedy tokens the CPU session chooses for its prompt alone.
    /// </summary>
    [Test]
    public void Two_sessions_on_one_model_keep_their_sequences_apart()
    {
        const int Steps = 5;
        var other = RandomIds(new Random(9), 12);
        using var cpu = CpuGenerator(Context);
        int[] Expected(int[] prompt)
        {
            var ids = new int[Steps];
            ids[0] = cpu.Session.BeginGeneration(prompt, GenerationOptions.Greedy(Steps), CancellationToken.None);
            for (int i = 1; i < Steps; i++)
            {
                ids[i] = cpu.Session.Advance(ids[i - 1]);
            }

            return ids;
        }

        using var backend = new CudaBackend(TestDevices.Get("sim"), ownsDevice: false);
        using var model = CudaModel.Load(backend, Weights);
        using var first = new CudaDecodingSession(model, Context, maxBatchRows: 8);
        using var second = new CudaDecodingSession(model, Context, maxBatchRows: 8);
        var a = new int[Steps];
        var b = new int[Steps];
        a[0] = first.BeginGeneration(Prompt, GenerationOptions.Greedy(Steps), CancellationToken.None);
        b[0] = second.BeginGeneration(other, GenerationOptions.Greedy(Steps), CancellationToken.None);
        for (int i = 1; i < Steps; i++)
        {
            a[i] = first.Advance(a[i - 1]);
            b[i] = second.Advance(b[i - 1]);
        }

        Assert.Multiple(() =>
        {
            Assert.That(a, Is.EqualTo(Expected(Prompt)), "first session");
            Assert.That(b, Is.EqualTo(Expected(other)), "second session");
            Assert.That(first.CachedTokens, Is.EqualTo(Prompt.Concat(a[..^1])));
            Assert.That(second.CachedTokens, Is.EqualTo(other.Concat(b[..^1])));
        });
    }

    [Test]
    public void The_memory_estimate_is_close_to_what_the_model_and_its_session_allocate()
    {
        using var backend = new CudaBackend(TestDevices.Get("sim"), ownsDevice: false);
        long before = backend.AllocatedBytes;
        using var model = CudaModel.Load(backend, Weights);
        using var session = new CudaDecodingSession(model, Context, maxBatchRows: 8);
        long allocated = backend.AllocatedBytes - before;

        var estimate = GpuMemoryEstimate.For(Weights, Context, maxBatchRows: 8);

        Assert.That(estimate.Total, Is.InRange(allocated * 0.8, allocated * 1.25), $"estimate {estimate}, allocated {allocated} bytes");
    }

    [Test]
    public void A_model_that_does_not_fit_is_refused_up_front_with_needed_and_free_memory()
    {
        var estimate = GpuMemoryEstimate.For(Weights, 256, maxBatchRows: 8);

        Assert.That(
            () => EngineFactory.CheckFits(Weights, 256, 8, freeBytes: estimate.Total - 1, totalBytes: 2 * estimate.Total),
            Throws.InstanceOf<InsufficientGpuMemoryException>()
                .With.Message.Contains("KV cache for 256 positions")
                .And.Message.Contains("needs")
                .And.Message.Contains("free of")
                .And.Property(nameof(InsufficientGpuMemoryException.NeededBytes)).EqualTo(estimate.Total));
        Assert.That(() => EngineFactory.CheckFits(Weights, 256, 8, freeBytes: estimate.Total, totalBytes: 2 * estimate.Total), Throws.Nothing);
    }

    [Test]
    [Category("Gpu")]
    public async Task On_a_gpu_auto_runs_the_tiny_fixture_on_the_cuda_session_with_the_reference_greedy_tokens()
    {
        TestDevices.Get("gpu");
        var log = new List<string>();
        using var generator = EngineFactory.Create(ModelLoader.Load(Fixtures.Path(Fixtures.Tiny)), DeviceKind.Auto, contextLength: 512, log.Add);
        Assert.That(generator.Session, Is.InstanceOf<CudaDecodingSession>(), string.Join("\n", log));
        foreach (var reference in ReferenceModel.Get(Fixtures.Tiny).Cases)
        {
            var result = await generator.GenerateAllAsync(Request(reference.Prompt, GenerationOptions.Greedy(reference.Greedy.Length)), CancellationToken.None);
            int same = result.TokenIds.Zip(reference.Greedy).TakeWhile(p => p.First == p.Second).Count();
            TestContext.Out.WriteLine($"{same} of {reference.Greedy.Length} greedy tokens equal the reference");

            // The fixture README's fp16 target: the first 8 identical (later near-ties may flip in fp16).
            Assert.That(result.TokenIds.Take(8), Is.EqualTo(reference.Greedy.Take(8)));
        }
    }

    private static GenerationRequest Request(int[] prompt, GenerationOptions options) => new(prompt, string.Empty, options);

    private static InProcessGenerator CpuGenerator(int context) => MicroLlama.CpuGenerator(Weights, context);

    // Batches of 8 rows, so a 20-token prompt and the prefix cache's suffixes cross chunk boundaries.
    private static InProcessGenerator CudaGenerator(string kind, int context) => MicroLlama.CudaGenerator(kind, Weights, context, maxBatchRows: 8);

    private static int[] RandomIds(Random rng, int n) => MicroLlama.RandomIds(rng, n);
}
