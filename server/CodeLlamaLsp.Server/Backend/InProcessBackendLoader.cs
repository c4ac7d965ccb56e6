// Loads a GPTQ checkpoint into the in-process engine (CPU or CUDA) or connects to a remote OpenAI-compatible
// engine, and pairs the generator with Prompting's prompt builder and the checkpoint's own tokenizer.
using CodeLlamaLsp.Inference.Engine;
using CodeLlamaLsp.Inference.Loading;
using CodeLlamaLsp.Inference.Remote;
using CodeLlamaLsp.Inference.Tokenization;
using CodeLlamaLsp.Server.Lsp;

namespace CodeLlamaLsp.Server.Backend;

public sealed class InProcessBackendLoader(ILspLog log) : IModelBackendLoader
{
    public Task<ModelBackend> LoadAsync(ServerSettings settings, IProgress<ModelLoadProgress> progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        // Loading maps files and prepares weights: seconds to minutes of blocking work, off the protocol threads.
        return Task.Run(() => settings.Backend == "remote" ? ConnectRemote(settings) : LoadLocal(settings, progress, cancellationToken), cancellationToken);
    }

    private ModelBackend LoadLocal(ServerSettings settings, IProgress<ModelLoadProgress> progress, CancellationToken cancellationToken)
    {
        var loaded = ModelLoader.Load(settings.Model!, settings.Revision, new LoaderProgress(progress));
        try
        {
            cancellationToken.ThrowIfCancellationRequested();
            var tokenizer = loaded.TokenizerPath is { } path
                ? SentencePieceTokenizer(path)
                : throw new ModelLoadException($"{loaded.Directory} has no tokenizer.model; prompts cannot be built without the model's tokenizer");
            progress.Report(new ModelLoadProgress(0.9, "Preparing weights"));
            var device = settings.Device switch
            {
                "cpu" => DeviceKind.Cpu,
                "cuda" => DeviceKind.Cuda,
                _ => DeviceKind.Auto,
            };
            var preparing = new FractionProgress(p => progress.Report(new ModelLoadProgress(0.9 + (0.1 * p), "Preparing weights")));
            var generator = EngineFactory.Create(loaded, device, settings.ContextSize ?? 0, log.Info, preparing);
            return new ModelBackend(loaded.Name, generator, new PromptingSuggestions(tokenizer, generator.Info), generator);
        }
        catch
        {
            loaded.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Remote engines take prompt text, but budgets are counted with the model's tokenizer, so `model` must name a
    /// folder (or a model id in the local Hugging Face cache, as for the in-process engine) holding tokenizer.model.
    /// </summary>
    private ModelBackend ConnectRemote(ServerSettings settings)
    {
        const string needsTokenizer = "the remote backend needs the model's tokenizer: set codellama.model to a folder (or a cached model id) that holds tokenizer.model";
        string folder = settings.Model is { } model ? ModelLocator.Resolve(model, settings.Revision).Directory : throw new InvalidOperationException(needsTokenizer);
        string tokenizerPath = File.Exists(Path.Combine(folder, "tokenizer.model"))
            ? Path.Combine(folder, "tokenizer.model")
            : throw new InvalidOperationException(needsTokenizer);
        var tokenizer = SentencePieceTokenizer(tokenizerPath);
        var generator = RemoteBackend.Create(settings.Endpoint, settings.RemoteModel, settings.ApiKeyEnv, settings.ContextSize ?? 16384, tokenizer, settings.AllowInsecureHttp, log.Info);
        return new ModelBackend(settings.RemoteModel ?? "remote", generator, new PromptingSuggestions(tokenizer, generator.Info), generator as IDisposable);
    }

    private static LlamaTokenizer SentencePieceTokenizer(string path) => LlamaTokenizer.Load(path);

    /// <summary>Reports on the caller's thread, in order (Progress&lt;T&gt; would post to the pool).</summary>
    private sealed class FractionProgress(Action<double> report) : IProgress<double>
    {
        public void Report(double value) => report(value);
    }

    /// <summary>Maps the loader's byte counts to a fraction of the first 90% (weight preparation is the rest).</summary>
    private sealed class LoaderProgress(IProgress<ModelLoadProgress> target) : IProgress<LoadProgress>
    {
        public void Report(LoadProgress value)
        {
            double fraction = value.BytesTotal > 0 ? 0.9 * value.BytesDone / value.BytesTotal : 0;
            target.Report(new ModelLoadProgress(fraction, value.Stage));
        }
    }
}
