// The CUDA implementation of IComputeBackend: every op of the engine as ILGPU kernels on one stream.
// Activations are fp32 device buffers (the interface's contract); linear layers convert their input to the
// fp16 layout their GEMV reads. The fused, graph-captured engine (CudaModel, CudaDecodingSession) reuses the same kernels.
using ILGPU;
using ILGPU.Runtime;
using CodeLlamaLsp.Inference.Model;

namespace CodeLlamaLsp.Inference.Engine.Cuda;

/// <summary>Runs the engine's ops on a GPU (or on ILGPU's CPU accelerator in tests).</summary>
public sealed class CudaBackend : IComputeBackend
{
    private readonly bool ownsDevice;
    private readonly GpuMemory memory;
    private readonly MemoryBuffer1D<int, Stride1D.Dense> start;
    private readonly Dictionary<(float Theta, int HeadDim), RopeTable> ropeTables = [];
    private MemoryBuffer1D<uint, Stride1D.Dense>? halfScratch;
    private MemoryBuffer1D<int, Stride1D.Dense>? ids;
    private readonly CudaAttention attention;

    public CudaBackend(CudaDevice device, bool ownsDevice = true)
    {
        ArgumentNullException.ThrowIfNull(device);
        Device = device;
        this.ownsDevice = ownsDevice;
        memory = new GpuMemory(device);
        start = memory.Allocate<int>(1, "position");
        attention = new CudaAttention(device, memory, start.View);
    }

    public CudaDevice Device { get; }

    public string Name => Device.Name;

    public DeviceKind Kind => DeviceKind.Cuda;

    /// <summary>Bytes this backend placed on the device (weights, cache, buffers).</summary>
    public long AllocatedBytes => memory.AllocatedBytes;

    internal GpuMemory Memory => memory;

    private CudaKernels K => Device.Kernels;

    public DeviceBuffer Allocate(int length)
    {
        var b = memory.Allocate<float>(length, $"an activation buffer of {length} floats");
        b.MemSetToZero(Device.Stream);
        return new CudaBuffer(b, length);
    }

    public void Upload(ReadOnlySpan<float> source, DeviceBuffer destination, int destinationOffset)
    {
        var d = Own(destination);
        CheckRange(destinationOffset, source.Length, d.Length, "Upload destination");
        d.Buffer.View.SubView(destinationOffset, source.Length).CopyFromCPU(Device.Stream, source.ToArray());
    }

    public void Download(DeviceBuffer source, int sourceOffset, Span<float> destination)
    {
        var s = Own(source);
        CheckRange(sourceOffset, destination.Length, s.Length, "Download source");
        var host = new float[destination.Length];
        s.Buffer.View.SubView(sourceOffset, destination.Length).CopyToCPU(Device.Stream, host);
        Device.Synchronize();
        host.CopyTo(destination);
    }

    public void Copy(DeviceBuffer source, int sourceOffset, DeviceBuffer destination, int destinationOffset, int count)
    {
        var s = Own(source);
        var d = Own(destination);
        CheckRange(sourceOffset, count, s.Length, "Copy source");
        CheckRange(destinationOffset, count, d.Length, "Copy destination");
        s.Buffer.View.SubView(sourceOffset, count).CopyTo(Device.Stream, d.Buffer.View.SubView(destinationOffset, count));
    }

    public PreparedLinear PrepareLinear(LinearWeights weights) => Staged(upload => CudaLinear.Upload(upload, weights));

    public PreparedEmbedding PrepareEmbedding(TensorData table) => Staged(upload => CudaEmbedding.Upload(upload, table));

    public DeviceBuffer PrepareVector(TensorData vector) => Staged(upload => CudaBuffer.Upload(upload, vector));

    public KvCacheStorage AllocateKvCache(int layers, int kvHeads, int headDim, int capacity)
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

