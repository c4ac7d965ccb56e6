// The CUDA half of EngineFactory: --device auto/cuda open the first CUDA device through ILGPU, and generation runs on
// the fused engine (a CudaModel and one CudaDecodingSession on it) after checking up front that weights, KV cache and
// buffers fit in free GPU memory.
using System.Diagnostics;
using CodeLlamaLsp.Inference.Engine.Cuda;
using CodeLlamaLsp.Inference.Loading;
using CodeLlamaLsp.Inference.Model;
using CodeLlamaLsp.Inference.Tokenization;

namespace CodeLlamaLsp.Inference.Engine;

public static partial class EngineFactory
{
    /// <summary>
    /// The CUDA device <paramref name="device"/> asks for: none for Cpu; for Auto the first CUDA device, or none with a
    /// warning through <paramref name="log"/> saying why; for Cuda the device, or <see cref="InvalidOperationException"/>
    /// saying why not. The caller owns the backend returned.
    /// </summary>
    internal static CudaBackend? OpenCuda(DeviceKind device, Action<string>? log = null)
    {
        log ??= _ => { };
        if (device == DeviceKind.Cpu)
        {
            return null;
        }

        var cuda = CudaDevice.TryCreateCuda(out var whyNot);
        if (cuda != null)
        {
            log($"using {cuda.Name} ({cuda.TotalMemory / (1024.0 * 1024 * 1024):F1} GiB, {cuda.FreeMemory / (1024.0 * 1024 * 1024):F1} GiB free)");
            return new CudaBackend(cuda);
        }

        if (device == DeviceKind.Cuda)
        {
            throw new InvalidOperationException($"--device cuda was requested but CUDA is not available: {whyNot}.");
        }

        log($"warning: CUDA is not available ({whyNot}); running on the CPU, which is much slower.");
        return null;
    }

    /// <summary>
    /// Throws <see cref="InsufficientGpuMemoryException"/> naming the total when the model cannot fit, before anything
    /// is uploaded, so the message says what the whole model needs rather than which tensor happened to fail.
    /// </summary>
    internal static void CheckFits(LlamaWeights weights, CudaDevice device, int contextLength, int maxBatchRows) =>
        CheckFits(weights, contextLength, maxBatchRows, device.FreeMemory, device.TotalMemory);

    internal static void CheckFits(LlamaWeights weights, int contextLength, int maxBatchRows, long freeBytes, long totalBytes)
    {
        var estimate = GpuMemoryEstimate.For(weights, contextLength, maxBatchRows);
        if (estimate.Total > freeBytes)
        {
            throw new InsufficientGpuMemoryException(estimate.Describe(contextLength), estimate.Total, freeBytes, totalBytes);
        }
    }

    /// <summary>The generator over a CudaModel and one session on it; owns <paramref name="cuda"/> from here on.</summary>
    private static InProcessGenerator CreateOnCuda(LoadedModel loaded, CudaBackend cuda, ITokenizer? tokenizer, int context, Action<string> log, IProgress<double>? progress)
    {
        try
        {
            var clock = Stopwatch.StartNew();
            cuda.Device.Accelerator.Bind();
            CheckFits(loaded.Weights, cuda.Device, context, CudaDecodingSessionDefaults.MaxBatchRows);
            long before = cuda.AllocatedBytes;
            var model = CudaModel.Load(cuda, loaded.Weights, progress == null ? null : progress.Report);
            try
            {
                var session = new CudaDecodingSession(model, context, CudaDecodingSessionDefaults.MaxBatchRows);
                var estimate = GpuMemoryEstimate.For(loaded.Weights, context, CudaDecodingSessionDefaults.MaxBatchRows);
                log($"GPU memory: {Gib(cuda.AllocatedBytes - before)} allocated (estimated: weights {Gib(estimate.Weights)}, KV cache for {context} positions {Gib(estimate.KvCache)}, buffers {Gib(estimate.Buffers)}); {Gib(cuda.Device.FreeMemory)} free.");
                log($"weight upload: {model.LoadTimes}.");
                log($"prompt matrix products: {cuda.Device.PrefillGemm}.");
                var generator = new InProcessGenerator(session, tokenizer, loaded.Name, [model, cuda, loaded]);
                log($"{loaded.Name}: weights prepared on {cuda.Name} in {clock.Elapsed.TotalSeconds:F1} s (fused CUDA engine, token selection on the device); context {context} tokens.");
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
            cuda.Dispose();
            throw;
        }
    }

    private static string Gib(long bytes) => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{bytes / (1024.0 * 1024 * 1024):F2} GiB");
}

/// <summary>Sizes the CUDA session uses.</summary>
public static class CudaDecodingSessionDefaults
{
    /// <summary>
    /// Prompt rows per forward pass. The prefill GEMM's 128-row tiles fill the H200's 132 multiprocessors in whole
    /// waves only from about 1,024 rows (at 256 rows o_proj and down_proj ran 128 blocks: half the GPU idle), and the
    /// activation buffers cost about 0.5 MB per row (0.5 GB here). `bench` prefills in the same chunks.
    /// </summary>
    public const int MaxBatchRows = 1024;

    /// <summary>
    /// Prompt tokens a first suggestion prefills within about a second with the built-in GEMM (a machine with the NVIDIA
    /// driver alone): 2,048 tokens of the 34B model took 0.73 s on an H200 and 16 answer tokens about 0.16 s more
    /// (3,072 took 1.12 s). docs/performance.md has the runs.
    /// </summary>
    public const int PromptBudget = 2048;

    /// <summary>The same with cuBLAS: 3,584 tokens took 0.64 s on an H200 (2,048: 0.33 s), 16 answer tokens 0.16 s more.</summary>
    public const int PromptBudgetWithCublas = 3584;
}
