// Generation on a remote OpenAI-compatible engine (vLLM, TGI, llama.cpp server) through the streamed
// completions API. Prompts are still built locally with the model's tokenizer, so budgets are exact;
// only the text travels. Failures before any text arrived are retried; after that they are reported.
using System.Net;
using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using System.Text;
using CodeLlamaLsp.Inference.Generation;
using CodeLlamaLsp.Inference.Sampling;
using CodeLlamaLsp.Inference.Tokenization;

namespace CodeLlamaLsp.Inference.Remote;

/// <summary>An <see cref="ITextGenerator"/> that streams completions from POST {endpoint}/v1/completions.</summary>
public sealed class OpenAiCompletionsGenerator : ITextGenerator, IDisposable
{
    private readonly RemoteBackendSettings _settings;
    private readonly HttpClient _http;
    private readonly Func<string, string?> _environment;
    private readonly Action<string>? _log;
    private readonly Uri _completionsUri;
    private readonly string _endpointName;

    /// <param name="settings">Where and how to connect; checked here (InvalidSettings on failure).</param>
    /// <param name="tokenizer">The local tokenizer, for the vocabulary size; null uses the settings' value.</param>
    /// <param name="log">Receives one line per retry; never the key.</param>
    /// <param name="environment">Reads environment variables (the API key); defaults to the process environment.</param>
    public OpenAiCompletionsGenerator(RemoteBackendSettings settings, ITokenizer? tokenizer = null, Action<string>? log = null, Func<string, string?>? environment = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        settings.Validate();
        _settings = settings;
        _environment = environment ?? Environment.GetEnvironmentVariable;
        _log = log;
        _completionsUri = settings.CompletionsUri;
        _endpointName = _completionsUri.GetComponents(UriComponents.SchemeAndServer | UriComponents.Path, UriFormat.UriEscaped);

        int vocabSize = tokenizer?.VocabSize ?? settings.VocabSize;
        Info = new ModelInfo(settings.Model, settings.ContextLength, vocabSize, settings.SupportsInfill ?? vocabSize >= 32016);

        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = settings.ConnectTimeout,
            // A stream left unread is closed, not drained for reuse: closing is what tells the engine to stop generating.
            MaxResponseDrainSize = 0,
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(60),
            AutomaticDecompression = DecompressionMethods.None,
        };
        _http = new HttpClient(handler, disposeHandler: true) { Timeout = Timeout.InfiniteTimeSpan };
    }

    public ModelInfo Info { get; }

    public async IAsyncEnumerable<GenerationChunk> GenerateAsync(GenerationRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        cancellationToken.ThrowIfCancellationRequested();
        string? apiKey = ReadApiKey();
        byte[] body = CompletionsProtocol.BuildRequestBody(_settings.Model, request);

        using var deadline = new StreamDeadline(cancellationToken);
        using HttpResponseMessage response = await SendWithRetriesAsync(body, apiKey, deadline).ConfigureAwait(false);
        Stream content = await ReadOrTranslateAsync(() => response.Content.ReadAsStreamAsync(deadline.Token), deadline, sawFirstLine: false).ConfigureAwait(false);
        using var events = new ServerSentEventReader(content);
        bool sawFirstLine = false;
        events.LineReceived = () =>
        {
            sawFirstLine = true;
            deadline.Arm(_settings.IdleTimeout);
        };

        var stops = new StopStringMatcher(request.Options.StopStrings);
        StopReason? finished = null;
        string lastText = string.Empty;
        while (finished is null)
        {
            string? data = await ReadOrTranslateAsync(() => events.ReadEventAsync(deadline.Token), deadline, sawFirstLine).ConfigureAwait(false);
            if (data is null)
            {
                throw new RemoteBackendException(
                    RemoteErrorKind.MalformedStream,
                    $"the completion stream from {_endpointName} ended before the server said it was finished (no finish_reason, no [DONE])");
            }

            if (CompletionsProtocol.IsDone(data))
            {
                // [DONE] without a finish_reason: the engine ended the answer on its own terms.
                finished = StopReason.StopToken;
                break;
            }

            CompletionEvent? parsed = ParseRedacted(data, apiKey);
            if (parsed is not { } completionEvent)
            {
                continue;
            }

            string visible = stops.Push(completionEvent.Text);
            if (stops.Stopped)
            {
                finished = StopReason.StopString;
                lastText = visible;
                break;
            }

            if (completionEvent.Finished is { } reason)
            {
                finished = reason;
                lastText = visible;
                break;
            }

            if (visible.Length > 0)
            {
                yield return new GenerationChunk(visible, []);
            }
        }

        // Closing before the last chunk is handed out: with draining off, the connection closes at once and
        // an engine still generating past a local stop string stops, however long the caller takes.
        events.Dispose();
        response.Dispose();
        yield return new GenerationChunk(lastText + stops.Flush(), [], finished);
    }

    /// <summary>
    /// Asks the engine which models it serves (GET /v1/models, which vLLM, TGI and llama.cpp answer), so the
    /// server can check endpoint, key and model name when the settings change instead of at the first completion.
    /// Throws <see cref="RemoteBackendException"/> like a generation would; no retries.
    /// </summary>
    public async Task<IReadOnlyList<string>> ListModelsAsync(CancellationToken cancellationToken)
    {
        string? apiKey = ReadApiKey();
        Uri modelsUri = new UriBuilder(_completionsUri) { Path = _completionsUri.AbsolutePath[..^"completions".Length] + "models" }.Uri;
        using var deadline = new StreamDeadline(cancellationToken);
        deadline.Arm(_settings.FirstByteTimeout);
        using var message = new HttpRequestMessage(HttpMethod.Get, modelsUri);
        if (apiKey is not null)
        {
            message.Headers.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        }

        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, deadline.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (deadline.Caller.IsCancellationRequested && e is OperationCanceledException or HttpRequestException or IOException)
        {
            throw new OperationCanceledException("the model list request was cancelled", e, deadline.Caller);
        }
        catch (Exception e) when (deadline.TimedOut && e is OperationCanceledException or HttpRequestException or IOException)
        {
            throw new RemoteBackendException(RemoteErrorKind.Timeout, $"{_endpointName} did not answer within the first-byte timeout of {Seconds(deadline.Limit)}", e);
        }
        catch (OperationCanceledException e)
        {
            throw new RemoteBackendException(RemoteErrorKind.Unreachable, $"could not connect to {_endpointName} within {Seconds(_settings.ConnectTimeout)}", e);
        }
        catch (HttpRequestException e)
        {
            throw TransportFailure(e);
        }

        using (response)
        {
            if (!response.IsSuccessStatusCode)
            {
                throw (await ClassifyFailureAsync(response, apiKey, deadline).ConfigureAwait(false)).Failure;
            }

            string body = await ReadOrTranslateAsync(() => response.Content.ReadAsStringAsync(deadline.Token), deadline, sawFirstLine: false).ConfigureAwait(false);
            return CompletionsProtocol.ParseModelIds(body, modelsUri.GetComponents(UriComponents.SchemeAndServer | UriComponents.Path, UriFormat.UriEscaped));
        }
    }

    public void Dispose() => _http.Dispose();

    private string? ReadApiKey()
    {
        if (_settings.ApiKeyEnv is not { } name)
        {
            return null;
        }

        string? key = _environment(name);
        if (string.IsNullOrWhiteSpace(key))
        {
            throw new RemoteBackendException(
                RemoteErrorKind.Unauthorized,
                $"apiKeyEnv names the environment variable '{name}' for the key of {_endpointName}, but it is empty or not set in the language server's environment");
        }

        return key.Trim();
    }

    private async Task<HttpResponseMessage> SendWithRetriesAsync(byte[] body, string? apiKey, StreamDeadline deadline)
    {
        for (int attempt = 0; ; attempt++)
        {
            deadline.Arm(_settings.FirstByteTimeout);
            (RemoteBackendException failure, bool retryable, TimeSpan? retryAfter) outcome;
            HttpResponseMessage? response = null;
            try
            {
                response = await SendOnceAsync(body, apiKey, deadline.Token).ConfigureAwait(false);
                if (response.IsSuccessStatusCode)
                {
                    return response;
                }

                outcome = await ClassifyFailureAsync(response, apiKey, deadline).ConfigureAwait(false);
            }
            catch (Exception e) when (deadline.Caller.IsCancellationRequested && e is OperationCanceledException or HttpRequestException or IOException)
            {
                throw new OperationCanceledException("the remote generation was cancelled", e, deadline.Caller);
            }
            catch (Exception e) when (deadline.TimedOut && e is OperationCanceledException or HttpRequestException or IOException)
            {
                throw new RemoteBackendException(
                    RemoteErrorKind.Timeout,
                    $"{_endpointName} did not answer within the first-byte timeout of {Seconds(deadline.Limit)}",
                    e);
            }
            catch (OperationCanceledException e)
            {
                // Neither the caller nor our timer: SocketsHttpHandler's ConnectTimeout ran out.
                outcome = (new RemoteBackendException(RemoteErrorKind.Unreachable, $"could not connect to {_endpointName} within {Seconds(_settings.ConnectTimeout)}", e), true, null);
            }
            catch (HttpRequestException e)
            {
                outcome = (TransportFailure(e), true, null);
            }
            finally
            {
                if (response is { IsSuccessStatusCode: false })
                {
                    response.Dispose();
                }
            }

            if (!outcome.retryable || attempt >= _settings.MaxRetries)
            {
                throw attempt == 0 || !outcome.retryable ? outcome.failure : AfterAttempts(outcome.failure, attempt + 1);
            }

            TimeSpan delay = outcome.retryAfter ?? RetryPolicy.Backoff(_settings, attempt);
            if (outcome.retryAfter > _settings.MaxRetryAfter)
            {
                throw new RemoteBackendException(
                    outcome.failure.Kind,
                    $"{outcome.failure.Message}; the server asked to retry after {Seconds(delay)}, longer than the {Seconds(_settings.MaxRetryAfter)} a completion may wait",
                    outcome.failure)
                { StatusCode = outcome.failure.StatusCode };
            }

            _log?.Invoke($"remote backend: {outcome.failure.Message}; retry {attempt + 1} of {_settings.MaxRetries} in {delay.TotalMilliseconds:0} ms");
            deadline.Disarm();
            await Task.Delay(delay, deadline.Caller).ConfigureAwait(false);
        }
    }

    private async Task<HttpResponseMessage> SendOnceAsync(byte[] body, string? apiKey, CancellationToken cancellationToken)
    {
        using var message = new HttpRequestMessage(HttpMethod.Post, _completionsUri) { Content = new ByteArrayContent(body) };
        message.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        message.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        if (apiKey is not null)
        {
            message.Headers.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        }

        return await _http.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
    }

    private async Task<(RemoteBackendException Failure, bool Retryable, TimeSpan? RetryAfter)> ClassifyFailureAsync(HttpResponseMessage response, string? apiKey, StreamDeadline deadline)
    {
        int status = (int)response.StatusCode;
        string detail = Redact(CompletionsProtocol.ErrorText(await ReadErrorBodyAsync(response, deadline.Token).ConfigureAwait(false)), apiKey);
        string said = detail.Length > 0 ? $": {detail}" : string.Empty;
        TimeSpan? retryAfter = RetryPolicy.RetryAfter(response.Headers, DateTimeOffset.UtcNow);
        RemoteBackendException Make(RemoteErrorKind kind, string text) => new(kind, text) { StatusCode = status };

        return status switch
        {
            401 or 403 => (Make(RemoteErrorKind.Unauthorized, $"{_endpointName} refused the request with {status} (check the API key named by apiKeyEnv){said}"), false, null),
            429 => (Make(RemoteErrorKind.RateLimited, $"{_endpointName} is rate limiting (429){said}"), true, retryAfter),
            >= 500 => (Make(RemoteErrorKind.ServerError, $"{_endpointName} failed with {status}{said}"), true, retryAfter),
            404 => (Make(RemoteErrorKind.BadRequest, $"{_endpointName} answered 404: wrong endpoint path or unknown model '{_settings.Model}'{said}"), false, null),
            _ => (Make(RemoteErrorKind.BadRequest, $"{_endpointName} rejected the request with {status}{said}"), false, null),
        };
    }

    private static async Task<string> ReadErrorBodyAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        // Only the start of the body is read: it is for the message, and a broken server may send a lot.
        var buffer = new byte[4096];
        Stream stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            int filled = 0;
            while (filled < buffer.Length)
            {
                int read = await stream.ReadAsync(buffer.AsMemory(filled), cancellationToken).ConfigureAwait(false);
                if (read == 0)
                {
                    break;
                }

                filled += read;
            }

            return Encoding.UTF8.GetString(buffer, 0, filled);
        }
    }

    private async Task<T> ReadOrTranslateAsync<T>(Func<Task<T>> read, StreamDeadline deadline, bool sawFirstLine)
    {
        try
        {
            return await read().ConfigureAwait(false);
        }
        catch (Exception e) when (deadline.Caller.IsCancellationRequested && e is OperationCanceledException or HttpRequestException or IOException or ObjectDisposedException)
        {
            throw new OperationCanceledException("the remote generation was cancelled", e, deadline.Caller);
        }
        catch (Exception e) when (deadline.TimedOut && e is OperationCanceledException or HttpRequestException or IOException or ObjectDisposedException)
        {
            string what = sawFirstLine
                ? $"{_endpointName} went silent mid-answer for longer than the idle timeout of {Seconds(deadline.Limit)}"
                : $"{_endpointName} sent no answer within the first-byte timeout of {Seconds(deadline.Limit)}";
            throw new RemoteBackendException(RemoteErrorKind.Timeout, what, e);
        }
        catch (Exception e) when (e is HttpRequestException or IOException)
        {
            throw new RemoteBackendException(RemoteErrorKind.MalformedStream, $"the completion stream from {_endpointName} was cut off: {e.Message}", e);
        }
    }

    private CompletionEvent? ParseRedacted(string data, string? apiKey)
    {
        try
        {
            return CompletionsProtocol.ParseEvent(data, _endpointName);
        }
        catch (RemoteBackendException e) when (apiKey is not null && e.Message.Contains(apiKey, StringComparison.Ordinal))
        {
            throw new RemoteBackendException(e.Kind, Redact(e.Message, apiKey), e.InnerException);
        }
    }

    private RemoteBackendException TransportFailure(HttpRequestException e)
    {
        bool unreachable = e.HttpRequestError is HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError
            or HttpRequestError.SecureConnectionError or HttpRequestError.ProxyTunnelError or HttpRequestError.Unknown;
        return unreachable
            ? new RemoteBackendException(RemoteErrorKind.Unreachable, $"could not connect to {_endpointName}: {e.Message}", e)
            : new RemoteBackendException(RemoteErrorKind.ServerError, $"{_endpointName} dropped the connection before answering: {e.Message}", e);
    }

    private static RemoteBackendException AfterAttempts(RemoteBackendException failure, int attempts) =>
        new(failure.Kind, $"{failure.Message} (gave up after {attempts} attempts)", failure) { StatusCode = failure.StatusCode };

    private static string Redact(string text, string? apiKey) =>
        apiKey is null || text.Length == 0 ? text : text.Replace(apiKey, "[api key]", StringComparison.Ordinal);

    private static string Seconds(TimeSpan span) => $"{span.TotalSeconds:0.###} s";
}
