// Sampling rules: greedy, seeded determinism, top-k and top-p restrict the candidates, the repetition
// penalty follows transformers, and stop strings that span tokens are found without leaking text.
using CodeLlamaLsp.Inference.Generation;
using CodeLlamaLsp.Inference.Sampling;

namespace CodeLlamaLsp.Inference.Tests.Engine;

public class SamplerTests
{
    [Test]
    public void Temperature_zero_is_argmax_with_the_lowest_id_on_ties()
    {
        var sampler = new Sampler(GenerationOptions.Greedy(1));

        Assert.That(sampler.Sample(new float[] { 1f, 5f, -2f, 5f }, []), Is.EqualTo(1));
    }

    [Test]
    public void The_same_seed_draws_the_same_tokens_and_another_seed_does_not()
    {
        var logits = RandomLogits(500, seed: 3);

        var first = Draw(logits, Options(seed: 42), 50);
        var second = Draw(logits, Options(seed: 42), 50);
        var other = Draw(logits, Options(seed: 43), 50);

        Assert.Multiple(() =>
        {
            Assert.That(second, Is.EqualTo(first));
            Assert.That(other, Is.Not.EqualTo(first));
        });
    }

    [Test]
    public void Top_k_draws_only_among_the_k_largest_logits()
    {
        var logits = RandomLogits(200, seed: 5);
        var topThree = logits.Select((v, i) => (v, i)).OrderByDescending(p => p.v).Take(3).Select(p => p.i).ToHashSet();

        var drawn = Draw(logits, Options(seed: 1) with { TopK = 3, Temperature = 5f }, 300).ToHashSet();

        Assert.That(drawn, Is.EquivalentTo(topThree));
    }

    [Test]
    public void Top_k_breaks_ties_toward_the_lowest_ids()
    {
        var drawn = Draw(new float[] { 1f, 1f, 1f, 1f, 1f }, Options(seed: 2) with { TopK = 2 }, 100);

        Assert.That(drawn.Distinct().Order(), Is.EqualTo(new[] { 0, 1 }));
    }

    [Test]
    public void Top_p_keeps_the_most_likely_ids_until_their_mass_reaches_p()
    {
        // Probabilities 0.5, 0.3, 0.15, 0.05: with top_p 0.7 only the first two are kept.
        var logits = new[] { 0.5, 0.3, 0.15, 0.05 }.Select(p => (float)Math.Log(p)).ToArray();

        var drawn = Draw(logits, Options(seed: 9) with { TopP = 0.7f, TopK = 0, Temperature = 1f }, 400);

        Assert.Multiple(() =>
        {
            Assert.That(drawn.Distinct().Order(), Is.EqualTo(new[] { 0, 1 }));
            Assert.That(drawn.Count(id => id == 0) / 400.0, Is.EqualTo(0.5 / 0.8).Within(0.08));
        });
    }

    [Test]
    public void Repetition_penalty_divides_positive_and_multiplies_negative_logits_of_seen_ids()
    {
        var logits = new[] { 4f, -2f, 3.9f, 1f };

        Sampler.ApplyRepetitionPenalty(logits, [0, 1, 0], 2f);

        Assert.That(logits, Is.EqualTo(new[] { 2f, -4f, 3.9f, 1f }));
    }

    [Test]
    public void Repetition_penalty_steers_greedy_away_from_a_repeated_token()
    {
        var sampler = new Sampler(GenerationOptions.Greedy(1) with { RepetitionPenalty = 1.1f });

        Assert.That(sampler.Sample(new[] { 4f, 0f, 3.9f }, [0]), Is.EqualTo(2));
    }

    [Test]
    public void Invalid_settings_are_refused_by_name()
    {
        Assert.Multiple(() =>
        {
            Assert.That(() => new Sampler(Options(1) with { TopP = 0f }), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("top_p"));
            Assert.That(() => new Sampler(Options(1) with { Temperature = -1f }), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("Temperature"));
        });
    }

    [Test]
    public void A_stop_string_spanning_chunks_ends_the_text_before_it()
    {
        var matcher = new StopStringMatcher(["\n```"]);

        var emitted = new[] { "return a", " + b\n", "``", "`\nmore" }.Select(matcher.Push).ToList();

        Assert.Multiple(() =>
        {
            Assert.That(string.Concat(emitted), Is.EqualTo("return a + b"));
            Assert.That(emitted[1], Is.EqualTo(" + b"), "the newline that may start the stop string is held back");
            Assert.That(matcher.Stopped, Is.True);
        });
    }

    [Test]
    public void Held_back_text_that_never_becomes_a_stop_string_is_released()
    {
        var matcher = new StopStringMatcher(["</code>", "\n\n"]);

        var text = matcher.Push("x </co") + matcher.Push("de") + matcher.Push("r>\n") + matcher.Flush();

        Assert.Multiple(() =>
        {
            Assert.That(text, Is.EqualTo("x </coder>\n"));
            Assert.That(matcher.Stopped, Is.False);
        });
    }

    private static GenerationOptions Options(int seed) => new() { Seed = seed, Temperature = 1f, TopK = 0, TopP = 1f, RepetitionPenalty = 1f };

    private static List<int> Draw(float[] logits, GenerationOptions options, int count)
    {
        var sampler = new Sampler(options);
        return Enumerable.Range(0, count).Select(_ => sampler.Sample(logits.ToArray(), [])).ToList();
    }

    private static float[] RandomLogits(int n, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(random.NextDouble() * 4)).ToArray();
    }
}
