// Owns the ILGPU context, the accelerator (a CUDA GPU, or ILGPU's CPU accelerator simulating 32-wide warps
// for tests), the stream every kernel runs on, and the compiled kernels with their launch helpers.
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;

namespace CodeLlamaLsp.Inference.Engine.Cuda;

/// <summary>One accelerator plus the engine's kernels. Not thread-safe: one generation at a time.</summary>
public sealed class CudaDevice : IDisposable
{
    private readonly Context context;

    private CudaDevice(Context context, Accelerator accelerator)
    {
        this.context = context;
        Accelerator = accelerator;
        IsCuda = accelerator is CudaAccelerator;

        // Kernels run on a created stream: CUDA graph capture fails on the legacy default stream (error 900).
        Stream = accelerator.CreateStream();
        Kernels = new CudaKernels(accelerator, Stream);
    }

    public Accelerator Accelerator { get; }

    public AcceleratorStream Stream { get; }

    internal CudaKernels Kernels { get; }

    /// <summary>True on a real GPU; false on ILGPU's CPU accelerator.</summary>
    public bool IsCuda { get; }

    /// <summary>Device name for logs.</summary>
    public string Name => IsCuda ? $"cuda: {Accelerator.Name}" : $"ilgpu-cpu: {Accelerator.Name}";

    /// <summary>Native stream handle (CUDA only), for graph capture through the driver API.</summary>
    public IntPtr StreamHandle => Stream is CudaStream cs ? cs.StreamPtr : IntPtr.Zero;

    /// <summary>Blocks of the small-batch kernel's launch (all resident at once), for the bench's report.</summary>
    public int SmallBatchBlocks => Kernels.SmallBatchBlocks;

    /// <summary>What prompts' matrix products run on: cuBLAS and its version, or the built-in GEMM and why.</summary>
    public string PrefillGemm => Kernels.UseCublas ? Kernels.CublasStatus : $"built-in GEMM ({(Kernels.HasCublas ? "cuBLAS turned off" : Kernels.CublasStatus)})";

    /// <summary>Whether cuBLAS was found and started on this device.</summary>
    public bool HasCublas => Kernels.HasCublas;

    /// <summary>
    /// Whether prompts' GPTQ products go to cuBLAS (default: when found). The bench turns it off to measure the built-in
    /// GEMM, which is what a machine with the NVIDIA driver alone runs.
    /// </summary>
    public bool UseCublas
    {
        get => Kernels.UseCublas;
        set => Kernels.UseCublas = value && Kernels.HasCublas;
    }

    /// <summary>Multiprocessors on the device (used to size split-K and attention grids).</summary>
    public int Multiprocessors => Accelerator.NumMultiprocessors;

    /// <summary>Total device memory in bytes.</summary>
    public long TotalMemory => Accelerator.MemorySize;

    /// <summary>Free device memory in bytes (CUDA), or total memory on the CPU accelerator.</summary>
    public long FreeMemory => Accelerator is CudaAccelerator cuda ? cuda.GetFreeMemory() : Accelerator.MemorySize;

    /// <summary>Opens the first CUDA device, or returns null and why not.</summary>
    public static CudaDevice? TryCreateCuda(out string? whyNot)
    {
        Context? ctx = null;
        try
        {
            ctx = Context.Create(b => b.Cuda().Optimize(OptimizationLevel.O2).Math(MathMode.Default).EnableAlgorithms());
            var devices = ctx.GetCudaDevices();
            if (devices.Count == 0)
            {
                whyNot = "no CUDA device found";
                ctx.Dispose();
                return null;
            }

            var acc = ctx.CreateCudaAccelerator(0);
            whyNot = null;
            return new CudaDevice(ctx, acc);
        }
#pragma warning disable CA1031 // A missing driver surfaces as many exception types; all mean "no CUDA here".
        catch (Exception e)
#pragma warning restore CA1031
        {
            ctx?.Dispose();
            whyNot = $"CUDA initialisation failed: {e.GetType().Name}: {e.Message}";
            return null;
        }
    }

    /// <summary>
    /// ILGPU's CPU accelerator with 32-wide warps, so warp-level kernels behave as on a GPU (tests). Groups are capped at
    /// 256 threads (every kernel's block size; sampling adapts): each simulated thread is an OS thread synchronised at
    /// every barrier, and 1,024 of them made a decode step take seconds on a small CI machine.
    /// </summary>
    public static CudaDevice CreateCpuSimulator()
    {
        var ctx = Context.Create(b => b.CPU(new CPUDevice(numThreadsPerWarp: 32, numWarpsPerMultiprocessor: 8, numMultiprocessors: 1)).Optimize(OptimizationLevel.O1).EnableAlgorithms());
        var acc = ctx.CreateCPUAccelerator(0);
        return new CudaDevice(ctx, acc);
    }

    /// <summary>Waits for all queued work.</summary>
    public void Synchronize() => Stream.Synchronize();

    public void Dispose()
    {
        Kernels.Dispose();
        Stream.Dispose();
        Accelerator.Dispose();
        context.Dispose();
    }
}
