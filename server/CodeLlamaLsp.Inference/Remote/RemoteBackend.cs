// The one call the language server makes to switch generation to a remote engine.
using CodeLlamaLsp.Inference.Tokenization;

namespace CodeLlamaLsp.Inference.Remote;

/// <summary>Creates the remote generator from settings.</summary>
public static class RemoteBackend
{
    /// <summary>
    /// Creates a generator for the OpenAI-compatible engine the settings name. Throws
    /// <see cref="RemoteBackendException"/> (kind InvalidSettings) when the settings cannot work.
    /// Dispose the generator when switching backends.
    /// </summary>
    public static OpenAiCompletionsGenerator Create(RemoteBackendSettings settings, ITokenizer? tokenizer = null, Action<string>? log = null) =>
        new(settings, tokenizer, log);

    /// <summary>
    /// The same from the editor's settings strings (<c>endpoint</c>, <c>remoteModel</c>, <c>apiKeyEnv</c>)
    /// and the context size the prompt builder should assume.
    /// </summary>
    public static OpenAiCompletionsGenerator Create(
        string? endpoint, string? remoteModel, string? apiKeyEnv, int contextLength, ITokenizer? tokenizer = null, bool allowInsecureHttp = false, Action<string>? log = null)
    {
        RemoteBackendSettings settings = RemoteBackendSettings.FromStrings(endpoint, remoteModel, apiKeyEnv, allowInsecureHttp) with { ContextLength = contextLength };
        return Create(settings, tokenizer, log);
    }
}
