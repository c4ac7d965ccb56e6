// The happy paths of the remote backend against a scripted OpenAI-compatible server: streaming,
// the request it sends, stop strings applied locally, the API key, and cancellation.
using System.Diagnostics;
using System.Text.Json;
using CodeLlamaLsp.Inference.Generation;
using CodeLlamaLsp.Inference.Remote;
using static CodeLlamaLsp.Inference.Tests.Remote.RemoteTestKit;

namespace CodeLlamaLsp.Inference.Tests.Remote;

public class OpenAiCompletionsGeneratorTests
{
    [Test]
    public async Task Streams_each_event_as_a_chunk_and_maps_length_to_MaxTokens()
    {
        await using var server = new ScriptedCompletionServer(async (_, response) =>
        {
            await response.StartEventStreamAsync();
            await response.SendCompletionAsync("def add");
            await response.SendCompletionAsync("(a, b):\n");
            await response.SendCompletionAsync("    return a + b", finishReason: "length");
            await response.SendDataAsync("[DONE]");
            await response.EndStreamAsync();
        });
        using var generator = new OpenAiCompletionsGenerator(Settings(server.Endpoint));

        List<GenerationChunk> chunks = await CollectAsync(generator, Request());

        Assert.That(string.Concat(chunks.Select(c => c.Text)), Is.EqualTo("def add(a, b):\n    return a + b"));
        Assert.That(chunks, Has.Count.GreaterThanOrEqualTo(3), "text must stream event by event, not arrive at the end");
        Assert.That(chunks[^1].Finished, Is.EqualTo(StopReason.MaxTokens));
        Assert.That(chunks.Take(chunks.Count - 1).Select(c => c.Finished), Is.All.Null);
        Assert.That(chunks.SelectMany(c => c.TokenIds), Is.Empty);
        Assert.That(server.HandlerErrors, Is.Empty);
    }

    [TestCase("stop", null, StopReason.StopToken)]
    [TestCase("stop", "\n\n", StopReason.StopString)]
    [TestCase("eos_token", null, StopReason.StopToken)]
    [TestCase("stop_sequence", null, StopReason.StopString)]
    public async Task Finish_reasons_of_vLLM_TGI_and_llama_cpp_map_to_stop_reasons(string finishReason, string? stopReason, StopReason expected)
    {
        await using var server = new ScriptedCompletionServer(async (_, response) =>
        {
            await response.StartEventStreamAsync();
            await response.SendCompletionAsync("x = 1");
            await response.SendCompletionAsync(string.Empty, finishReason, stopReason);
            await response.SendDataAsync("[DONE]");
            await response.EndStreamAsync();
        });
        using var generator = new OpenAiCompletionsGenerator(Settings(server.Endpoint));

        GenerationResult result = await generator.GenerateAllAsync(Request(), CancellationToken.None);

        Assert.That(result.Text, Is.EqualTo("x = 1"));
        Assert.That(result.StopReason, Is.EqualTo(expected));
    }

    [Test]
    public async Task Empty_finish_reason_on_every_event_as_older_TGI_sends_does_not_end_the_answer()
    {
        await using var server = new ScriptedCompletionServer(async (_, response) =>
        {
            await response.StartEventStreamAsync();
            await response.SendCompletionAsync("first ", finishReason: string.Empty);
            await response.SendCompletionAsync("second", finishReason: string.Empty);
            await response.SendCompletionAsync(string.Empty, finishReason: "length");
            await response.SendDataAsync("[DONE]");
            await response.EndStreamAsync();
        });
        using var generator = new OpenAiCompletionsGenerator(Settings(server.Endpoint));

        GenerationResult result = await generator.GenerateAllAsync(Request(), CancellationToken.None);

        Assert.That(result.Text, Is.EqualTo("first second"));
        Assert.That(result.StopReason, Is.EqualTo(StopReason.MaxTokens));
    }

