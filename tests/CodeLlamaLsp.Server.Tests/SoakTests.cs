// A soak test against the real server process (tiny fixture, CPU), run only with CODELLAMA_SOAK_MINUTES set:
// simulated typing over 20 documents for that many minutes, a third of the requests cancelled, documents
// closed and reopened. Prints latency percentiles and memory per quarter of the run, and asserts that every
// request was answered exactly once, one generation ran at a time and memory stayed flat after warm-up.
using System.Diagnostics;
using System.Globalization;
using CodeLlamaLsp.Server.Protocol;
using StreamJsonRpc;
using Range = CodeLlamaLsp.Server.Protocol.Range;

namespace CodeLlamaLsp.Server.Tests;

[NonParallelizable]
public class SoakTests
{
    private const int Documents = 20;

    [Test]
    public async Task Typing_over_20_documents_with_cancellations_keeps_latency_and_memory_flat()
    {
        if (!double.TryParse(Environment.GetEnvironmentVariable("CODELLAMA_SOAK_MINUTES"), NumberStyles.Float, CultureInfo.InvariantCulture, out double minutes))
        {
            Assert.Ignore("set CODELLAMA_SOAK_MINUTES to run the soak test (e.g. 5)");
        }

        await using var client = LspTestClient.StartProcess("--model", ReferenceCompletion.FixtureDir, "--device", "cpu", "--temperature", "0", "--max-tokens", "8", "--context-size", "512");
        await client.InitializeAsync();
        await client.WaitForStatusAsync(ServerStates.Ready, TimeSpan.FromSeconds(60));
        var uris = Enumerable.Range(0, Documents).Select(i => $"file:///tmp/codellama-soak/module_{i}.py").ToArray();
        var cursors = new (int Line, int Character)[Documents];
        foreach (string uri in uris)
        {
            await client.OpenAsync(uri, "import math\n\n");
        }

        var random = new Random(17);
        var duration = TimeSpan.FromMinutes(minutes);
        var run = Stopwatch.StartNew();
        var samples = new List<(TimeSpan At, double Ms, bool Cancelled)>();
        var memory = new List<(TimeSpan At, long Rss, long Managed)>();
        var pending = new List<Task>();
        int requests = 0;
        const string Typing = "def area(radius):\n    return math.pi * radius * radius\n\n";
        while (run.Elapsed < duration)
        {
            int doc = random.Next(Documents);
            string uri = uris[doc];
            if (random.Next(200) == 0)
            {
                // Close and reopen: the store and the suggestion cache must forget, not accumulate.
                await client.NotifyAsync("textDocument/didClose", new DidCloseTextDocumentParams(new TextDocumentIdentifier(uri)));
                await client.OpenAsync(uri, "import math\n\n");
                cursors[doc] = (0, 0);
            }

            var (line, character) = cursors[doc];
            char typed = Typing[(line * 7 + character) % Typing.Length];
            var at = new Position(line + 2, character);
            await client.ChangeAsync(uri, new Range(at, at), typed.ToString());
            cursors[doc] = typed == '\n' ? (line + 1, 0) : (line, character + 1);

            var started = run.Elapsed;
            var clock = Stopwatch.StartNew();
            using var cancel = new CancellationTokenSource();
            bool cancelled = random.Next(3) == 0;
            if (cancelled)
            {
                cancel.CancelAfter(random.Next(0, 60));
            }

            requests++;
            var request = client.InlineCompletionAsync(uri, new Position(cursors[doc].Line + 2, cursors[doc].Character), cancel.Token);
            pending.Add(request.ContinueWith(
                t =>
                {
                    lock (samples)
                    {
                        samples.Add((started, clock.Elapsed.TotalMilliseconds, t.IsCanceled || t.Exception?.InnerException is RemoteInvocationException { ErrorCode: LspErrorCodes.RequestCancelled }));
                    }
                },
                TaskScheduler.Default));
            pending.RemoveAll(p => p.IsCompleted);
            if (memory.Count == 0 || run.Elapsed - memory[^1].At > TimeSpan.FromSeconds(5))
            {
                client.Process!.Refresh();
                memory.Add((run.Elapsed, client.Process.WorkingSet64, (await client.DebugStatsAsync()).ManagedMemoryBytes));
            }

            await Task.Delay(random.Next(20, 120));
        }

        await Task.WhenAll(pending).WaitAsync(TimeSpan.FromMinutes(2));
        var stats = await client.DebugStatsAsync();
        Print(duration, samples, memory, stats);

        Assert.That(samples, Has.Count.EqualTo(requests), "every request answered exactly once");
        Assert.That(stats.MaxInFlight, Is.EqualTo(1));
        var (early, late) = (Quarter(memory, duration, 1), Quarter(memory, duration, 3));
        Assert.That(late.Rss, Is.LessThan((early.Rss * 5 / 4) + (32L << 20)), "RSS flat after the first quarter");
        Assert.That(late.Managed, Is.LessThan((early.Managed * 5 / 4) + (32L << 20)), "managed memory flat after the first quarter");
        Assert.That(await client.ShutdownAndExitAsync(), Is.Zero);
    }

    /// <summary>The median RSS and managed memory of the samples in quarter <paramref name="q"/> (0..3) of the run.</summary>
    private static (long Rss, long Managed) Quarter(List<(TimeSpan At, long Rss, long Managed)> memory, TimeSpan duration, int q)
    {
        var inQuarter = memory.Where(m => (int)(m.At / duration * 4) == q).ToList();
        inQuarter = inQuarter.Count > 0 ? inQuarter : memory;
        return (inQuarter.Select(m => m.Rss).Order().ElementAt(inQuarter.Count / 2), inQuarter.Select(m => m.Managed).Order().ElementAt(inQuarter.Count / 2));
    }

    private static void Print(TimeSpan duration, List<(TimeSpan At, double Ms, bool Cancelled)> samples, List<(TimeSpan At, long Rss, long Managed)> memory, DebugStats stats)
    {
        for (int q = 0; q < 4; q++)
        {
            var answered = samples.Where(s => (int)(s.At / duration * 4) == q && !s.Cancelled).Select(s => s.Ms);
            var (rss, managed) = Quarter(memory, duration, q);
            TestContext.Out.WriteLine($"quarter {q + 1}: {TypingSimulationTests.Percentiles(answered)}; RSS {rss >> 20} MB, managed {managed >> 20} MB");
        }

        TestContext.Out.WriteLine($"{samples.Count} requests, {samples.Count(s => s.Cancelled)} cancelled; generations started {stats.GenerationsStarted}, superseded {stats.GenerationsSuperseded}, debounced {stats.RequestsDebounced}, cache hits {stats.CacheHits}, max in flight {stats.MaxInFlight}");
    }
}
