// Speculative decoding on the CPU engine: a draft verified in one forward pass chooses exactly the ids that
// plain one-token steps choose (greedy, and sampled with the same seed), the cache forgets rejected tokens,
// the generator's answer is the same token for token with speculation on and off for every fixture prompt
// and for prompts built to repeat themselves (where drafts are accepted), stops stay exact, and sampling
// through a verification keeps the model's distribution (a chi-square test against the exact p).
using CodeLlamaLsp.Inference.Engine;
using CodeLlamaLsp.Inference.Generation;
using CodeLlamaLsp.Inference.Loading;
using CodeLlamaLsp.Inference.Sampling;
using CodeLlamaLsp.Inference.Tests.Loading;

namespace CodeLlamaLsp.Inference.Tests.Engine;

[NonParallelizable]
public class SpeculativeDecodingTests
{
    private const int ContextLength = 512;
    private const int AnswerTokens = 32; // reference.json's greedy length

    // One generator per fixture and context length, so a second run of a prompt takes it from the prefix cache.
    private readonly Dictionary<(string Fixture, int Context), InProcessGenerator> _generators = [];

    [OneTimeTearDown]
    public void Release()
    {
        foreach (var generator in _generators.Values)
        {
            generator.Dispose();
        }

        ReferenceModel.DisposeAll();
    }

    public static IEnumerable<TestCaseData> FixturePrompts() => ReferenceModel.AllCases();

    [TestCaseSource(nameof(FixturePrompts))]
    public async Task Greedy_answers_are_identical_with_and_without_speculation(string fixture, int promptIndex)
    {
        var reference = ReferenceModel.Get(fixture);
        var prompt = reference.Cases[promptIndex].Prompt;

        var plain = await GenerateAsync(reference, prompt, GenerationOptions.Greedy(AnswerTokens) with { Speculative = SpeculativeMode.Off });
        var speculative = await GenerateAsync(reference, prompt, GenerationOptions.Greedy(AnswerTokens));

        Assert.Multiple(() =>
        {
            Assert.That(speculative.TokenIds, Is.EqualTo(plain.TokenIds));
            Assert.That(speculative.TokenIds, Is.EqualTo(reference.Cases[promptIndex].Greedy[..speculative.TokenIds.Count]), "the reference, up to an end of sequence");
            Assert.That(speculative.StopReason, Is.EqualTo(plain.StopReason));
            Assert.That(plain.DraftedTokens, Is.Zero);
        });
    }

    [TestCase(Fixtures.Tiny)]
    [TestCase(Fixtures.Mini4Bit)]
    [TestCase(Fixtures.Mini8Bit)]
    public async Task Greedy_answers_that_repeat_themselves_are_identical_and_drafts_are_accepted(string fixture)
    {
        var reference = ReferenceModel.Get(fixture);
        int drafted = 0, accepted = 0;
        foreach (var prompt in RepeatingPrompts(reference))
        {
            var plain = await GenerateAsync(reference, prompt, RepeatingGreedy with { Speculative = SpeculativeMode.Off });
            var speculative = await GenerateAsync(reference, prompt, RepeatingGreedy);
            Assert.That(speculative.TokenIds, Is.EqualTo(plain.TokenIds), $"prompt of {prompt.Length} tokens");
            drafted += speculative.DraftedTokens;
            accepted += speculative.AcceptedTokens;
        }

        TestContext.Out.WriteLine($"{fixture}: {accepted} of {drafted} draft tokens accepted");
        Assert.That(accepted, Is.Positive);
    }

    [Test]
    public async Task Sampled_answers_are_identical_with_and_without_speculation_for_the_same_seed()
    {
        var reference = ReferenceModel.Get(Fixtures.Tiny);
        var prompt = RepeatingPrompts(reference).First();
        int accepted = 0;
        for (int seed = 1; seed <= 4; seed++)
        {
            var options = RepeatingGreedy with { MaxNewTokens = 40, Seed = seed, Temperature = 0.5f, TopK = 40 };
            var plain = await GenerateAsync(reference, prompt, options with { Speculative = SpeculativeMode.Off });
            var speculative = await GenerateAsync(reference, prompt, options);
            Assert.That(speculative.TokenIds, Is.EqualTo(plain.TokenIds), $"seed {seed}");
            accepted += speculative.AcceptedTokens;
        }

        Assert.That(accepted, Is.Positive);
    }

    [Test]
    public void A_verified_draft_chooses_what_single_steps_choose_and_the_cache_forgets_rejected_tokens()
    {
        var reference = ReferenceModel.Get(Fixtures.Mini4Bit);
        var prompt = reference.Cases[1].Prompt;
        var greedy = reference.Cases[1].Greedy;
        using var session = new InferenceSession(reference.Model, ContextLength);
        int first = session.BeginGeneration(prompt, GenerationOptions.Greedy(32), CancellationToken.None);

        // The model's own next three tokens, then a wrong one, then more that would be right.
        int wrong = (greedy[4] + 1) % reference.Model.Config.VocabSize;
        var ids = session.AdvanceWithDraft(first, [greedy[1], greedy[2], greedy[3], wrong, greedy[5]]);

        Assert.Multiple(() =>
        {
            Assert.That(first, Is.EqualTo(greedy[0]));
            Assert.That(ids, Is.EqualTo(greedy[1..5]));
            Assert.That(session.CachedTokens, Is.EqualTo(prompt.Concat(greedy[..4])));
            Assert.That(session.Advance(ids[^1]), Is.EqualTo(greedy[5]), "decoding goes on from the accepted tokens");
        });
    }

