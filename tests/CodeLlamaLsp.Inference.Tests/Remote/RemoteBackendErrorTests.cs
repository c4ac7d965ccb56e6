// How the remote backend fails: each error class with its Kind and a message naming the endpoint
// (never the key), retries only where they can help, and timeouts on a slow server.
using System.Diagnostics;
using CodeLlamaLsp.Inference.Generation;
using CodeLlamaLsp.Inference.Remote;
using static CodeLlamaLsp.Inference.Tests.Remote.RemoteTestKit;

namespace CodeLlamaLsp.Inference.Tests.Remote;

public class RemoteBackendErrorTests
{
    [Test]
    public async Task Unreachable_port_fails_as_Unreachable_after_the_retries()
    {
        var endpoint = new Uri($"http://127.0.0.1:{FreePort()}");
        var retries = new List<string>();
        using var generator = new OpenAiCompletionsGenerator(Settings(endpoint) with { MaxRetries = 1 }, log: retries.Add);

        RemoteBackendException error = await FailureOf(generator, Request());

        Assert.That(error.Kind, Is.EqualTo(RemoteErrorKind.Unreachable));
        Assert.That(error.Message, Does.Contain($"127.0.0.1:{endpoint.Port}/v1/completions"));
        Assert.That(retries, Has.Count.EqualTo(1), "one retry was allowed and logged");
    }

    [Test]
    public async Task Unauthorized_names_the_endpoint_and_never_the_key_even_when_the_server_echoes_it()
    {
        const string key = "sk-secret-do-not-log-42";
        await using var server = new ScriptedCompletionServer((_, response) =>
            response.SendStatusAsync(401, $"{{\"error\":{{\"message\":\"invalid api key {key}\",\"type\":\"invalid_request_error\"}}}}"));
        using var generator = new OpenAiCompletionsGenerator(
            Settings(server.Endpoint) with { ApiKeyEnv = "TEST_KEY" },
            environment: name => name == "TEST_KEY" ? key : null);

        RemoteBackendException error = await FailureOf(generator, Request());

        Assert.That(error.Kind, Is.EqualTo(RemoteErrorKind.Unauthorized));
        Assert.That(error.StatusCode, Is.EqualTo(401));
        Assert.That(error.Message, Does.Contain(server.Endpoint.Authority).And.Contain("invalid api key"));
        Assert.That(error.ToString(), Does.Not.Contain(key));
        Assert.That(server.Requests, Has.Count.EqualTo(1), "a refused key is not retried");
    }

    [Test]
    public async Task Missing_key_variable_fails_before_any_request_without_naming_a_value()
    {
        await using var server = new ScriptedCompletionServer((_, response) => response.SendStatusAsync(500, "{}"));
        using var generator = new OpenAiCompletionsGenerator(Settings(server.Endpoint) with { ApiKeyEnv = "UNSET_KEY_VARIABLE" }, environment: _ => null);

        RemoteBackendException error = await FailureOf(generator, Request());

        Assert.That(error.Kind, Is.EqualTo(RemoteErrorKind.Unauthorized));
        Assert.That(error.Message, Does.Contain("UNSET_KEY_VARIABLE"));
        Assert.That(server.Requests, Is.Empty);
    }

    [Test]
    public async Task Rate_limit_waits_out_Retry_After_then_succeeds()
    {
        int calls = 0;
        await using var server = new ScriptedCompletionServer(async (_, response) =>
        {
            if (Interlocked.Increment(ref calls) == 1)
            {
                await response.SendStatusAsync(429, "{\"error\":{\"message\":\"too many requests\"}}", ("Retry-After", "1"));
                return;
            }

            await response.StartEventStreamAsync();
            await response.SendCompletionAsync("ok", "stop");
            await response.SendDataAsync("[DONE]");
            await response.EndStreamAsync();
        });
        using var generator = new OpenAiCompletionsGenerator(Settings(server.Endpoint));

        GenerationResult result = await generator.GenerateAllAsync(Request(), CancellationToken.None);

        Assert.That(result.Text, Is.EqualTo("ok"));
        Assert.That(server.Requests, Has.Count.EqualTo(2));
        TimeSpan gap = server.Requests[1].ReceivedAtUtc - server.Requests[0].ReceivedAtUtc;
        Assert.That(gap, Is.GreaterThan(TimeSpan.FromMilliseconds(900)), "Retry-After: 1 means a one-second wait, not the 10 ms backoff");
    }

    [Test]
    public async Task Rate_limit_asking_for_too_long_a_wait_fails_at_once()
    {
        await using var server = new ScriptedCompletionServer((_, response) => response.SendStatusAsync(429, "{}", ("Retry-After", "120")));
        using var generator = new OpenAiCompletionsGenerator(Settings(server.Endpoint));

        RemoteBackendException error = await FailureOf(generator, Request());

        Assert.That(error.Kind, Is.EqualTo(RemoteErrorKind.RateLimited));
        Assert.That(server.Requests, Has.Count.EqualTo(1));
    }

