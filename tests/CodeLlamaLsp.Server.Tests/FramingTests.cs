// The message reader under hostile input (issue 17): each broken frame gets exactly one ParseError and the
// server resynchronises and answers the next request; nothing loops, buffers without bound or ends the process.
// The fuzz test sends thousands of random and mutated frames (seeded; CODELLAMA_FUZZ_INPUTS sets how many).
using System.Diagnostics;
using System.Text;
using CodeLlamaLsp.Server.Lsp;
using CodeLlamaLsp.Server.Protocol;
using CodeLlamaLsp.Server.Tests.Doubles;

namespace CodeLlamaLsp.Server.Tests;

public class FramingTests
{
    private const string StatsRequest = """{"jsonrpc":"2.0","id":"raw-1","method":"codellama/debugStats"}""";

    private static async Task<HostedServer> ReadyServerAsync()
    {
        var server = HostedServer.Start(new TestLoader(new ScriptedGenerator(_ => ["x"], TimeSpan.Zero)));
        await server.Client.InitializeAsync();
        await server.Client.WaitForStatusAsync(ServerStates.Ready);
        return server;
    }

    private static byte[] Frame(string headers, string body) => Encoding.UTF8.GetBytes(headers + body);

    /// <summary>The request after bad input must be answered quickly: the server neither hangs nor spins.</summary>
    private static async Task AssertStillAnsweringAsync(LspTestClient client)
    {
        var stats = await client.DebugStatsAsync().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.That(stats.ModelState, Is.EqualTo(ServerStates.Ready));
    }

    public static IEnumerable<TestCaseData> BrokenFrames()
    {
        string body = "{\"jsonrpc\":\"2.0\",\"method\":\"initialized\",\"params\":{}}";
        yield return new TestCaseData(Frame($"Content-Length: {body.Length}\r\nContent-Type: application/vscode-jsonrpc; charset=bogus-9\r\n\r\n", body)).SetName("Unknown_charset");
        yield return new TestCaseData(Frame($"Content-Length: {body.Length}\r\nContent-Type: application/vscode-jsonrpc; charset=\r\n\r\n", body)).SetName("Empty_charset");
        yield return new TestCaseData(Frame("Content-Type: application/vscode-jsonrpc\r\n\r\n", body)).SetName("Missing_content_length");
        yield return new TestCaseData(Frame("Content-Length: twelve\r\n\r\n", body)).SetName("Non_numeric_content_length");
        yield return new TestCaseData(Frame("Content-Length: 1099511627776\r\n\r\n", body)).SetName("Content_length_of_2_pow_40");
        yield return new TestCaseData(Frame("Content-Length: -5\r\n\r\n", body)).SetName("Negative_content_length");
        yield return new TestCaseData(Frame("Content-Length: 0\r\n\r\n", "")).SetName("Empty_body");
        yield return new TestCaseData(Frame("Content-Length 40\r\n\r\n", body)).SetName("Header_without_colon");
        var random = new byte[4096];
        new Random(17).NextBytes(random);
        yield return new TestCaseData(random).SetName("Random_bytes");
    }

    [TestCaseSource(nameof(BrokenFrames))]
    public async Task A_broken_frame_gets_one_parse_error_and_the_next_request_is_answered(byte[] input)
    {
        await using var server = await ReadyServerAsync();
        var client = server.Client;

        await client.SendBytesAsync(input);
        await AssertStillAnsweringAsync(client);

        Assert.That(client.ParseErrors, Is.EqualTo(new[] { LspErrorCodes.ParseError }), "refused once, not once per retry");
        await Task.Delay(200);
        Assert.That(client.RawOutput, Has.Length.LessThan(64 * 1024), "no stream of errors after the reply");
    }

    [TestCase("charset=\"utf-8\"")]
    [TestCase("charset=utf8")]
    [TestCase("charset=UTF-8")]
    public async Task Utf8_charset_spellings_are_honoured(string charset)
    {
        await using var server = await ReadyServerAsync();
        await server.Client.SendBytesAsync(Frame($"Content-Length: {StatsRequest.Length}\r\nContent-Type: application/vscode-jsonrpc; {charset}\r\n\r\n", StatsRequest));

        await AssertStillAnsweringAsync(server.Client);
        Assert.That(server.Client.ParseErrors, Is.Empty);
        Assert.That(server.Client.Notifications.Where(n => n.Method == "$/rawResponse").Select(n => n.Params.GetProperty("id").GetString()), Is.EqualTo(new[] { "raw-1" }));
    }

