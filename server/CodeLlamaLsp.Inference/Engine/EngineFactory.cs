// Builds the in-process generator from a loaded checkpoint: picks the backend, then the model and decoding
// session for it (CudaModel and CudaDecodingSession on a CUDA backend, LlamaModel and InferenceSession otherwise), prepares
// the weights, opens the tokenizer and sizes the session's context.
using System.Diagnostics;
using CodeLlamaLsp.Inference.Loading;
using CodeLlamaLsp.Inference.Model;
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
    /// Throws <see cref="InvalidOperationException"/> for --device cuda without CUDA or a model that does not fit in
    /// GPU memory (Cuda.InsufficientGpuMemoryException, saying needed and free bytes), and
    /// <see cref="ArgumentException"/> for weights or a context length the model cannot use.
    /// </summary>
    public static InProcessGenerator Create(LoadedModel loaded, DeviceKind device, int contextLength, Action<string>? log = null, IProgress<double>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(loaded);
        return Create(loaded, CreateBackend(device, log), contextLength, log, progress);
    }

    /// <summary>
    /// As <see cref="Create(LoadedModel, DeviceKind, int, Action{string}?, IProgress{double}?)"/> on a backend the caller
    /// made (tests use ILGPU's CPU accelerator this way); the generator owns and disposes <paramref name="backend"/>.
    /// </summary>
    public static InProcessGenerator Create(LoadedModel loaded, IComputeBackend backend, int contextLength, Action<string>? log = null, IProgress<double>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(loaded);
        ArgumentNullException.ThrowIfNull(backend);
        log ??= _ => { };
        try
        {
            var tokenizer = loaded.TokenizerPath is { } path ? LlamaTokenizer.Load(path) : null;
            int context = InProcessGenerator.ResolveContextLength(loaded.Config, contextLength);
            var clock = Stopwatch.StartNew();
            IDecodingSession? session = null;
            IDisposable? cudaModel = null;
            TryCreateCudaSession(loaded.Weights, backend, context, log, progress, ref session, ref cudaModel);
            if (session != null && cudaModel != null)
            {
                var generator = new InProcessGenerator(session, tokenizer, loaded.Name, [cudaModel, backend, loaded]);
                log($"{loaded.Name}: weights prepared on {backend.Name} in {clock.Elapsed.TotalSeconds:F1} s (fused decoder, token selection on the device); context {context} tokens.");
                return generator;
            }

            var model = LlamaModel.Load(loaded.Weights, backend, progress == null ? null : progress.Report);
            try
            {
                var generator = new InProcessGenerator(new InferenceSession(model, context), tokenizer, loaded.Name, [model, backend, loaded]);
                log($"{loaded.Name}: weights prepared on {backend.Name} in {clock.Elapsed.TotalSeconds:F1} s ({model.WeightBytes / (1024.0 * 1024.0):F0} MiB); context {context} tokens.");
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

    /// <summary>
    /// Hook for the CUDA engine (Engine/Cuda/EngineFactory.Cuda.cs): when <paramref name="backend"/> is the CUDA backend,
    /// set <paramref name="model"/> to the fused engine's model (its weights uploaded) and <paramref name="session"/> to a
    /// session on it; the generator disposes the session, then the model.
    /// </summary>
    static partial void TryCreateCudaSession(LlamaWeights weights, IComputeBackend backend, int contextLength, Action<string> log, IProgress<double>? progress, ref IDecodingSession? session, ref IDisposable? model);
}
