// The KV cache and causal grouped-query attention on the CPU. The cache is laid out
// [layer][kv_head][position][head_dim] so one head's keys (and values) are one contiguous run to scan.
using System.Numerics.Tensors;

namespace CodeLlamaLsp.Inference.Engine.Cpu;

/// <summary>fp32 keys and values for every layer.</summary>
internal sealed class CpuKvCache : KvCacheStorage
{
    public CpuKvCache(int layers, int kvHeads, int headDim, int capacity)
        : base(layers, kvHeads, headDim, capacity)
    {
        long perLayer = (long)kvHeads * capacity * headDim;
        if (perLayer > Array.MaxLength)
        {
            throw new ArgumentOutOfRangeException(nameof(capacity), $"A KV cache of {capacity} positions x {kvHeads} heads x {headDim} is too large for one CPU array per layer.");
        }

        Keys = new float[layers][];
        Values = new float[layers][];
        for (int l = 0; l < layers; l++)
        {
            Keys[l] = new float[perLayer]; // [kv_heads, capacity, head_dim]
            Values[l] = new float[perLayer]; // [kv_heads, capacity, head_dim]
        }
    }

    public float[][] Keys { get; }

    public float[][] Values { get; }

    public int Offset(int kvHead, int position) => ((kvHead * Capacity) + position) * HeadDim;

    public void Store(int layer, float[] k, float[] v, int startPosition, int rows)
    {
        if (startPosition < 0 || startPosition + rows > Capacity)
        {
            throw new ArgumentOutOfRangeException(nameof(startPosition), $"Positions {startPosition}..{startPosition + rows - 1} do not fit a KV cache of {Capacity} positions.");
        }

        int kvWidth = KvHeads * HeadDim;
        for (int t = 0; t < rows; t++)
        {
            for (int h = 0; h < KvHeads; h++)
            {
                int src = (t * kvWidth) + (h * HeadDim);
                int dst = Offset(h, startPosition + t);
                k.AsSpan(src, HeadDim).CopyTo(Keys[layer].AsSpan(dst, HeadDim));
                v.AsSpan(src, HeadDim).CopyTo(Values[layer].AsSpan(dst, HeadDim));
            }
        }
    }
}

/// <summary>softmax(q K^T / sqrt(d)) V over positions 0..p, one (row, head) pair per work item.</summary>
internal static class CpuAttention
{
    public static void Run(float[] q, CpuKvCache cache, int layer, float[] output, int heads, int startPosition, int rows)
    {
        int headDim = cache.HeadDim;
        if (heads % cache.KvHeads != 0)
        {
            throw new ArgumentException($"{heads} query heads cannot share {cache.KvHeads} KV heads evenly.", nameof(heads));
        }

        if (startPosition + rows > cache.Capacity)
        {
            throw new ArgumentOutOfRangeException(nameof(rows), $"Position {startPosition + rows - 1} is beyond the KV cache of {cache.Capacity}.");
        }

        int group = heads / cache.KvHeads;
        float scale = 1f / MathF.Sqrt(headDim);
        var keys = cache.Keys[layer];
        var values = cache.Values[layer];
        Parallel.For(0, rows * heads, () => new float[startPosition + rows], (item, _, scores) =>
        {
            int t = item / heads;
            int h = item % heads;
            int kvHead = h / group;
            int length = startPosition + t + 1;
            var query = q.AsSpan(((t * heads) + h) * headDim, headDim);
            var s = scores.AsSpan(0, length);
            int baseOffset = cache.Offset(kvHead, 0);
            for (int j = 0; j < length; j++)
            {
                s[j] = TensorPrimitives.Dot(query, keys.AsSpan(baseOffset + (j * headDim), headDim)) * scale;
            }

            TensorPrimitives.SoftMax(s, s);
            var o = output.AsSpan(((t * heads) + h) * headDim, headDim);
            o.Clear();
            for (int j = 0; j < length; j++)
            {
                TensorPrimitives.MultiplyAdd(values.AsSpan(baseOffset + (j * headDim), headDim), s[j], o, o);
            }

            return scores;
        }, _ => { });
    }
}