    [Test]
    public async Task Headers_ended_by_a_bare_line_feed_are_read()
    {
        await using var server = await ReadyServerAsync();
        await server.Client.SendBytesAsync(Frame($"Content-Length: {StatsRequest.Length}\n\n", StatsRequest));

        await AssertStillAnsweringAsync(server.Client);
        Assert.That(server.Client.ParseErrors, Is.Empty);
        Assert.That(server.Client.Notifications.Where(n => n.Method == "$/rawResponse").Select(n => n.Params.GetProperty("id").GetString()), Is.EqualTo(new[] { "raw-1" }));
    }

    [Test]
    public async Task A_100_MB_header_line_is_skipped_in_bounded_time_and_memory()
    {
        await using var server = await ReadyServerAsync();
        var chunk = Encoding.ASCII.GetBytes(new string('a', 1 << 20));
        long memoryBefore = GC.GetTotalMemory(forceFullCollection: true);
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < 100; i++)
        {
            await server.Client.SendBytesAsync(chunk);
        }

        await server.Client.SendBytesAsync("\r\n"u8.ToArray());
        await AssertStillAnsweringAsync(server.Client);
        long grown = GC.GetTotalMemory(forceFullCollection: true) - memoryBefore;
        TestContext.Out.WriteLine($"100 MB header line: answered after {clock.ElapsedMilliseconds} ms; managed memory grew {grown / 1e6:F1} MB");

        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(20)));
        Assert.That(grown, Is.LessThan(32L << 20), "the line is scanned, never held");
        Assert.That(server.Client.ParseErrors, Is.EqualTo(new[] { LspErrorCodes.ParseError }));
    }

    [Test]
    public async Task Fuzzed_frames_never_stop_the_server_from_answering()
    {
        int inputs = int.TryParse(Environment.GetEnvironmentVariable("CODELLAMA_FUZZ_INPUTS"), out int n) ? n : 2000;
        int seed = int.TryParse(Environment.GetEnvironmentVariable("CODELLAMA_FUZZ_SEED"), out int s) ? s : 1717;
        var fuzzer = new FrameFuzzer(new Random(seed));
        await using var server = await ReadyServerAsync();
        var client = server.Client;
        long memoryBefore = GC.GetTotalMemory(forceFullCollection: true);
        var clock = Stopwatch.StartNew();
        var slowest = TimeSpan.Zero;
        for (int i = 0; i < inputs; i++)
        {
            byte[] input = fuzzer.Next();
            var one = Stopwatch.StartNew();
            await client.SendBytesAsync(input);

            // Completes any body the input declared (lengths are capped at FrameFuzzer.MaxDeclaredExcess over
            // the bytes sent), then spaces that the reader skips as an over-long header line.
            await client.SendBytesAsync(FrameFuzzer.Flush);
            try
            {
                await AssertStillAnsweringAsync(client);
            }
            catch (Exception e) when (e is TimeoutException or AssertionException)
            {
                Assert.Fail($"no answer after fuzz input {i} (seed {seed}): {Convert.ToBase64String(input)}");
            }

            slowest = one.Elapsed > slowest ? one.Elapsed : slowest;
        }

        long grown = GC.GetTotalMemory(forceFullCollection: true) - memoryBefore;
        TestContext.Out.WriteLine($"{inputs} fuzz inputs (seed {seed}): {clock.ElapsedMilliseconds} ms, slowest {slowest.TotalMilliseconds:F0} ms, {client.ParseErrors.Count} parse errors, managed memory grew {grown / 1e6:F1} MB");
        Assert.That(grown, Is.LessThan(64L << 20));
    }
}

/// <summary>Random and mutated LSP frames: valid ones, then header, length, charset and byte-level damage.</summary>
internal sealed class FrameFuzzer(Random random)
{
    /// <summary>How far past the bytes it sends a fuzzed Content-Length may point (a larger one would wait for input forever, as it should).</summary>
    public const int MaxDeclaredExcess = 2048;

