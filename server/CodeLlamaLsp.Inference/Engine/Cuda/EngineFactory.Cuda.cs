// Plugs the CUDA engine into EngineFactory: --device auto/cuda open the first CUDA device through ILGPU,
// and on a CUDA backend generation runs on the fused engine (CudaModel, CudaDecodingSession) rather than the
// generic LlamaForward, after checking up front that weights, KV cache and buffers fit in free GPU memory.
using CodeLlamaLsp.Inference.Engine.Cuda;
using CodeLlamaLsp.Inference.Model;

namespace CodeLlamaLsp.Inference.Engine;

public static partial class EngineFactory
{
    static partial void TryCreateCudaBackend(Action<string> log, ref IComputeBackend? backend, ref string? whyNot)
    {
        var device = CudaDevice.TryCreateCuda(out whyNot);
        if (device != null)
        {
            log($"using {device.Name} ({device.TotalMemory / (1024.0 * 1024 * 1024):F1} GiB, {device.FreeMemory / (1024.0 * 1024 * 1024):F1} GiB free)");
            backend = new CudaBackend(device);
        }
    }

    static partial void TryCreateCudaSession(LlamaWeights weights, IComputeBackend backend, int contextLength, Action<string> log, IProgress<double>? progress, ref IDecodingSession? session, ref IDisposable? model)
    {
        if (backend is not CudaBackend cuda)
        {
            return;
        }

        cuda.Device.Accelerator.Bind();
        CheckFits(weights, cuda.Device, contextLength, CudaDecodingSessionDefaults.MaxBatchRows);
        long before = cuda.AllocatedBytes;
        var cudaModel = CudaModel.Load(cuda, weights, progress == null ? null : progress.Report);
        try
        {
            session = new CudaDecodingSession(cudaModel, contextLength, CudaDecodingSessionDefaults.MaxBatchRows);
        }
        catch
        {
            cudaModel.Dispose();
            throw;
        }

        model = cudaModel;
        var estimate = GpuMemoryEstimate.For(weights, contextLength, CudaDecodingSessionDefaults.MaxBatchRows);
        log($"GPU memory: {Gib(cuda.AllocatedBytes - before)} allocated (estimated: weights {Gib(estimate.Weights)}, KV cache for {contextLength} positions {Gib(estimate.KvCache)}, buffers {Gib(estimate.Buffers)}); {Gib(cuda.Device.FreeMemory)} free.");
        log($"weight upload: {cudaModel.LoadTimes}.");
    }

    private static string Gib(long bytes) => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{bytes / (1024.0 * 1024 * 1024):F2} GiB");

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
}