    [Test]
    public void The_token_by_token_fallback_returns_what_the_batched_verification_returns()
    {
        var reference = ReferenceModel.Get(Fixtures.Tiny);
        var prompt = reference.Cases[0].Prompt;
        var greedy = reference.Cases[0].Greedy;
        var options = new GenerationOptions { Seed = 5, Temperature = 0.8f };
        using var batched = new InferenceSession(reference.Model, ContextLength);
        using var stepwise = new InferenceSession(reference.Model, ContextLength);
        IDecodingSession fallback = new StepOnlySession(stepwise);
        int first = batched.BeginGeneration(prompt, options, CancellationToken.None);
        Assume.That(fallback.BeginGeneration(prompt, options, CancellationToken.None), Is.EqualTo(first));

        int[] draft = [greedy[1], greedy[2], greedy[3]];
        var expected = batched.AdvanceWithDraft(first, draft);
        var actual = fallback.AdvanceWithDraft(first, draft);

        Assert.Multiple(() =>
        {
            Assert.That(actual, Is.EqualTo(expected));
            Assert.That(stepwise.CachedTokens, Is.EqualTo(batched.CachedTokens));
        });
    }

    [Test]
    public async Task Stops_max_tokens_and_a_full_context_end_a_speculative_answer_where_a_plain_one_ends()
    {
        var reference = ReferenceModel.Get(Fixtures.Tiny);
        var prompt = RepeatingPrompts(reference).First();
        var plain = await GenerateAsync(reference, prompt, RepeatingGreedy with { Speculative = SpeculativeMode.Off });
        Assume.That(plain.TokenIds, Has.Count.EqualTo(RepeatingGreedy.MaxNewTokens));
        int stopToken = plain.TokenIds[23];
        var cases = new (string Name, GenerationOptions Options, int Context)[]
        {
            ("max tokens", RepeatingGreedy with { MaxNewTokens = 13 }, ContextLength),
            ("stop token", RepeatingGreedy with { StopTokenIds = [stopToken] }, ContextLength),
            ("context full", RepeatingGreedy, prompt.Length + 17),
        };

        foreach (var (name, options, context) in cases)
        {
            var off = await GenerateAsync(reference, prompt, options with { Speculative = SpeculativeMode.Off }, context);
            var on = await GenerateAsync(reference, prompt, options, context);
            Assert.That((on.TokenIds, on.StopReason), Is.EqualTo((off.TokenIds, off.StopReason)), name);
        }
    }

    [Test]
    public async Task A_stop_string_ends_a_speculative_answer_with_the_text_before_it()
    {
        using var generator = EngineFactory.Create(ModelLoader.Load(Fixtures.Path(Fixtures.Tiny)), DeviceKind.Cpu, contextLength: ContextLength);
        var reference = ReferenceModel.Get(Fixtures.Tiny);
        var request = new GenerationRequest(RepeatingPrompts(reference).First(), string.Empty, RepeatingGreedy with { Speculative = SpeculativeMode.Off });
        var plain = await generator.GenerateAllAsync(request, CancellationToken.None);
        Assume.That(plain.Text.Length, Is.GreaterThan(30));
        var stop = plain.Text.Substring(plain.Text.Length * 2 / 3, 3);
        var stopping = request with { Options = request.Options with { StopStrings = [stop] } };

        var off = await generator.GenerateAllAsync(stopping, CancellationToken.None);
        var on = await generator.GenerateAllAsync(stopping with { Options = stopping.Options with { Speculative = SpeculativeMode.Auto } }, CancellationToken.None);

        Assert.Multiple(() =>
        {
            Assert.That(on.Text, Is.EqualTo(off.Text));
            Assert.That(on.Text, Is.EqualTo(plain.Text[..plain.Text.IndexOf(stop, StringComparison.Ordinal)]));
            Assert.That(on.StopReason, Is.EqualTo(StopReason.StopString));
        });
    }

