// Builds the in-process generator from a loaded checkpoint: picks the backend, prepares the weights on
// it, opens the tokenizer and sizes the session's context.
using System.Diagnostics;
using CodeLlamaLsp.Inference.Loading;
using CodeLlamaLsp.Inference.Tokenization;

namespace CodeLlamaLsp.Inference.Engine;

public static partial class EngineFactory
{
    /// <summary>
    /// Creates an <see cref="InProcessGenerator"/> for <paramref name="loaded"/> on <paramref name="device"/>, with
    /// <paramref name="contextLength"/> positions (0: min(max_position_embeddings, 4096)). The generator takes
    /// ownership of <paramref name="loaded"/> (the CPU backend keeps reading its memory-mapped files) and
    /// disposes it. <paramref name="log"/> receives one-line messages (backend chosen, fallback warning, load time);
    /// <paramref name="progress"/> the fraction of weights prepared on the backend (0..1), layer by layer.
    /// Throws <see cref="InvalidOperationException"/> for --device cuda without CUDA and
    /// <see cref="ArgumentException"/> for weights or a context length the model cannot use.
    /// </summary>
    public static InProcessGenerator Create(LoadedModel loaded, DeviceKind device, int contextLength, Action<string>? log = null, IProgress<double>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(loaded);
        log ??= _ => { };
        var tokenizer = loaded.TokenizerPath is { } path ? LlamaTokenizer.Load(path) : null;
        var backend = CreateBackend(device, log);
        try
        {
            var clock = Stopwatch.StartNew();
            var model = LlamaModel.Load(loaded.Weights, backend, progress == null ? null : progress.Report);
            try
            {
                var generator = new InProcessGenerator(model, tokenizer, loaded.Name, contextLength, [backend, loaded]);
                log($"{loaded.Name}: weights prepared on {backend.Name} in {clock.Elapsed.TotalSeconds:F1} s ({model.WeightBytes / (1024.0 * 1024.0):F0} MiB); context {generator.Info.ContextLength} tokens.");
                return generator;
            }
            catch
            {
                model.Dispose();
                throw;
            }
        }
        catch
        {
            backend.Dispose();
            throw;
        }
    }
}
