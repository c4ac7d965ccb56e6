// Device allocations with an up-front check against free memory, so running out of GPU memory is a clear
// message (what was being allocated, bytes needed, bytes free) rather than a driver error mid-load.
using ILGPU;
using ILGPU.Runtime;

namespace CodeLlamaLsp.Inference.Engine.Cuda;

/// <summary>Allocates and uploads device buffers, counting the bytes it placed.</summary>
internal sealed class GpuMemory
{
    private readonly CudaDevice device;

    public GpuMemory(CudaDevice device) => this.device = device;

    /// <summary>Bytes allocated through this instance.</summary>
    public long AllocatedBytes { get; private set; }

    public MemoryBuffer1D<T, Stride1D.Dense> Allocate<T>(long length, string what)
        where T : unmanaged
    {
        long bytes = Math.Max(1, length) * System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
        long free = device.FreeMemory;
        if (bytes > free)
        {
            throw new InsufficientGpuMemoryException(what, bytes, free, device.TotalMemory);
        }

        var buffer = device.Accelerator.Allocate1D<T>(Math.Max(1, length));
        AllocatedBytes += bytes;
        return buffer;
    }

    public MemoryBuffer1D<T, Stride1D.Dense> Upload<T>(T[] values, string what)
        where T : unmanaged
    {
        var buffer = Allocate<T>(values.Length, what);
        buffer.View.SubView(0, values.Length).CopyFromCPU(device.Stream, values);
        device.Stream.Synchronize();
        return buffer;
    }
}

/// <summary>Thrown when the model, KV cache or scratch buffers do not fit in GPU memory.</summary>
public sealed class InsufficientGpuMemoryException : InvalidOperationException
{
    public InsufficientGpuMemoryException(string what, long neededBytes, long freeBytes, long totalBytes)
        : base($"Out of GPU memory while allocating {what}: needs {Gib(neededBytes)}, {Gib(freeBytes)} free of {Gib(totalBytes)}. Use a smaller context (--context-size, or codellama.contextSize in the editor), a smaller model, or --device cpu.")
    {
        NeededBytes = neededBytes;
        FreeBytes = freeBytes;
    }

    public InsufficientGpuMemoryException()
    {
    }

    public InsufficientGpuMemoryException(string message)
        : base(message)
    {
    }

    public InsufficientGpuMemoryException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public long NeededBytes { get; }

    public long FreeBytes { get; }

    private static string Gib(long bytes) => $"{bytes / (1024.0 * 1024 * 1024):F2} GiB";
}