    /// <summary>
    /// Sampling through a verification keeps the model's distribution: the id chosen at the first verified position
    /// (the draft proposes the most likely id there) is drawn over many seeds and its frequencies compared with p,
    /// computed from the logits as Sampler would (repetition penalty, temperature, top-k), by Pearson's chi-square.
    /// </summary>
    [Test]
    public void Sampling_through_a_verification_draws_from_the_models_distribution()
    {
        var reference = ReferenceModel.Get(Fixtures.Tiny);
        var prompt = reference.Cases[2].Prompt;
        int token = reference.Cases[2].Greedy[0];
        var options = new GenerationOptions { Temperature = 1.5f, TopK = 6, TopP = 1f, RepetitionPenalty = 1.1f };
        var p = ExactDistribution(reference, [.. prompt, token], options);
        int likely = Array.IndexOf(p, p.Max());
        Assume.That(p[likely], Is.InRange(0.2, 0.8), "the draft token is sometimes accepted and sometimes not");

        const int Draws = 600;
        var counts = new Dictionary<int, int>();
        using var session = new InferenceSession(reference.Model, ContextLength);
        for (int seed = 0; seed < Draws; seed++)
        {
            session.BeginGeneration(prompt, options with { Seed = seed }, CancellationToken.None);
            int chosen = session.AdvanceWithDraft(token, [likely])[0];
            counts[chosen] = counts.GetValueOrDefault(chosen) + 1;
        }

        // Six candidates: 5 degrees of freedom; 20.5 is the 0.999 quantile, so a correct sampler fails 1 run in 1000.
        double chiSquare = 0;
        foreach (int id in p.Select((q, i) => (q, i)).Where(x => x.q > 0).Select(x => x.i))
        {
            double expected = p[id] * Draws;
            double observed = counts.GetValueOrDefault(id);
            chiSquare += (observed - expected) * (observed - expected) / expected;
        }

        Assert.Multiple(() =>
        {
            Assert.That(counts.Keys.All(id => p[id] > 0), Is.True, "only top-k ids are drawn");
            Assert.That(chiSquare, Is.LessThan(20.5));
        });
    }

    /// <summary>Sampler's probabilities for the id after <paramref name="context"/>: penalty, temperature, top-k, softmax.</summary>
    private static double[] ExactDistribution(ReferenceModel reference, int[] context, GenerationOptions options)
    {
        using var session = new InferenceSession(reference.Model, ContextLength);
        var logits = session.Prefill(context);
        Sampler.ApplyRepetitionPenalty(logits, context, options.RepetitionPenalty);
        var top = logits.Select((v, i) => (v, i)).OrderByDescending(x => x.v).ThenBy(x => x.i).Take(options.TopK).ToArray();
        double max = top[0].v / options.Temperature;
        double total = top.Sum(x => Math.Exp((x.v / options.Temperature) - max));
        var p = new double[logits.Length];
        foreach (var (v, i) in top)
        {
            p[i] = Math.Exp((v / options.Temperature) - max) / total;
        }

        return p;
    }

    /// <summary>
    /// Greedy with a repetition penalty below 1, which rewards ids already seen: the fixtures' random weights never copy
    /// text on their own, and this makes their answers repeat the prompt and themselves, as code edits do, so drafts
    /// are accepted. The penalty also checks that each verified position sees the context as it is there.
    /// </summary>
    private static GenerationOptions RepeatingGreedy => GenerationOptions.Greedy(48) with { RepetitionPenalty = 0.5f };

    /// <summary>
    /// Prompts built to repeat themselves: a reference prompt, its own greedy answer and the prompt again (two on the
    /// tiny fixture, one on the slower mini ones).
    /// </summary>
    private static IEnumerable<int[]> RepeatingPrompts(ReferenceModel reference) =>
        reference.Cases.Take(reference.Fixture == Fixtures.Tiny ? 2 : 1).Select(c => c.Prompt.Concat(c.Greedy).Concat(c.Prompt.Skip(1)).ToArray());

    private async Task<GenerationResult> GenerateAsync(ReferenceModel reference, int[] prompt, GenerationOptions options, int contextLength = ContextLength)
    {
        if (!_generators.TryGetValue((reference.Fixture, contextLength), out var generator))
        {
            generator = new InProcessGenerator(new InferenceSession(reference.Model, contextLength), tokenizer: null, reference.Fixture);
            _generators[(reference.Fixture, contextLength)] = generator;
        }

        return await generator.GenerateAllAsync(new GenerationRequest(prompt, string.Empty, options), CancellationToken.None);
    }

    /// <summary>An IDecodingSession that forwards everything but AdvanceWithDraft, so the interface's default runs (as on CUDA).</summary>
    private sealed class StepOnlySession(IDecodingSession inner) : IDecodingSession
    {
        public Model.LlamaConfig Config => inner.Config;

        public string DeviceName => inner.DeviceName;

        public int ContextLength => inner.ContextLength;

        public int Position => inner.Position;

        public IReadOnlyList<int> CachedTokens => inner.CachedTokens;

        public int LastReusedTokens => inner.LastReusedTokens;

        public int LastProcessedTokens => inner.LastProcessedTokens;

        public float[] Prefill(IReadOnlyList<int> prompt, CancellationToken cancellationToken = default) => inner.Prefill(prompt, cancellationToken);

        public int BeginGeneration(IReadOnlyList<int> prompt, GenerationOptions options, CancellationToken cancellationToken) => inner.BeginGeneration(prompt, options, cancellationToken);

        public int Advance(int token) => inner.Advance(token);

        public void Reset() => inner.Reset();

        public void Dispose()
        {
        }
    }
}
