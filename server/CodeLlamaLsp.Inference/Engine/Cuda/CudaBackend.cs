// One GPU as the CUDA engine uses it: the device (its compiled kernels and stream, CudaDevice) and the allocator
// that checks free memory before every allocation and counts the bytes placed (GpuMemory). CudaModel uploads its
// weights through it and every CudaDecodingSession allocates its KV cache and buffers through it; the kernels
// themselves are launched by the engine (CudaDecodingSession.Forward.cs, CudaAttention), so there is one CUDA path.
// Below it, the device-side types those allocations come back as: fp32 vectors, the fp16 embedding table, the fp16
// KV cache and the RoPE table.
using ILGPU;
using ILGPU.Runtime;
using CodeLlamaLsp.Inference.Model;

namespace CodeLlamaLsp.Inference.Engine.Cuda;

/// <summary>The GPU (or ILGPU's CPU accelerator in tests) that models and sessions are allocated on.</summary>
public sealed class CudaBackend : IDisposable
{
    private readonly bool ownsDevice;
    private readonly GpuMemory memory;

    public CudaBackend(CudaDevice device, bool ownsDevice = true)
    {
        ArgumentNullException.ThrowIfNull(device);
        Device = device;
        this.ownsDevice = ownsDevice;
        memory = new GpuMemory(device);
    }

    public CudaDevice Device { get; }

    /// <summary>For logs, for example "cuda: NVIDIA H200".</summary>
    public string Name => Device.Name;

    /// <summary>Bytes placed on the device through this backend (weights, caches, buffers).</summary>
    public long AllocatedBytes => memory.AllocatedBytes;

    internal GpuMemory Memory => memory;

    /// <summary>
    /// Allocates the fp16 KV cache for <paramref name="layers"/> layers of <paramref name="kvHeads"/> heads of width
    /// <paramref name="headDim"/> and <paramref name="capacity"/> positions (the configured context length).
    /// </summary>
    internal CudaKvCache AllocateKvCache(int layers, int kvHeads, int headDim, int capacity)
    {
        if (headDim > AttentionKernels.MaxHeadDim)
        {
            throw new NotSupportedException($"The CUDA attention kernel supports head_dim up to {AttentionKernels.MaxHeadDim}; got {headDim}.");
        }

        long per = (long)kvHeads * capacity * headDim;
        var k = memory.Allocate<ushort>(per * layers, $"the KV cache keys ({capacity} positions)");
        var v = memory.Allocate<ushort>(per * layers, $"the KV cache values ({capacity} positions)");
        return new CudaKvCache(k, v, layers, kvHeads, headDim, capacity);
    }

    public void Dispose()
    {
        if (ownsDevice)
        {
            Device.Dispose();
        }
    }
}

/// <summary>An fp32 weight vector (an RMSNorm weight) on the device.</summary>
internal sealed class CudaBuffer : IDisposable
{
    private CudaBuffer(MemoryBuffer1D<float, Stride1D.Dense> buffer) => Buffer = buffer;

    public MemoryBuffer1D<float, Stride1D.Dense> Buffer { get; }

    /// <summary>Queues a weight vector (a norm) as fp32.</summary>
    public static CudaBuffer Upload(StagedUpload upload, TensorData vector)
    {
        ArgumentNullException.ThrowIfNull(vector);
        return new CudaBuffer(upload.Add(HostTensor.Float32(vector.Name, vector)));
    }

    public void Dispose() => Buffer.Dispose();
}

/// <summary>The fp16 embedding table [vocab, hidden].</summary>
internal sealed class CudaEmbedding : IDisposable
{
    private CudaEmbedding(MemoryBuffer1D<ushort, Stride1D.Dense> table) => Table = table;

    public MemoryBuffer1D<ushort, Stride1D.Dense> Table { get; }

    /// <summary>Queues the table as fp16, one row per token.</summary>
    public static CudaEmbedding Upload(StagedUpload upload, TensorData table)
    {
        ArgumentNullException.ThrowIfNull(table);
        if (table.Shape.Count != 2)
        {
            throw new ArgumentException($"Embedding '{table.Name}' must be [vocab, hidden]; got [{string.Join(", ", table.Shape)}].", nameof(table));
        }

        return new CudaEmbedding(upload.Add(HostTensor.HalfBits(table.Name, table, (int)table.Shape[1])));
    }

    public void Dispose() => Table.Dispose();
}

/// <summary>fp16 keys and values [layers, kvHeads, capacity, headDim].</summary>
internal sealed class CudaKvCache : KvCacheStorage
{
    private readonly MemoryBuffer1D<ushort, Stride1D.Dense> k;
    private readonly MemoryBuffer1D<ushort, Stride1D.Dense> v;

    public CudaKvCache(MemoryBuffer1D<ushort, Stride1D.Dense> k, MemoryBuffer1D<ushort, Stride1D.Dense> v, int layers, int kvHeads, int headDim, int capacity)
        : base(layers, kvHeads, headDim, capacity)
    {
        this.k = k;
        this.v = v;
    }

    public ArrayView<ushort> LayerK(int layer) => k.View.SubView((long)layer * KvHeads * Capacity * HeadDim, (long)KvHeads * Capacity * HeadDim);

    public ArrayView<ushort> LayerV(int layer) => v.View.SubView((long)layer * KvHeads * Capacity * HeadDim, (long)KvHeads * Capacity * HeadDim);

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            k.Dispose();
            v.Dispose();
        }

        base.Dispose(disposing);
    }
}

/// <summary>cos/sin of pos * inv_freq for every position up to a limit, computed on the host as HF does (fp32 angle).</summary>
internal sealed class RopeTable : IDisposable
{
    private RopeTable(MemoryBuffer1D<float, Stride1D.Dense> cos, MemoryBuffer1D<float, Stride1D.Dense> sin)
    {
        Cos = cos;
        Sin = sin;
    }

    public MemoryBuffer1D<float, Stride1D.Dense> Cos { get; }

    public MemoryBuffer1D<float, Stride1D.Dense> Sin { get; }

    public static RopeTable Create(GpuMemory memory, float theta, int headDim, int positions)
    {
        int half = headDim / 2;
        var invFreq = new float[half];
        for (int i = 0; i < half; i++)
        {
            // The same fp32 arithmetic as the CPU backend and transformers, so long positions round alike.
            float exponent = (2f * i) / headDim;
            invFreq[i] = 1f / MathF.Pow(theta, exponent);
        }

        var cos = new float[(long)positions * half];
        var sin = new float[(long)positions * half];
        for (int p = 0; p < positions; p++)
        {
            for (int i = 0; i < half; i++)
            {
                float angle = p * invFreq[i];
                cos[((long)p * half) + i] = MathF.Cos(angle);
                sin[((long)p * half) + i] = MathF.Sin(angle);
            }
        }

        return new RopeTable(memory.Upload(cos, "RoPE cos table"), memory.Upload(sin, "RoPE sin table"));
    }

    public void Dispose()
    {
        Cos.Dispose();
        Sin.Dispose();
    }
}
