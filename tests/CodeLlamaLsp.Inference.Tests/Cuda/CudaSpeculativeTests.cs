// Issue 16 on the CUDA session: a draft verified in one forward pass (CudaDecodingSession.AdvanceWithDraft)
// chooses the ids that plain one-token steps choose (greedy, with a repetition penalty, sampled on the device
// with the seed's draws, sampled on the host), whether the whole draft, part of it or none is accepted; the
// cache forgets rejected rows, so decoding goes on as plain decoding does; generator answers are identical with
// speculation on and off on a prompt that repeats itself; and cancelling stops a speculative answer between
// tokens. "sim" runs MicroLlama on ILGPU's CPU accelerator (about a second per pass here, so answers are short);
// "gpu" also runs the tiny fixture's prompts and the widest verification on it (too slow for "sim":
// its 32,000-id vocabulary).
using CodeLlamaLsp.Inference.Engine;
using CodeLlamaLsp.Inference.Engine.Cpu;
using CodeLlamaLsp.Inference.Engine.Cuda;
using CodeLlamaLsp.Inference.Generation;
using CodeLlamaLsp.Inference.Loading;
using CodeLlamaLsp.Inference.Model;
using CodeLlamaLsp.Inference.Tests.Engine;
using CodeLlamaLsp.Inference.Tests.Loading;

namespace CodeLlamaLsp.Inference.Tests.Cuda;

[NonParallelizable]
public class CudaSpeculativeTests
{
    private const int Context = 64;
    private static readonly LlamaWeights Weights = MicroLlama.Create(seed: 5);
    private static readonly int[] Prompt = RandomIds(new Random(3), 20);

    /// <summary>
    /// Greedy with a repetition penalty below 1, which rewards ids already seen, so random weights repeat the prompt and
    /// themselves as code edits do and drafts are accepted; it also checks that each verified row's penalty sees the
    /// context as it is at that row (the device appends each row's choice to the penalty's history, then forgets the
    /// rejected rows' choices).
    /// </summary>
    private static readonly GenerationOptions Repeating = GenerationOptions.Greedy(10) with { RepetitionPenalty = 0.5f };

    [OneTimeTearDown]
    public void ReleaseOracles() => ReferenceModel.DisposeAll();

    /// <summary>The options of CudaGenerationTests.OptionCases, whose CUDA answers that test checks against the CPU's.</summary>
    public static IEnumerable<TestCaseData> OptionCases()
    {
        foreach (var kind in new[] { "sim", "gpu" })
        {
            foreach (var (name, options) in new (string, GenerationOptions)[]
            {
                ("greedy-penalty", GenerationOptions.Greedy(8) with { RepetitionPenalty = 1.5f }),
                ("sampled-topk8", new GenerationOptions { MaxNewTokens = 8, Temperature = 0.8f, TopK = 8, TopP = 0.9f, RepetitionPenalty = 1.2f, Seed = 11 }),
                ("sampled-topk0-host", new GenerationOptions { MaxNewTokens = 8, Temperature = 0.8f, TopK = 0, TopP = 0.9f, RepetitionPenalty = 1.2f, Seed = 11 }),
            })
            {
                var data = new TestCaseData(kind, options).SetArgDisplayNames(kind, name);
                yield return kind == "gpu" ? data.SetCategory("Gpu") : data;
            }
        }
    }

    public static IEnumerable<TestCaseData> Kinds()
    {
        yield return new TestCaseData("sim");
        yield return new TestCaseData("gpu").SetCategory("Gpu");
    }

