// The one error type the remote backend throws, so the server can tell the user what went wrong
// (wrong key, server down, overloaded, broken stream) without parsing messages.
namespace CodeLlamaLsp.Inference.Remote;

/// <summary>What kind of failure a remote generation hit.</summary>
public enum RemoteErrorKind
{
    /// <summary>The settings cannot work (bad URL, plain http to a remote host, missing model name).</summary>
    InvalidSettings,

    /// <summary>No connection could be made (refused, DNS failure, TLS failure, connect timeout).</summary>
    Unreachable,

    /// <summary>The server refused the key (401 or 403), or the key's environment variable is empty.</summary>
    Unauthorized,

    /// <summary>The server said 429 and kept saying it after the allowed retries.</summary>
    RateLimited,

    /// <summary>The server answered 5xx after the allowed retries, or reported an error inside the stream.</summary>
    ServerError,

    /// <summary>The answer was not the OpenAI completions event stream (bad JSON, no choices, cut short).</summary>
    MalformedStream,

    /// <summary>The server took longer than the first-byte or idle timeout.</summary>
    Timeout,

    /// <summary>The server rejected the request (4xx other than 401/403/429), for example an unknown model.</summary>
    BadRequest,
}

/// <summary>A remote generation failed. The message names the endpoint and never contains the API key.</summary>
public sealed class RemoteBackendException : Exception
{
    public RemoteBackendException()
    {
    }

    public RemoteBackendException(string message)
        : base(message)
    {
    }

    public RemoteBackendException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public RemoteBackendException(RemoteErrorKind kind, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        Kind = kind;
    }

    /// <summary>What kind of failure this was.</summary>
    public RemoteErrorKind Kind { get; }

    /// <summary>The HTTP status the server answered with, when there was one.</summary>
    public int? StatusCode { get; init; }
}
