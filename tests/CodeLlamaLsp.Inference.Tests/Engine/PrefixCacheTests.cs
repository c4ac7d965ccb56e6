// The prefix cache: a request that shares a token prefix with what the session holds reuses those keys
// and values, runs only the new tokens, and still gives exactly the logits of a fresh run.
using CodeLlamaLsp.Inference.Engine;
using CodeLlamaLsp.Inference.Tests.Loading;

namespace CodeLlamaLsp.Inference.Tests.Engine;

[NonParallelizable]
public class PrefixCacheTests
{
    private LlamaModel _model = null!;
    private int[] _longPrompt = null!;

    [OneTimeSetUp]
    public void Load()
    {
        var reference = ReferenceModel.Get(Fixtures.Mini4Bit);
        _model = reference.Model;
        _longPrompt = reference.Cases.MaxBy(c => c.Prompt.Length)!.Prompt;
    }

    [OneTimeTearDown]
    public void Release() => ReferenceModel.DisposeAll();

    [Test]
    public void Extending_the_prompt_runs_only_the_new_tokens_and_matches_a_fresh_run()
    {
        var first = _longPrompt[..100];
        var second = _longPrompt[..130];
        using var warm = NewSession();
        warm.Prefill(first);

        var reused = warm.Prefill(second);

        Assert.Multiple(() =>
        {
            Assert.That(warm.LastReusedTokens, Is.EqualTo(100));
            Assert.That(warm.LastProcessedTokens, Is.EqualTo(30));
            Assert.That(reused, Is.EqualTo(Fresh(second)));
        });
    }

    [Test]
    public void A_changed_tail_reuses_the_common_prefix_and_overwrites_the_rest()
    {
        var original = _longPrompt[..70];
        var edited = _longPrompt[..50].Concat(_longPrompt[150..170]).ToArray();
        using var warm = NewSession();
        warm.Prefill(original);
        warm.Decode(7);

        var reused = warm.Prefill(edited);

        Assert.Multiple(() =>
        {
            Assert.That(warm.LastReusedTokens, Is.EqualTo(50));
            Assert.That(warm.LastProcessedTokens, Is.EqualTo(20));
            Assert.That(warm.CachedTokens, Is.EqualTo(edited));
            Assert.That(reused, Is.EqualTo(Fresh(edited)));
        });
    }

    [Test]
    public void The_same_prompt_again_recomputes_only_its_last_token()
    {
        var prompt = _longPrompt[..50];
        using var warm = NewSession();
        var once = warm.Prefill(prompt);

        var again = warm.Prefill(prompt);

        Assert.Multiple(() =>
        {
            Assert.That(warm.LastProcessedTokens, Is.EqualTo(1));
            Assert.That(again, Is.EqualTo(once));
        });
    }

    [Test]
    public void A_prompt_longer_than_the_context_is_refused_with_the_sizes()
    {
        using var session = new InferenceSession(_model, contextLength: 16);

        Assert.That(() => session.Prefill(_longPrompt[..17]), Throws.ArgumentException.With.Message.Contains("17 tokens").And.Message.Contains("16"));
    }

    private InferenceSession NewSession() => new(_model, contextLength: 512, maxBatchTokens: 32);

    private float[] Fresh(int[] prompt)
    {
        using var session = NewSession();
        var logits = session.Prefill(prompt);
        Assert.That(session.LastReusedTokens, Is.Zero);
        return logits;
    }
}
