// A typing simulation against the real server process (tiny fixture, CPU): hundreds of keystrokes, each an
// incremental didChange followed by an inline completion request, as an editor sends them. Asserts that no
// more than one generation ever ran at once and that memory stays bounded; prints latency percentiles
// (printed, not asserted: timings belong to benchmarks, not to pass/fail).
using System.Diagnostics;
using System.Globalization;
using CodeLlamaLsp.Server.Protocol;
using Range = CodeLlamaLsp.Server.Protocol.Range;

namespace CodeLlamaLsp.Server.Tests;

[NonParallelizable]
public class TypingSimulationTests
{
    private const string Uri = "file:///tmp/codellama-demo/typing.py";

    [Test]
    public async Task Hundreds_of_keystrokes_keep_one_generation_in_flight_and_memory_bounded()
    {
        await using var client = LspTestClient.StartProcess("--model", ReferenceCompletion.FixtureDir, "--device", "cpu", "--temperature", "0", "--max-tokens", "16", "--context-size", "1024");
        await client.InitializeAsync();
        await client.WaitForStatusAsync(ServerStates.Ready, TimeSpan.FromSeconds(60));
        string header = string.Concat(Enumerable.Range(0, 80).Select(i => $"def helper_{i}(x):\n    return x * {i}\n\n"));
        await client.OpenAsync(Uri, header);
        int line = header.Count(c => c == '\n');

        const string Typed = "def total(values):\n    result = 0\n    for value in values:\n        result += helper_3(value)\n    return result\n\n\ndef average(values):\n    if not values:\n        return 0\n    return total(values) / len(values)\n\n\nprint(average([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]))\n";
        var latencies = new List<(double Ms, bool HasItem)>();
        var pending = new List<Task>();
        var memory = new List<long>();
        int character = 0;
        var random = new Random(7);
        for (int i = 0; i < Typed.Length; i++)
        {
            char c = Typed[i];
            var at = new Position(line, character);
            await client.ChangeAsync(Uri, new Range(at, at), c.ToString());
            if (c == '\n')
            {
                line++;
                character = 0;
            }
            else
            {
                character++;
            }

            var clock = Stopwatch.StartNew();
            pending.Add(client.InlineCompletionAsync(Uri, new Position(line, character)).ContinueWith(
                t =>
                {
                    lock (latencies)
                    {
                        latencies.Add((clock.Elapsed.TotalMilliseconds, t.IsCompletedSuccessfully && t.Result.Items.Count > 0));
                    }
                },
                TaskScheduler.Default));
            if (i % 50 == 0)
            {
                memory.Add((await client.DebugStatsAsync()).ManagedMemoryBytes);
            }

            await Task.Delay(random.Next(20, 90));
        }

        await Task.WhenAll(pending).WaitAsync(TimeSpan.FromMinutes(3));
        var stats = await client.DebugStatsAsync();
        client.Process!.Refresh();
        long rss = client.Process.WorkingSet64;

        Print(latencies, stats, memory, rss);
        Assert.That(latencies, Has.Count.EqualTo(Typed.Length), "every request was answered");
        Assert.That(stats.MaxInFlight, Is.EqualTo(1), "never more than one generation on the model");
        Assert.That(stats.InFlight, Is.Zero);
        Assert.That(stats.GenerationsStarted, Is.LessThan(Typed.Length), "debounce and supersession coalesce keystrokes");
        Assert.That(stats.RequestsDebounced + stats.GenerationsSuperseded + stats.CacheHits, Is.GreaterThan(0));
        Assert.That(memory.Max(), Is.LessThan(memory.Min() + (128L << 20)), "managed memory stays within 128 MB of its low point");
        Assert.That(await client.ShutdownAndExitAsync(), Is.Zero);
    }

    /// <summary>"n=.. p50=.. p90=.. p99=.. max=.." of latencies in milliseconds (also used by SoakTests).</summary>
    internal static string Percentiles(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0)
        {
            return "none";
        }

        double P(double q) => sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(q * sorted.Length) - 1)];
        return string.Create(CultureInfo.InvariantCulture, $"n={sorted.Length} p50={P(0.5):F0} ms p90={P(0.9):F0} ms p99={P(0.99):F0} ms max={sorted[^1]:F0} ms");
    }

    private static void Print(List<(double Ms, bool HasItem)> latencies, DebugStats stats, List<long> memory, long rss)
    {
        TestContext.Out.WriteLine($"all requests:       {Percentiles(latencies.Select(l => l.Ms))}");
        TestContext.Out.WriteLine($"with a suggestion:  {Percentiles(latencies.Where(l => l.HasItem).Select(l => l.Ms))}");
        TestContext.Out.WriteLine($"generations started {stats.GenerationsStarted}, completed {stats.GenerationsCompleted}, superseded {stats.GenerationsSuperseded}, debounced {stats.RequestsDebounced}, cache hits {stats.CacheHits}, tokens {stats.TokensGenerated}, max in flight {stats.MaxInFlight}");
        TestContext.Out.WriteLine($"managed memory samples (MB): {string.Join(", ", memory.Select(m => (m >> 20).ToString(CultureInfo.InvariantCulture)))}; server RSS {rss >> 20} MB");
    }
}
