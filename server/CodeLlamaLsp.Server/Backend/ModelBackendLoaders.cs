// Chooses how the real server loads models. The in-process engine and the prompt builder come from the
// Inference and Prompting libraries; until they are wired here, loading fails with a message saying so
// (the server stays up and answers empty, as it does for any failed load).
using CodeLlamaLsp.Server.Lsp;

namespace CodeLlamaLsp.Server.Backend;

public static class ModelBackendLoaders
{
    public static IModelBackendLoader Default { get; } = new UnavailableLoader();

    private sealed class UnavailableLoader : IModelBackendLoader
    {
        public Task<ModelBackend> LoadAsync(ServerSettings settings, IProgress<LoadProgress> progress, CancellationToken cancellationToken) =>
            throw new NotSupportedException("this build of codellama-lsp has no model backend wired in yet");
    }
}