    [Test]
    public async Task Server_error_is_retried_then_reported_as_ServerError()
    {
        await using var server = new ScriptedCompletionServer((_, response) =>
            response.SendStatusAsync(500, "{\"object\":\"error\",\"message\":\"CUDA out of memory\",\"type\":\"InternalServerError\",\"code\":500}"));
        using var generator = new OpenAiCompletionsGenerator(Settings(server.Endpoint) with { MaxRetries = 2 });

        RemoteBackendException error = await FailureOf(generator, Request());

        Assert.That(error.Kind, Is.EqualTo(RemoteErrorKind.ServerError));
        Assert.That(error.StatusCode, Is.EqualTo(500));
        Assert.That(error.Message, Does.Contain("CUDA out of memory").And.Contain("3 attempts").And.Contain(server.Endpoint.Authority));
        Assert.That(server.Requests, Has.Count.EqualTo(3), "first try plus two retries");
    }

    [Test]
    public async Task Connection_dropped_before_the_answer_is_retried_and_then_succeeds()
    {
        int calls = 0;
        await using var server = new ScriptedCompletionServer(async (_, response) =>
        {
            if (Interlocked.Increment(ref calls) == 1)
            {
                return; // Hang up without a status line, as a restarting engine or proxy does.
            }

            await response.StartEventStreamAsync();
            await response.SendCompletionAsync("recovered", "stop");
            await response.SendDataAsync("[DONE]");
            await response.EndStreamAsync();
        });
        var retries = new List<string>();
        using var generator = new OpenAiCompletionsGenerator(Settings(server.Endpoint), log: retries.Add);

        GenerationResult result = await generator.GenerateAllAsync(Request(), CancellationToken.None);

        Assert.That(result.Text, Is.EqualTo("recovered"));
        Assert.That(server.Requests, Has.Count.EqualTo(2));
        Assert.That(retries, Has.Count.EqualTo(1));
    }

    [Test]
    public async Task Stream_cut_off_after_text_is_reported_not_retried()
    {
        await using var server = new ScriptedCompletionServer(async (_, response) =>
        {
            await response.StartEventStreamAsync();
            await response.SendCompletionAsync("def half");
            // Returning closes the socket in the middle of the chunked body.
        });
        using var generator = new OpenAiCompletionsGenerator(Settings(server.Endpoint));
        var received = new List<string>();

        RemoteBackendException error = await FailureOf(generator, Request(), received);

        Assert.That(error.Kind, Is.EqualTo(RemoteErrorKind.MalformedStream));
        Assert.That(received, Is.EqualTo(new[] { "def half" }));
        Assert.That(server.Requests, Has.Count.EqualTo(1), "text was already shown, so the request is not sent again");
    }

    [Test]
    public async Task Bad_request_is_not_retried_and_carries_the_server_message()
    {
        await using var server = new ScriptedCompletionServer((_, response) =>
            response.SendStatusAsync(400, "{\"object\":\"error\",\"message\":\"This model's maximum context length is 16384 tokens.\"}"));
        using var generator = new OpenAiCompletionsGenerator(Settings(server.Endpoint));

        RemoteBackendException error = await FailureOf(generator, Request());

        Assert.That(error.Kind, Is.EqualTo(RemoteErrorKind.BadRequest));
        Assert.That(error.Message, Does.Contain("maximum context length"));
        Assert.That(server.Requests, Has.Count.EqualTo(1));
    }

    [Test]
    public async Task Malformed_json_in_a_data_line_is_MalformedStream()
    {
        await using var server = new ScriptedCompletionServer(async (_, response) =>
        {
            await response.StartEventStreamAsync();
            await response.SendCompletionAsync("ok so far");
            await response.SendDataAsync("{\"choices\":[{\"text\":\"broken");
            await response.EndStreamAsync();
        });
        using var generator = new OpenAiCompletionsGenerator(Settings(server.Endpoint));

        RemoteBackendException error = await FailureOf(generator, Request());

        Assert.That(error.Kind, Is.EqualTo(RemoteErrorKind.MalformedStream));
        Assert.That(error.Message, Does.Contain("invalid JSON").And.Contain(server.Endpoint.Authority));
    }

    [Test]
    public async Task Error_object_inside_the_stream_is_ServerError()
    {
        await using var server = new ScriptedCompletionServer(async (_, response) =>
        {
            await response.StartEventStreamAsync();
            await response.SendDataAsync("{\"error\":{\"object\":\"error\",\"message\":\"engine dead\"}}");
            await response.SendDataAsync("[DONE]");
            await response.EndStreamAsync();
        });
        using var generator = new OpenAiCompletionsGenerator(Settings(server.Endpoint));

        RemoteBackendException error = await FailureOf(generator, Request());

        Assert.That(error.Kind, Is.EqualTo(RemoteErrorKind.ServerError));
        Assert.That(error.Message, Does.Contain("engine dead"));
    }