    [Test]
    public async Task Request_carries_model_prompt_without_bos_sampling_four_stops_and_stream()
    {
        await using var server = new ScriptedCompletionServer(async (_, response) =>
        {
            await response.StartEventStreamAsync();
            await response.SendCompletionAsync("ok", "stop");
            await response.SendDataAsync("[DONE]");
            await response.EndStreamAsync();
        });
        // A trailing /v1 in the endpoint is what many users paste; it must not become /v1/v1.
        using var generator = new OpenAiCompletionsGenerator(Settings(new Uri(server.Endpoint, "/v1/")));
        var request = new GenerationRequest(
            [1, 518],
            "<s>[INST] Write add [/INST] def add",
            new GenerationOptions { MaxNewTokens = 77, Temperature = 0.2f, TopP = 0.9f, Seed = 42, StopStrings = ["\nclass ", "\ndef ", "", "\nif ", "```", "\n\n\n"] });

        await CollectAsync(generator, request);

        ReceivedRequest received = server.Requests.Single();
        JsonElement body = received.Json;
        Assert.That(received.Method, Is.EqualTo("POST"));
        Assert.That(received.Path, Is.EqualTo("/v1/completions"));
        Assert.That(received.Headers["Content-Type"], Does.StartWith("application/json"));
        Assert.That(body.GetProperty("model").GetString(), Is.EqualTo(RemoteTestKit.Model));
        Assert.That(body.GetProperty("prompt").GetString(), Is.EqualTo("[INST] Write add [/INST] def add"));
        Assert.That(body.GetProperty("max_tokens").GetInt32(), Is.EqualTo(77));
        Assert.That(body.GetProperty("temperature").GetSingle(), Is.EqualTo(0.2f));
        Assert.That(body.GetProperty("top_p").GetSingle(), Is.EqualTo(0.9f));
        Assert.That(body.GetProperty("seed").GetInt32(), Is.EqualTo(42));
        Assert.That(body.GetProperty("stream").GetBoolean(), Is.True);
        Assert.That(
            body.GetProperty("stop").EnumerateArray().Select(e => e.GetString()),
            Is.EqualTo(new[] { "\nclass ", "\ndef ", "\nif ", "```" }),
            "the API takes at most four non-empty stop strings; the rest are applied locally");
        Assert.That(received.Headers.ContainsKey("Authorization"), Is.False, "no apiKeyEnv, no Authorization header");
    }

    [Test]
    public async Task Stop_string_split_across_events_cuts_the_text_and_closes_the_stream()
    {
        var serverSawClose = new TaskCompletionSource<(bool Closed, long Ticks)>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = new ScriptedCompletionServer(async (_, response) =>
        {
            await response.StartEventStreamAsync();
            await response.SendCompletionAsync("    return a + b\n");
            await response.SendCompletionAsync("\n");
            await response.SendCompletionAsync("\nclass Next:");
            await response.SendCompletionAsync(" pass");
            bool closed = await response.WaitForClientCloseAsync(TimeSpan.FromSeconds(5));
            serverSawClose.SetResult((closed, Stopwatch.GetTimestamp()));
        });
        using var generator = new OpenAiCompletionsGenerator(Settings(server.Endpoint));
        // The fifth stop string is never sent to the server, so only local matching can find it.
        GenerationRequest request = Request(stopStrings: ["<1>", "<2>", "<3>", "<4>", "\n\n\n"]);

        List<GenerationChunk> chunks = await CollectAsync(generator, request);
        long finishedAt = Stopwatch.GetTimestamp();

        Assert.That(string.Concat(chunks.Select(c => c.Text)), Is.EqualTo("    return a + b"));
        Assert.That(chunks[^1].Finished, Is.EqualTo(StopReason.StopString));
        Assert.That(chunks.Select(c => c.Text), Has.None.Contains("\n\n"), "text that might start a stop string is held back, not shown and taken back");
        (bool closed, long closedAt) = await serverSawClose.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.That(closed, Is.True, "the connection closes once the answer is complete, so the engine stops generating");
        Assert.That(Stopwatch.GetElapsedTime(finishedAt, closedAt), Is.LessThan(TimeSpan.FromSeconds(1)), "closed at once, not drained for reuse");
    }

    [Test]
    public async Task Held_back_prefix_that_is_not_a_stop_string_is_released()
    {
        await using var server = new ScriptedCompletionServer(async (_, response) =>
        {
            await response.StartEventStreamAsync();
            await response.SendCompletionAsync("a\n");
            await response.SendCompletionAsync("b\n");
            await response.SendCompletionAsync("\n", finishReason: "length");
            await response.SendDataAsync("[DONE]");
            await response.EndStreamAsync();
        });
        using var generator = new OpenAiCompletionsGenerator(Settings(server.Endpoint));

        GenerationResult result = await generator.GenerateAllAsync(Request(stopStrings: ["\n\n\n"]), CancellationToken.None);

        Assert.That(result.Text, Is.EqualTo("a\nb\n\n"));
        Assert.That(result.StopReason, Is.EqualTo(StopReason.MaxTokens));
    }

    [Test]
    public async Task Api_key_comes_from_the_named_environment_variable_as_a_bearer_token()
    {
        string variable = "CODELLAMA_TEST_KEY_" + Guid.NewGuid().ToString("N");
        const string key = "sk-test-0123456789abcdef";
        Environment.SetEnvironmentVariable(variable, key);
        try
        {
            await using var server = new ScriptedCompletionServer(async (_, response) =>
            {
                await response.StartEventStreamAsync();
                await response.SendCompletionAsync("ok", "stop");
                await response.SendDataAsync("[DONE]");
                await response.EndStreamAsync();
            });
            using var generator = new OpenAiCompletionsGenerator(Settings(server.Endpoint) with { ApiKeyEnv = variable });

            await CollectAsync(generator, Request());

            Assert.That(server.Requests.Single().Headers["Authorization"], Is.EqualTo("Bearer " + key));
        }
        finally
        {
            Environment.SetEnvironmentVariable(variable, null);
        }
    }

