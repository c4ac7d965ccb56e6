// The scheduler's promises: one generation on the model at a time, the newest request per document wins
// (the older one answers "superseded" after stopping between tokens), and $/cancelRequest surfaces as
// OperationCanceledException.
using CodeLlamaLsp.Inference.Generation;
using CodeLlamaLsp.Server.Scheduling;
using CodeLlamaLsp.Server.Tests.Doubles;

namespace CodeLlamaLsp.Server.Tests;

public class GenerationSchedulerTests
{
    private static readonly TimeSpan Token = TimeSpan.FromMilliseconds(20);

    private static ScriptedGenerator Generator(int tokens) =>
        new(r => Enumerable.Range(0, tokens).Select(i => $"{r.PromptText}{i} ").ToList(), Token);

    private static Func<GenerationRequest> Prompt(string text) => () => new GenerationRequest([], text, GenerationOptions.Greedy(8));

    [Test]
    public async Task A_generation_streams_the_whole_answer()
    {
        using var scheduler = new GenerationScheduler();
        var seen = new List<string>();
        var outcome = await scheduler.RunAsync("doc", TimeSpan.Zero, Generator(3), Prompt("a"), seen.Add, CancellationToken.None);

        Assert.That(outcome.Superseded, Is.False);
        Assert.That(outcome.Text, Is.EqualTo("a0 a1 a2 "));
        Assert.That(seen, Is.EqualTo(new[] { "a0 ", "a0 a1 ", "a0 a1 a2 " }));
    }

    [Test]
    public async Task Draft_token_counts_of_every_chunk_add_up_in_the_counters()
    {
        using var scheduler = new GenerationScheduler();
        var generator = new CountingGenerator([new GenerationChunk("a", [1]) { DraftedTokens = 8, AcceptedTokens = 5 }, new GenerationChunk("b", [2], StopReason.MaxTokens) { DraftedTokens = 4, AcceptedTokens = 1 }]);

        await scheduler.RunAsync("doc", TimeSpan.Zero, generator, Prompt("x"), null, CancellationToken.None);

        Assert.That(scheduler.SpeculationCounters, Is.EqualTo((12L, 6L)));
    }

    [Test]
    public async Task The_newest_request_for_a_document_supersedes_the_running_one()
    {
        using var scheduler = new GenerationScheduler();
        var generator = Generator(50);
        var first = scheduler.RunAsync("doc", TimeSpan.Zero, generator, Prompt("old"), null, CancellationToken.None);
        await Task.Delay(Token * 3);
        var second = scheduler.RunAsync("doc", TimeSpan.Zero, generator, Prompt("new"), null, CancellationToken.None);

        var older = await first.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.That(older.Superseded, Is.True);
        Assert.That((await second).Text, Does.StartWith("new0 "));
        Assert.That(generator.MaxRunning, Is.EqualTo(1));
        Assert.That(scheduler.Counters.Superseded, Is.EqualTo(1));
    }

    [Test]
    public async Task Requests_for_different_documents_queue_and_never_overlap()
    {
        using var scheduler = new GenerationScheduler();
        var generator = Generator(5);
        var all = Enumerable.Range(0, 8).Select(i => scheduler.RunAsync($"doc{i}", TimeSpan.Zero, generator, Prompt($"p{i}"), null, CancellationToken.None)).ToList();
        var outcomes = await Task.WhenAll(all);

        Assert.That(outcomes.Select(o => o.Superseded), Is.All.False);
        Assert.That(generator.MaxRunning, Is.EqualTo(1));
        Assert.That(scheduler.MaxInFlight, Is.EqualTo(1));
        Assert.That(scheduler.InFlight, Is.Zero);
    }

    [Test]
    public async Task A_burst_within_the_debounce_generates_once()
    {
        using var scheduler = new GenerationScheduler();
        var generator = Generator(2);
        var burst = new List<Task<GenerationOutcome>>();
        for (int i = 0; i < 10; i++)
        {
            burst.Add(scheduler.RunAsync("doc", TimeSpan.FromMilliseconds(200), generator, Prompt($"k{i}"), null, CancellationToken.None));
            await Task.Delay(5);
        }

        var outcomes = await Task.WhenAll(burst);
        Assert.That(generator.Calls, Is.EqualTo(1));
        Assert.That(outcomes[^1].Text, Is.EqualTo("k90 k91 "));
        Assert.That(outcomes[..^1].Select(o => o.Superseded), Is.All.True);
        Assert.That(scheduler.Counters.Debounced, Is.EqualTo(9));
    }

    [Test]
    public async Task Cancelling_the_request_stops_generation_within_a_token()
    {
        using var scheduler = new GenerationScheduler();
        var generator = Generator(1000);
        using var cts = new CancellationTokenSource();
        var run = scheduler.RunAsync("doc", TimeSpan.Zero, generator, Prompt("x"), null, cts.Token);
        await Task.Delay(Token * 5);
        var stopwatch = System.Diagnostics.Stopwatch.StartNew();
        await cts.CancelAsync();

        Exception? thrown = null;
        try
        {
            await run.WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (OperationCanceledException ex)
        {
            thrown = ex;
        }

        Assert.That(thrown, Is.Not.Null, "the cancelled run throws OperationCanceledException");
        Assert.That(stopwatch.Elapsed, Is.LessThan(Token * 10), "stopped within about one token");
        Assert.That(scheduler.Counters.Cancelled, Is.EqualTo(1));
        Assert.That(scheduler.InFlight, Is.Zero);
    }

    /// <summary>Streams the given chunks as they are.</summary>
    private sealed class CountingGenerator(IReadOnlyList<GenerationChunk> chunks) : ITextGenerator
    {
        public ModelInfo Info { get; } = new("counting", 64, 32000, SupportsInfill: false);

        public async IAsyncEnumerable<GenerationChunk> GenerateAsync(GenerationRequest request, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
        {
            foreach (var chunk in chunks)
            {
                await Task.Yield();
                yield return chunk;
            }
        }
    }
}