    [Test]
    public async Task Stream_ending_without_done_or_finish_reason_is_MalformedStream()
    {
        await using var server = new ScriptedCompletionServer(async (_, response) =>
        {
            await response.StartEventStreamAsync();
            await response.SendCompletionAsync("def ");
            await response.EndStreamAsync();
        });
        using var generator = new OpenAiCompletionsGenerator(Settings(server.Endpoint));
        var received = new List<string>();

        RemoteBackendException error = await FailureOf(generator, Request(), received);

        Assert.That(error.Kind, Is.EqualTo(RemoteErrorKind.MalformedStream));
        Assert.That(error.Message, Does.Contain("ended before"));
        Assert.That(received, Is.EqualTo(new[] { "def " }), "text already streamed stays streamed");
    }

    [Test]
    public async Task Server_that_never_answers_hits_the_first_byte_timeout()
    {
        await using var server = new ScriptedCompletionServer((_, response) => response.StallAsync(TimeSpan.FromSeconds(10)));
        using var generator = new OpenAiCompletionsGenerator(Settings(server.Endpoint) with { FirstByteTimeout = TimeSpan.FromMilliseconds(300) });
        var clock = Stopwatch.StartNew();

        RemoteBackendException error = await FailureOf(generator, Request());

        Assert.That(error.Kind, Is.EqualTo(RemoteErrorKind.Timeout));
        Assert.That(error.Message, Does.Contain("first-byte timeout").And.Contain(server.Endpoint.Authority));
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(3)));
        Assert.That(server.Requests, Has.Count.EqualTo(1), "a busy server is not sent the same work again");
    }

    [Test]
    public async Task Server_going_silent_mid_answer_hits_the_idle_timeout()
    {
        await using var server = new ScriptedCompletionServer(async (_, response) =>
        {
            await response.StartEventStreamAsync();
            await response.SendCompletionAsync("def slow");
            await response.StallAsync(TimeSpan.FromSeconds(10));
        });
        using var generator = new OpenAiCompletionsGenerator(Settings(server.Endpoint) with { IdleTimeout = TimeSpan.FromMilliseconds(300) });
        var received = new List<string>();
        var clock = Stopwatch.StartNew();

        RemoteBackendException error = await FailureOf(generator, Request(), received);

        Assert.That(error.Kind, Is.EqualTo(RemoteErrorKind.Timeout));
        Assert.That(error.Message, Does.Contain("idle timeout"));
        Assert.That(received, Is.EqualTo(new[] { "def slow" }));
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(3)));
    }

    [Test]
    public void Plain_http_to_a_remote_host_is_refused_unless_explicitly_allowed()
    {
        var remote = new RemoteBackendSettings { Endpoint = new Uri("http://gpu.example.com:8000"), Model = "m" };

        RemoteBackendException error = Assert.Throws<RemoteBackendException>(() => new OpenAiCompletionsGenerator(remote).Dispose())!;
        Assert.That(error.Kind, Is.EqualTo(RemoteErrorKind.InvalidSettings));
        Assert.That(error.Message, Does.Contain("http://gpu.example.com:8000").And.Contain("https"));

        Assert.DoesNotThrow(() => new OpenAiCompletionsGenerator(remote with { AllowInsecureHttp = true }).Dispose());
        Assert.DoesNotThrow(() => new OpenAiCompletionsGenerator(remote with { Endpoint = new Uri("https://gpu.example.com:8000") }).Dispose());
        Assert.DoesNotThrow(() => new OpenAiCompletionsGenerator(remote with { Endpoint = new Uri("http://localhost:8000") }).Dispose());
        Assert.DoesNotThrow(() => new OpenAiCompletionsGenerator(remote with { Endpoint = new Uri("http://[::1]:8000") }).Dispose());
    }

    [TestCase(null, "m", "needs an endpoint")]
    [TestCase("gpu.example.com:8000", "m", "absolute")]
    [TestCase("ftp://gpu.example.com", "m", "http:// or https://")]
    [TestCase("https://gpu.example.com", " ", "remoteModel")]
    public void Settings_from_editor_strings_explain_what_is_wrong(string? endpoint, string model, string expected)
    {
        RemoteBackendException error = Assert.Throws<RemoteBackendException>(() => RemoteBackendSettings.FromStrings(endpoint, model, apiKeyEnv: null))!;

        Assert.That(error.Kind, Is.EqualTo(RemoteErrorKind.InvalidSettings));
        Assert.That(error.Message, Does.Contain(expected));
    }

    private static async Task<RemoteBackendException> FailureOf(OpenAiCompletionsGenerator generator, GenerationRequest request, List<string>? received = null)
    {
        try
        {
            await foreach (GenerationChunk chunk in generator.GenerateAsync(request, CancellationToken.None))
            {
                received?.Add(chunk.Text);
            }
        }
        catch (RemoteBackendException e)
        {
            return e;
        }

        throw new AssertionException("expected a RemoteBackendException, but the generation finished");
    }
}
