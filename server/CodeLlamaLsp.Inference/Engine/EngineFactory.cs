// Builds the in-process generator from a loaded checkpoint on the requested device: the CUDA engine (CudaModel and a
// CudaDecodingSession, Engine/Cuda/EngineFactory.Cuda.cs) when a CUDA device is usable, else the CPU engine (LlamaModel
// over CpuBackend and an InferenceSession). It opens the tokenizer and sizes the session's context first, so a bad
// checkpoint fails before any device memory is touched.
using System.Diagnostics;
using CodeLlamaLsp.Inference.Engine.Cpu;
using CodeLlamaLsp.Inference.Loading;
using CodeLlamaLsp.Inference.Tokenization;

namespace CodeLlamaLsp.Inference.Engine;

/// <summary>Creates in-process generators.</summary>
public static partial class EngineFactory
{
    /// <summary>
    /// Creates an <see cref="InProcessGenerator"/> for <paramref name="loaded"/> on <paramref name="device"/>, with
    /// <paramref name="contextLength"/> positions (0: min(max_position_embeddings, 4096)). Auto tries CUDA and falls back
    /// to the CPU with a warning through <paramref name="log"/>. The generator takes ownership of <paramref name="loaded"/>
    /// (the CPU backend keeps reading its memory-mapped files) and disposes it. <paramref name="log"/> receives one-line
    /// messages (device chosen, fallback warning, load time); <paramref name="progress"/> the fraction of weights
    /// prepared on the device (0..1), layer by layer.
    /// Throws <see cref="InvalidOperationException"/> for --device cuda without CUDA or a model that does not fit in
    /// GPU memory (Cuda.InsufficientGpuMemoryException, saying needed and free bytes), and
    /// <see cref="ArgumentException"/> for weights or a context length the model cannot use.
    /// </summary>
    public static InProcessGenerator Create(LoadedModel loaded, DeviceKind device, int contextLength, Action<string>? log = null, IProgress<double>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(loaded);
        log ??= _ => { };
        var tokenizer = loaded.TokenizerPath is { } path ? LlamaTokenizer.Load(path) : null;
        int context = InProcessGenerator.ResolveContextLength(loaded.Config, contextLength);
        var cuda = OpenCuda(device, log);
        return cuda != null
            ? CreateOnCuda(loaded, cuda, tokenizer, context, log, progress)
            : CreateOnCpu(loaded, tokenizer, context, log, progress);
    }

    private static InProcessGenerator CreateOnCpu(LoadedModel loaded, ITokenizer? tokenizer, int context, Action<string> log, IProgress<double>? progress)
    {
        var backend = new CpuBackend();
        try
        {
            var clock = Stopwatch.StartNew();
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
}