    [TestCaseSource(nameof(OptionCases))]
    public void Verified_drafts_choose_what_single_steps_choose_and_the_cache_forgets_rejected_rows(string kind, GenerationOptions options)
    {
        // The ids plain steps choose: g[0] from the prompt, then one Advance each, from the CPU session, which chooses what
        // the CUDA session's plain steps choose for these weights, prompt and options (CudaGenerationTests) and is fast.
        using var cpu = CpuGenerator();
        var plain = cpu.Session;
        var g = new int[8];
        g[0] = plain.BeginGeneration(Prompt, options, CancellationToken.None);
        for (int i = 1; i < g.Length; i++)
        {
            g[i] = plain.Advance(g[i - 1]);
        }

        using var generator = CudaGenerator(kind);
        var session = generator.Session;
        int first = session.BeginGeneration(Prompt, options, CancellationToken.None);
        int vocab = session.Config.VocabSize;

        // Partial acceptance (two draft tokens, then a wrong one), full acceptance, none; each pass goes on from the last.
        var partial = session.AdvanceWithDraft(first, [g[1], g[2], (g[3] + 1) % vocab, g[4]]);
        var cachedAfterPartial = session.CachedTokens.ToArray();
        var full = session.AdvanceWithDraft(partial[^1], [g[4], g[5]]);
        var none = session.AdvanceWithDraft(full[^1], [(g[7] + 1) % vocab]);

        Assert.Multiple(() =>
        {
            Assert.That(first, Is.EqualTo(g[0]));
            Assert.That(partial, Is.EqualTo(g[1..4]), "partial: the two accepted draft tokens and the model's own");
            Assert.That(cachedAfterPartial, Is.EqualTo(Prompt.Concat(g[..3])), "the rejected rows are forgotten");
            Assert.That(full, Is.EqualTo(g[4..7]), "full: both draft tokens and the model's next");
            Assert.That(none, Is.EqualTo(g[7..8]), "none: the model's own id");
            Assert.That(session.Position, Is.EqualTo(Prompt.Length + 7));
            Assert.That(((CudaDecodingSession)session).VerificationGraphFailure, Is.Null);
        });
    }

    /// <summary>
    /// The widest pass the session takes (15 rows: drafts are cut below the GEMM's 16 rows so that every row runs the
    /// decode step's kernels), past 128 positions where each row's attention is split in two as a decode step's is:
    /// the pass still chooses what single steps choose.
    /// </summary>
    [TestCaseSource(nameof(Kinds))]
    public void The_widest_pass_at_a_long_context_chooses_what_single_steps_choose(string kind)
    {
        const int LongContext = 192;
        var prompt = RandomIds(new Random(6), 140);
        var options = GenerationOptions.Greedy(20) with { RepetitionPenalty = 1.5f };
        using var cpu = CpuGenerator(LongContext);
        const int Draft = 14;
        var g = new int[Draft + 3];
        g[0] = cpu.Session.BeginGeneration(prompt, options, CancellationToken.None);
        for (int i = 1; i < g.Length; i++)
        {
            g[i] = cpu.Session.Advance(g[i - 1]);
        }

        using var generator = CudaGenerator(kind, LongContext, maxBatchRows: 32);
        var session = (CudaDecodingSession)generator.Session;
        Assert.That(session.MaxVerificationRows, Is.EqualTo(Draft + 1).And.EqualTo(CudaLinear.GemmMinRows - 1));
        int first = session.BeginGeneration(prompt, options, CancellationToken.None);
        var ids = session.AdvanceWithDraft(first, g.AsSpan(1, Draft));
        int next = session.Advance(ids[^1]);

        Assert.Multiple(() =>
        {
            Assert.That(first, Is.EqualTo(g[0]));
            Assert.That(ids, Is.EqualTo(g[1..^1]), "the whole draft and the model's next id");
            Assert.That(next, Is.EqualTo(g[^1]), "decoding goes on after the pass");
        });
    }

    [TestCaseSource(nameof(Kinds))]
    public async Task Answers_are_identical_with_and_without_speculation_and_drafts_are_accepted(string kind)
    {
        using var generator = CudaGenerator(kind);

        var prompt = Prompt[..10].Concat(Prompt[..10]).ToArray();

        var plain = await generator.GenerateAllAsync(Request(prompt, Repeating with { Speculative = SpeculativeMode.Off }), CancellationToken.None);
        var speculative = await generator.GenerateAllAsync(Request(prompt, Repeating), CancellationToken.None);

        TestContext.Out.WriteLine($"{speculative.AcceptedTokens} of {speculative.DraftedTokens} draft tokens accepted");
        Assert.Multiple(() =>
        {
            Assert.That(speculative.TokenIds, Is.EqualTo(plain.TokenIds));
            Assert.That(speculative.StopReason, Is.EqualTo(plain.StopReason));
            Assert.That(speculative.AcceptedTokens, Is.Positive);
        });
    }

