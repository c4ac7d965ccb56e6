// Where the remote engine lives and how patiently to talk to it. The API key itself is never part of
// the settings: only the name of the environment variable that holds it, so settings files and logs
// can be shared safely.
namespace CodeLlamaLsp.Inference.Remote;

/// <summary>Settings of the OpenAI-compatible remote backend (vLLM, TGI, llama.cpp server).</summary>
public sealed record RemoteBackendSettings
{
    /// <summary>Base URL of the engine, for example https://gpu.example.com:8000 (a trailing /v1 is accepted).</summary>
    public required Uri Endpoint { get; init; }

    /// <summary>Model name the engine serves (vLLM's --served-model-name; llama.cpp ignores it).</summary>
    public required string Model { get; init; }

    /// <summary>Name of the environment variable holding the API key, sent as a bearer token; null for none.</summary>
    public string? ApiKeyEnv { get; init; }

    /// <summary>Allows plain http to a host other than loopback. Off by default: the prompt is the user's code.</summary>
    public bool AllowInsecureHttp { get; init; }

    /// <summary>The engine's context window in tokens (CodeLlama: 16384), reported through <see cref="ModelInfo"/>.</summary>
    public int ContextLength { get; init; } = 16384;

    /// <summary>Vocabulary size when no local tokenizer is given (CodeLlama-34B: 32000; 7B/13B: 32016).</summary>
    public int VocabSize { get; init; } = 32000;

    /// <summary>Whether to report PSM infilling support; null derives it from the vocabulary size.</summary>
    public bool? SupportsInfill { get; init; }

    /// <summary>Limit on opening the TCP (and TLS) connection.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Limit from sending the request to the first event of the answer (covers queueing and prefill).</summary>
    public TimeSpan FirstByteTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Limit on silence between two lines of the event stream once it has started.</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>Retries after a connect failure, 429 or 5xx, only before any text was streamed.</summary>
    public int MaxRetries { get; init; } = 2;

    /// <summary>First retry delay; it doubles each time, with jitter, up to <see cref="MaxBackoff"/>.</summary>
    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>Largest retry delay computed by backoff.</summary>
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(4);

    /// <summary>Longest Retry-After the backend waits out; a longer one fails at once as RateLimited.</summary>
    public TimeSpan MaxRetryAfter { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Builds settings from the editor's strings (settings <c>endpoint</c>, <c>remoteModel</c>, <c>apiKeyEnv</c>)
    /// and checks them; throws <see cref="RemoteBackendException"/> of kind InvalidSettings with the reason.
    /// </summary>
    public static RemoteBackendSettings FromStrings(string? endpoint, string? model, string? apiKeyEnv, bool allowInsecureHttp = false)
    {
        if (string.IsNullOrWhiteSpace(endpoint))
        {
            throw Invalid("the remote backend needs an endpoint URL (setting 'endpoint'), for example https://gpu.example.com:8000");
        }

        if (!Uri.TryCreate(endpoint.Trim(), UriKind.Absolute, out Uri? uri))
        {
            throw Invalid($"endpoint '{endpoint}' is not an absolute URL (expected for example https://gpu.example.com:8000)");
        }

        var settings = new RemoteBackendSettings
        {
            Endpoint = uri,
            Model = model?.Trim() ?? string.Empty,
            ApiKeyEnv = string.IsNullOrWhiteSpace(apiKeyEnv) ? null : apiKeyEnv.Trim(),
            AllowInsecureHttp = allowInsecureHttp,
        };
        settings.Validate();
        return settings;
    }

    /// <summary>Checks the settings; throws <see cref="RemoteBackendException"/> of kind InvalidSettings with the reason.</summary>
    public void Validate()
    {
        if (!Endpoint.IsAbsoluteUri || (Endpoint.Scheme != Uri.UriSchemeHttp && Endpoint.Scheme != Uri.UriSchemeHttps))
        {
            throw Invalid($"endpoint '{Endpoint}' must be an absolute http:// or https:// URL");
        }

        if (Endpoint.Scheme == Uri.UriSchemeHttp && !Endpoint.IsLoopback && !AllowInsecureHttp)
        {
            throw Invalid(
                $"endpoint '{Endpoint}' uses plain http to a remote host; the prompt (your code) and the API key would cross the network unencrypted. " +
                "Use https, or set allowInsecureHttp if the network is trusted");
        }

        if (string.IsNullOrWhiteSpace(Model))
        {
            throw Invalid($"the remote backend at {Endpoint} needs a model name (setting 'remoteModel'), the name the engine serves");
        }

        if (ContextLength <= 0 || VocabSize <= 0)
        {
            throw Invalid($"contextLength ({ContextLength}) and vocabSize ({VocabSize}) must be positive");
        }

        if (ConnectTimeout <= TimeSpan.Zero || FirstByteTimeout <= TimeSpan.Zero || IdleTimeout <= TimeSpan.Zero)
        {
            throw Invalid("connect, first-byte and idle timeouts must be positive");
        }

        if (MaxRetries < 0 || InitialBackoff < TimeSpan.Zero || MaxBackoff < InitialBackoff || MaxRetryAfter < TimeSpan.Zero)
        {
            throw Invalid("retries must be zero or more, and backoff delays non-negative with MaxBackoff >= InitialBackoff");
        }
    }

    /// <summary>The completions URL: the endpoint with /v1/completions appended (a trailing /v1 is not doubled).</summary>
    public Uri CompletionsUri
    {
        get
        {
            string basePath = Endpoint.AbsolutePath.TrimEnd('/');
            string path = basePath.EndsWith("/v1", StringComparison.Ordinal) ? basePath + "/completions" : basePath + "/v1/completions";
            return new UriBuilder(Endpoint) { Path = path, Query = string.Empty, Fragment = string.Empty }.Uri;
        }
    }

    private static RemoteBackendException Invalid(string message) => new(RemoteErrorKind.InvalidSettings, message);
}
