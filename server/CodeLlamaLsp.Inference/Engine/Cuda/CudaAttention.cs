// Attention over a CUDA KV cache as the engine launches it: from PrefillAttentionKernels.MinRows query rows on a
// GPU the tensor-core prefill kernel, otherwise the split-key kernel (AttentionKernels) and its combine. The split
// kernel's partial results live here, one set per user, because a captured CUDA graph keeps the addresses it was
// captured with: two sessions sharing partials would see one regrow them under the other's graphs.
using ILGPU;
using ILGPU.Runtime;

namespace CodeLlamaLsp.Inference.Engine.Cuda;

/// <summary>Launches attention for one sequence, reading its position of row 0 from a device-side counter.</summary>
internal sealed class CudaAttention : IDisposable
{
    private readonly CudaDevice device;
    private readonly GpuMemory memory;
    private readonly ArrayView<int> start; // [1]: the position of row 0
    private MemoryBuffer1D<float, Stride1D.Dense>? partialO; // [rows * splits, heads, head_dim]
    private MemoryBuffer1D<float, Stride1D.Dense>? partialMl; // [rows * splits, heads, 2]: running max and sum

    public CudaAttention(CudaDevice device, GpuMemory memory, ArrayView<int> start)
    {
        this.device = device;
        this.memory = memory;
        this.start = start;
    }

    /// <summary>
    /// Splits per query row for decode steps and verification passes: enough that kvHeads * headGroups * splits blocks fill
    /// every multiprocessor once (<see cref="AttentionKernels.BlocksPerMultiprocessor"/> each), so a long context streams K
    /// and V from all of them; at most one per 64-key tile of the capacity and <see cref="AttentionKernels.MaxSplits"/>. A
    /// row uses only as many as its length needs (<see cref="AttentionKernels.UsedSplits"/>).
    /// </summary>
    public static int DecodeSplits(CudaDevice device, int kvHeads, int heads, int capacity)
    {
        int headGroups = ((heads / kvHeads) + AttentionKernels.HeadsPerBlock - 1) / AttentionKernels.HeadsPerBlock;
        int blocks = kvHeads * headGroups;
        int want = Math.Max(1, (AttentionKernels.BlocksPerMultiprocessor * device.Multiprocessors) / blocks);
        int useful = Math.Max(1, (capacity + AttentionKernels.TileKeys - 1) / AttentionKernels.TileKeys);
        return Math.Min(Math.Min(want, useful), AttentionKernels.MaxSplits);
    }

    /// <summary>Sizes the partials for rows * splits query slots up front (graph capture cannot allocate).</summary>
    public void Reserve(long rowsTimesSplits, int heads, int headDim)
    {
        partialO = Grow(partialO, rowsTimesSplits * heads * headDim);
        partialMl = Grow(partialMl, rowsTimesSplits * heads * 2);
    }

    /// <summary>
    /// Causal attention of <paramref name="rows"/> query rows (q [rows, qStride], heads first) at positions start[0]..,
    /// written as fp16 straight into the input of o_proj in its <paramref name="layout"/>. Decode steps and verification
    /// passes split each row's keys over up to <paramref name="splits"/> blocks (as many as its length needs, at most
    /// <see cref="AttentionKernels.MaxSplits"/>); prefill chunks take 1.
    /// </summary>
    public void Run(ArrayView<float> q, int qStride, CudaKvCache c, int layer, int heads, int rows, int splits, ArrayView<ushort> output, InputLayoutArgs layout)
    {
        var k = device.Kernels;

        // Many rows (prefill) on a CUDA device: the tensor-core kernel; a few rows split their keys across blocks.
        if (rows >= PrefillAttentionKernels.MinRows && c.HeadDim == PrefillAttentionKernels.HeadDim && device.IsCuda)
        {
            k.PrefillAttention(
                new PrefillAttentionArgs
                {
                    Q = q,
                    Start = start,
                    // The kernel's fp32 output is unused here and gets a harmless stand-in view (never written).
                    Output = q,
                    OutputHalf = output,
                    Layout = layout,
                    HalfOutput = 1,
                    QStride = qStride,
                    Heads = heads,
                    KvHeads = c.KvHeads,
                    Capacity = c.Capacity,
                    Rows = rows,
                    Scale = 1.442695041f / MathF.Sqrt(c.HeadDim),
                },
                c.LayerK(layer),
                c.LayerV(layer));
            return;
        }

        if (splits < 1 || splits > AttentionKernels.MaxSplits)
        {
            throw new ArgumentOutOfRangeException(nameof(splits), splits, $"Attention takes 1 to {AttentionKernels.MaxSplits} splits.");
        }

        Reserve((long)rows * splits, heads, c.HeadDim);
        var args = new AttentionArgs
        {
            Q = q,
            K = c.LayerK(layer),
            V = c.LayerV(layer),
            PartialO = partialO!.View,
            PartialMl = partialMl!.View,
            Start = start,
            QStride = qStride,
            QOffset = 0,
            Heads = heads,
            KvHeads = c.KvHeads,
            HeadDim = c.HeadDim,
            Capacity = c.Capacity,
            Splits = splits,
            Scale = 1f / MathF.Sqrt(c.HeadDim),

            // A row whose keys one split holds is finished by that split (fp16 into the o_proj layout); the unused fp32
            // output gets a stand-in view, as above.
            Output = partialMl.View,
            OutputHalf = output,
            Layout = layout,
            HalfOutput = 1,
        };
        k.Attention(args, rows);

        // With one split every row's output is written by the attention kernel itself.
        if (splits > 1)
        {
            k.Combine(partialO.View, partialMl.View, start, rows, splits, heads, c.HeadDim, partialMl.View, output, halfOutput: true, layout);
        }
    }

    public void Dispose()
    {
        partialO?.Dispose();
        partialMl?.Dispose();
    }

    private MemoryBuffer1D<float, Stride1D.Dense> Grow(MemoryBuffer1D<float, Stride1D.Dense>? buffer, long length)
    {
        if (buffer != null && buffer.Length >= length)
        {
            return buffer;
        }

        device.Synchronize();
        buffer?.Dispose();
        return memory.Allocate<float>(Math.Max(length, (buffer?.Length ?? 0) * 2), "attention partials");
    }
}