    [TestCaseSource(nameof(Kinds))]
    public async Task Cancelling_stops_a_speculative_answer_between_tokens(string kind)
    {
        using var generator = CudaGenerator(kind);
        var prompt = Prompt[..10].Concat(Prompt[..10]).ToArray();
        var all = await generator.GenerateAllAsync(Request(prompt, Repeating), CancellationToken.None);
        Assume.That(all.AcceptedTokens, Is.Positive, "a pass returns several ids, so the cancellation falls between two of them");

        using var cancel = new CancellationTokenSource();
        var chunks = new List<GenerationChunk>();
        await foreach (var chunk in generator.GenerateAsync(Request(prompt, Repeating), cancel.Token))
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

    [Test]
    [Category("Gpu")]
    public async Task Greedy_answers_on_the_tiny_fixture_are_identical_with_and_without_speculation()
    {
        TestDevices.Get("gpu");
        var reference = ReferenceModel.Get(Fixtures.Tiny);
        using var generator = EngineFactory.Create(ModelLoader.Load(Fixtures.Path(Fixtures.Tiny)), DeviceKind.Cuda, contextLength: 1024);
        var session = (CudaDecodingSession)generator.Session;

        // Reference prompts greedy, then each prompt followed by its own answer and itself again with a repetition
        // penalty below 1 (random weights never copy text otherwise), so drafts are accepted and grow to 16 tokens.
        var cases = reference.Cases.Select(c => (c.Prompt, GenerationOptions.Greedy(32)))
            .Concat(reference.Cases.Select(c => (c.Prompt.Concat(c.Greedy).Concat(c.Prompt.Skip(1)).ToArray(), GenerationOptions.Greedy(48) with { RepetitionPenalty = 0.5f })));
        int accepted = 0;
        foreach (var (prompt, options) in cases)
        {
            // Both runs start from an empty cache: a prefix-cache hit recomputes the last prompt token alone (GEMV)
            // where a cold prefill ran it in a batch (GEMM), whose fp32 sums round differently and can flip a later
            // near-tie; that is the prefix cache's tolerance, not speculation's.
            session.Reset();
            var plain = await generator.GenerateAllAsync(Request(prompt, options with { Speculative = SpeculativeMode.Off }), CancellationToken.None);
            session.Reset();
            var speculative = await generator.GenerateAllAsync(Request(prompt, options), CancellationToken.None);
            Assert.That(speculative.TokenIds, Is.EqualTo(plain.TokenIds), $"prompt of {prompt.Length} tokens");
            accepted += speculative.AcceptedTokens;
        }

        TestContext.Out.WriteLine($"{accepted} draft tokens accepted on the CUDA session");
        Assert.Multiple(() =>
        {
            Assert.That(accepted, Is.Positive);
            Assert.That(session.VerificationGraphFailure, Is.Null, "every verification pass ran as a CUDA graph");
        });
    }

    [Test]
    [Category("Gpu")]
    public void The_widest_verification_on_the_tiny_fixture_chooses_what_single_steps_choose()
    {
        TestDevices.Get("gpu");
        var prompt = ReferenceModel.Get(Fixtures.Tiny).Cases[0].Prompt;
        using var generator = EngineFactory.Create(ModelLoader.Load(Fixtures.Path(Fixtures.Tiny)), DeviceKind.Cuda, contextLength: 1024);
        var session = (CudaDecodingSession)generator.Session;
        int rows = session.MaxVerificationRows;
        Assert.That(rows, Is.EqualTo(CudaLinear.GemmMinRows - 1), "the widest verification stays on the decode step's kernels");
        var options = GenerationOptions.Greedy(rows + 1);
        var g = new int[rows + 1];
        g[0] = session.BeginGeneration(prompt, options, CancellationToken.None);
        for (int i = 1; i < g.Length; i++)
        {
            g[i] = session.Advance(g[i - 1]);
        }

        session.Reset();
        int first = session.BeginGeneration(prompt, options, CancellationToken.None);
        var ids = session.AdvanceWithDraft(first, g.AsSpan(1, rows - 1));

        Assert.That(ids, Is.EqualTo(g[1..]), $"{rows} rows in one pass");
    }

    /// <summary>MicroLlama on the CUDA session; the session is the generator's, for tests that drive it directly.</summary>
    // Batches of 8 rows by default: verification passes of up to 8 rows (longer drafts are cut), all through the GEMV.
    private static InProcessGenerator CudaGenerator(string kind, int context = Context, int maxBatchRows = 8) => MicroLlama.CudaGenerator(kind, Weights, context, maxBatchRows);

    private static InProcessGenerator CpuGenerator(int context = Context) => MicroLlama.CpuGenerator(Weights, context);

    private static GenerationRequest Request(int[] prompt, GenerationOptions options) => new(prompt, string.Empty, options);

    private static int[] RandomIds(Random rng, int n) => MicroLlama.RandomIds(rng, n);
}