    public void Embed(PreparedEmbedding table, ReadOnlySpan<int> tokenIds, DeviceBuffer output)
    {
        var t = table as CudaEmbedding ?? throw new ArgumentException("Embedding table belongs to another backend.", nameof(table));
        var o = Own(output);
        foreach (var id in tokenIds)
        {
            if ((uint)id >= (uint)t.VocabSize)
            {
                throw new ArgumentOutOfRangeException(nameof(tokenIds), $"Token id {id} is outside the vocabulary (0..{t.VocabSize - 1}).");
            }
        }

        CheckRange(0, tokenIds.Length * t.HiddenSize, o.Length, "Embed output");
        ids = Grow(ids, tokenIds.Length, "token ids");
        ids.View.SubView(0, tokenIds.Length).CopyFromCPU(Device.Stream, tokenIds.ToArray());
        K.Embed(ids.View, t.Table.View, o.Buffer.View, tokenIds.Length, t.HiddenSize);
    }

    public void RmsNorm(DeviceBuffer input, DeviceBuffer weight, DeviceBuffer output, int rows, int width, float eps) =>
        K.RmsNorm(Own(input).Buffer.View, Own(weight).Buffer.View, Own(output).Buffer.View, rows, width, eps);

    public void Rope(DeviceBuffer x, int rows, int heads, int headDim, int startPosition, float theta)
    {
        var table = RopeFor(theta, headDim, startPosition + rows);
        SetStart(startPosition);
        K.Rope(Own(x).Buffer.View, rows, heads * headDim, 0, heads, headDim, start.View, table.Cos.View, table.Sin.View);
    }

    public void Linear(PreparedLinear weights, DeviceBuffer input, DeviceBuffer output, int rows)
    {
        var w = weights as CudaLinear ?? throw new ArgumentException("Linear layer belongs to another backend.", nameof(weights));
        var i = Own(input);
        var o = Own(output);
        CheckRange(0, rows * w.InFeatures, i.Length, $"{w.Name} input");
        CheckRange(0, rows * w.OutFeatures, o.Length, $"{w.Name} output");
        halfScratch = Grow(halfScratch, ((long)rows * w.InFeatures) + 4, "linear-layer activations");
        K.ToHalfLayout(i.Buffer.View, halfScratch.View.AsContiguous().Cast<ushort>(), rows, w.InFeatures, w.InputLayout);
        w.Run(K, halfScratch.View, o.Buffer.View, rows, w.OutFeatures, accumulate: false);
    }

    public void StoreKv(KvCacheStorage cache, int layer, DeviceBuffer k, DeviceBuffer v, int startPosition, int rows)
    {
        var c = OwnCache(cache);
        if (startPosition + rows > c.Capacity)
        {
            throw new ArgumentException($"Positions {startPosition}..{startPosition + rows - 1} exceed the KV cache capacity {c.Capacity}.", nameof(startPosition));
        }

        SetStart(startPosition);
        int width = c.KvHeads * c.HeadDim;
        K.StoreKv(Own(k).Buffer.View, Own(v).Buffer.View, rows, width, c.KvHeads, c.HeadDim, c.Capacity, start.View, c.LayerK(layer), c.LayerV(layer));
    }

    public void Attention(DeviceBuffer q, KvCacheStorage cache, int layer, DeviceBuffer output, int heads, int startPosition, int rows)
    {
        var c = OwnCache(cache);
        SetStart(startPosition);
        int splits = rows == 1 ? CudaAttention.DecodeSplits(Device, c.KvHeads, heads, c.Capacity) : 1;
        attention.Run(Own(q).Buffer.View, heads * c.HeadDim, c, layer, heads, rows, splits, Own(output).Buffer.View, default, halfOutput: false, default);
    }

    public void SiluMultiply(DeviceBuffer gate, DeviceBuffer up, int count) =>
        K.SiluMultiply(Own(gate).Buffer.View, Own(up).Buffer.View, count);

    public void Add(DeviceBuffer accumulator, DeviceBuffer addend, int count) =>
        K.Add(Own(accumulator).Buffer.View, Own(addend).Buffer.View, count);

    /// <summary>Sets the device-side position read by RoPE, StoreKv and attention.</summary>
    private void SetStart(int position) => start.View.CopyFromCPU(Device.Stream, new[] { position });

    private RopeTable RopeFor(float theta, int headDim, int positions)
    {
        if (!ropeTables.TryGetValue((theta, headDim), out var table) || table.Positions < positions)
        {
            table?.Dispose();
            table = RopeTable.Create(memory, theta, headDim, Math.Max(positions, 256));
            ropeTables[(theta, headDim)] = table;
        }

        return table;
    }