    public static readonly byte[] Flush = Encoding.ASCII.GetBytes(new string(' ', MaxDeclaredExcess + LspFrameReader.MaxHeaderLineBytes + 8));

    // Harmless messages only: a mutation must not turn one into exit or shutdown.
    private static readonly string[] Bodies =
    [
        """{"jsonrpc":"2.0","id":"fuzz","method":"codellama/debugStats"}""",
        """{"jsonrpc":"2.0","method":"textDocument/didOpen","params":{"textDocument":{"uri":"file:///f.py","languageId":"python","version":1,"text":"x = 1\n"}}}""",
        """{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":"fuzz"}}""",
        """{"jsonrpc":"2.0","id":"fuzz","method":"textDocument/completion","params":{"textDocument":{"uri":"file:///none.py"},"position":{"line":0,"character":0}}}""",
        "[1,2,3]",
        "{",
    ];

    private static readonly string[] Charsets = ["utf-8", "\"utf-8\"", "utf8", "", "bogus-9", "utf-16", "latin1", "ascii", "\"", "utf-8; x=y"];

    public byte[] Next()
    {
        while (true)
        {
            byte[] input = Generate();
            if (DeclaresAtMost(input, input.Length + MaxDeclaredExcess))
            {
                return input;
            }
        }
    }

    /// <summary>False when a mutation grew a Content-Length (within the server's cap) past what Flush completes.</summary>
    private static bool DeclaresAtMost(byte[] input, long limit)
    {
        foreach (string line in Encoding.Latin1.GetString(input).Split('\n'))
        {
            int colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon > 0 && line[..colon].Trim().Equals("Content-Length", StringComparison.OrdinalIgnoreCase)
                && long.TryParse(line[(colon + 1)..].Trim(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long length)
                && length <= LspFrameReader.MaxBodyBytes && length > limit)
            {
                return false;
            }
        }

        return true;
    }

    private byte[] Generate()
    {
        string body = Bodies[random.Next(Bodies.Length)];
        int bodyBytes = Encoding.UTF8.GetByteCount(body);
        string length = random.Next(10) switch
        {
            0 => (bodyBytes + random.Next(1, MaxDeclaredExcess)).ToString(System.Globalization.CultureInfo.InvariantCulture),
            1 => Math.Max(0, bodyBytes - random.Next(1, bodyBytes + 1)).ToString(System.Globalization.CultureInfo.InvariantCulture),
            2 => random.Next(3) switch { 0 => "1099511627776", 1 => "abc", _ => "-1" },
            _ => bodyBytes.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        var headers = new List<string>();
        if (random.Next(8) != 0)
        {
            headers.Add("Content-Length: " + length);
        }

        if (random.Next(3) == 0)
        {
            headers.Add("Content-Type: application/vscode-jsonrpc; charset=" + Charsets[random.Next(Charsets.Length)]);
        }

        if (random.Next(10) == 0)
        {
            headers.Add(random.Next(2) == 0 ? "X-Unknown: yes" : "no colon here");
        }

        headers = [.. headers.OrderBy(_ => random.Next())];
        string newline = random.Next(6) == 0 ? "\n" : "\r\n";
        byte[] frame = Encoding.UTF8.GetBytes(string.Concat(headers.Select(h => h + newline)) + newline + body);
        return random.Next(4) switch
        {
            0 => Mutate(frame),
            1 when random.Next(4) == 0 => RandomBytes(),
            _ => frame,
        };
    }

    private byte[] Mutate(byte[] frame)
    {
        var bytes = frame.ToList();
        int edits = random.Next(1, 6);
        for (int e = 0; e < edits && bytes.Count > 0; e++)
        {
            int at = random.Next(bytes.Count);
            switch (random.Next(4))
            {
                case 0:
                    bytes[at] = (byte)random.Next(256);
                    break;
                case 1:
                    bytes.RemoveAt(at);
                    break;
                case 2:
                    bytes.Insert(at, (byte)"\r\n:; 0\"{"[random.Next(8)]);
                    break;
                default:
                    bytes.RemoveRange(at, bytes.Count - at);
                    break;
            }
        }

        return [.. bytes];
    }

    private byte[] RandomBytes()
    {
        var bytes = new byte[random.Next(1, 512)];
        random.NextBytes(bytes);
        return bytes;
    }
}