    [Test]
    public async Task Cancelling_mid_stream_throws_and_closes_the_connection_at_once()
    {
        var closedAt = new TaskCompletionSource<(bool Closed, long Ticks)>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = new ScriptedCompletionServer(async (_, response) =>
        {
            await response.StartEventStreamAsync();
            await response.SendCompletionAsync("first");
            // The engine keeps "generating" (sending nothing) until the client hangs up.
            bool closed = await response.WaitForClientCloseAsync(TimeSpan.FromSeconds(5));
            closedAt.SetResult((closed, Stopwatch.GetTimestamp()));
        });
        using var generator = new OpenAiCompletionsGenerator(Settings(server.Endpoint));
        using var cancellation = new CancellationTokenSource();
        var received = new List<string>();
        long cancelledAt = 0;

        Assert.That(
            async () =>
            {
                await foreach (GenerationChunk chunk in generator.GenerateAsync(Request(), cancellation.Token))
                {
                    received.Add(chunk.Text);
                    _ = Task.Run(async () =>
                    {
                        await Task.Delay(100);
                        cancelledAt = Stopwatch.GetTimestamp();
                        await cancellation.CancelAsync();
                    });
                }
            },
            Throws.InstanceOf<OperationCanceledException>());

        (bool serverSawClose, long closeTicks) = await closedAt.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.That(received, Is.EqualTo(new[] { "first" }));
        Assert.That(serverSawClose, Is.True, "the server must see the connection close so it stops generating");
        Assert.That(Stopwatch.GetElapsedTime(cancelledAt, closeTicks), Is.LessThan(TimeSpan.FromSeconds(1)), "closed at once, not after a drain timeout");
    }

    [Test]
    public async Task Model_list_checks_endpoint_key_and_served_names()
    {
        await using var server = new ScriptedCompletionServer((request, response) =>
            request.Headers.TryGetValue("Authorization", out string? auth) && auth == "Bearer k1"
                ? response.SendStatusAsync(200, "{\"object\":\"list\",\"data\":[{\"id\":\"codellama-34b-instruct-gptq\",\"object\":\"model\"},{\"id\":\"other\",\"object\":\"model\"}]}")
                : response.SendStatusAsync(401, "{\"error\":\"bad key\"}"));
        using var generator = new OpenAiCompletionsGenerator(Settings(server.Endpoint) with { ApiKeyEnv = "K" }, environment: _ => "k1");
        using var wrongKey = new OpenAiCompletionsGenerator(Settings(server.Endpoint) with { ApiKeyEnv = "K" }, environment: _ => "k2");

        IReadOnlyList<string> models = await generator.ListModelsAsync(CancellationToken.None);

        Assert.That(models, Is.EqualTo(new[] { "codellama-34b-instruct-gptq", "other" }));
        Assert.That(server.Requests[0].Method, Is.EqualTo("GET"));
        Assert.That(server.Requests[0].Path, Is.EqualTo("/v1/models"));
        Assert.That(
            async () => await wrongKey.ListModelsAsync(CancellationToken.None),
            Throws.TypeOf<RemoteBackendException>().With.Property(nameof(RemoteBackendException.Kind)).EqualTo(RemoteErrorKind.Unauthorized));
    }

    [Test]
    public void Model_info_comes_from_settings_and_the_local_tokenizer_vocabulary()
    {
        var settings = new RemoteBackendSettings { Endpoint = new Uri("https://gpu.example.com"), Model = "codellama-13b", ContextLength = 8192 };

        using var withoutTokenizer = new OpenAiCompletionsGenerator(settings);
        using var withInfillVocab = new OpenAiCompletionsGenerator(settings, new VocabOnlyTokenizer(32016));

        Assert.That(withoutTokenizer.Info, Is.EqualTo(new ModelInfo("codellama-13b", 8192, 32000, false)));
        Assert.That(withInfillVocab.Info, Is.EqualTo(new ModelInfo("codellama-13b", 8192, 32016, true)));
    }

    private sealed class VocabOnlyTokenizer(int vocabSize) : CodeLlamaLsp.Inference.Tokenization.ITokenizer
    {
        public int VocabSize => vocabSize;

        public int BosId => 1;

        public int EosId => 2;

        public IReadOnlyList<int> Encode(string text, bool addDummyPrefix = true) => throw new NotSupportedException("not used by the remote backend");

        public string Decode(IEnumerable<int> ids) => throw new NotSupportedException("not used by the remote backend");

        public string IdToPiece(int id) => throw new NotSupportedException("not used by the remote backend");
    }
}