    private MemoryBuffer1D<T, Stride1D.Dense> Grow<T>(MemoryBuffer1D<T, Stride1D.Dense>? buffer, long length, string what)
        where T : unmanaged
    {
        if (buffer != null && buffer.Length >= length)
        {
            return buffer;
        }

        Device.Synchronize();
        buffer?.Dispose();
        return memory.Allocate<T>(Math.Max(length, (buffer?.Length ?? 0) * 2), what);
    }

    /// <summary>One tensor or layer uploaded on its own (the op-by-op path; CudaModel stages a whole model at once).</summary>
    private T Staged<T>(Func<StagedUpload, T> prepare)
    {
        using var upload = new StagedUpload(Device, memory);
        var prepared = prepare(upload);
        upload.Finish();
        return prepared;
    }

    private static CudaBuffer Own(DeviceBuffer b) => b as CudaBuffer ?? throw new ArgumentException("Buffer belongs to another backend.", nameof(b));

    private static CudaKvCache OwnCache(KvCacheStorage c) => c as CudaKvCache ?? throw new ArgumentException("KV cache belongs to another backend.", nameof(c));

    private static void CheckRange(long offset, long count, long length, string what)
    {
        if (offset < 0 || count < 0 || offset + count > length)
        {
            throw new ArgumentException($"{what}: elements {offset}..{offset + count} exceed the buffer length {length}.");
        }
    }

    public void Dispose()
    {
        foreach (var t in ropeTables.Values)
        {
            t.Dispose();
        }

        halfScratch?.Dispose();
        ids?.Dispose();
        attention.Dispose();
        start.Dispose();
        if (ownsDevice)
        {
            Device.Dispose();
        }
    }
}

/// <summary>An fp32 activation buffer on the device.</summary>
internal sealed class CudaBuffer : DeviceBuffer
{
    public CudaBuffer(MemoryBuffer1D<float, Stride1D.Dense> buffer, int length)
        : base(length) => Buffer = buffer;

    public MemoryBuffer1D<float, Stride1D.Dense> Buffer { get; }

    /// <summary>Queues a weight vector (a norm) as fp32.</summary>
    public static CudaBuffer Upload(StagedUpload upload, TensorData vector)
    {
        ArgumentNullException.ThrowIfNull(vector);
        var values = HostTensor.Float32(vector.Name, vector);
        return new CudaBuffer(upload.Add(values), (int)values.Length);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Buffer.Dispose();
        }

        base.Dispose(disposing);
    }
}

/// <summary>The fp16 embedding table [vocab, hidden].</summary>
internal sealed class CudaEmbedding : PreparedEmbedding
{
    public CudaEmbedding(MemoryBuffer1D<ushort, Stride1D.Dense> table, int vocab, int hidden)
        : base(vocab, hidden) => Table = table;

    public MemoryBuffer1D<ushort, Stride1D.Dense> Table { get; }

    /// <summary>Queues the table as fp16, one row per token.</summary>
    public static CudaEmbedding Upload(StagedUpload upload, TensorData table)
    {
        ArgumentNullException.ThrowIfNull(table);
        if (table.Shape.Count != 2)
        {
            throw new ArgumentException($"Embedding '{table.Name}' must be [vocab, hidden]; got [{string.Join(", ", table.Shape)}].", nameof(table));
        }

        int vocab = (int)table.Shape[0];
        int hidden = (int)table.Shape[1];
        return new CudaEmbedding(upload.Add(HostTensor.HalfBits(table.Name, table, hidden)), vocab, hidden);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Table.Dispose();
        }

        base.Dispose(disposing);
    }
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

    public long BytesPerLayer => (long)KvHeads * Capacity * HeadDim * 2 * 2;

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
    private RopeTable(MemoryBuffer1D<float, Stride1D.Dense> cos, MemoryBuffer1D<float, Stride1D.Dense> sin, int positions)
    {
        Cos = cos;
        Sin = sin;
        Positions = positions;
    }

    public MemoryBuffer1D<float, Stride1D.Dense> Cos { get; }

    public MemoryBuffer1D<float, Stride1D.Dense> Sin { get; }

    public int Positions { get; }

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

        return new RopeTable(memory.Upload(cos, "RoPE cos table"), memory.Upload(sin, "RoPE sin table"), positions);
    }

    public void Dispose()
    {
        Cos.Dispose();
        Sin.Dispose();
    }
}
