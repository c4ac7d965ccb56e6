// Rotary position embedding (HF rotate_half) and the KV-cache store. Positions come from device memory
// so a captured CUDA graph replays correctly at every step.
using System.Runtime.CompilerServices;
using ILGPU;

namespace CodeLlamaLsp.Inference.Engine.Cuda;

/// <summary>
/// Launch geometry: grid (rows), group <see cref="BlockThreads"/>; threads stride over heads * headDim/2 pairs.
/// Reads x [rows, stride] fp32 (heads start at column offset), rotates pair (i, i + headDim/2) of each head
/// in place with cos/sin from the table [positions, headDim/2] (computed on the host in fp32 angles, as HF
/// does), at position start[0] + row.
/// </summary>
internal static class RopeKernels
{
    public const int BlockThreads = 256;

    public static void Rotate(ArrayView<float> x, int stride, int offset, int heads, int headDim, ArrayView<int> start, ArrayView<float> cos, ArrayView<float> sin)
    {
        int row = Grid.IdxX;
        int pos = start[0] + row;
        int half = headDim / 2;
        long tableBase = (long)pos * half;
        long rowBase = ((long)row * stride) + offset;
        for (int p = Group.IdxX; p < heads * half; p += BlockThreads)
        {
            int h = p / half;
            int i = p - (h * half);
            long at = rowBase + ((long)h * headDim) + i;
            var r = RotatePair(x[at], x[at + half], cos[tableBase + i], sin[tableBase + i]);
            x[at] = r.Re;
            x[at + half] = r.Im;
        }
    }

    /// <summary>
    /// Writes k and v rows (fp32, [rows, stride] views starting at each row's first key / value column) as fp16 into the cache
    /// [kvHeads, capacity, headDim] of one layer (the view is already offset to the layer) at position start[0] + row.
    /// Launch geometry: grid (rows), group <see cref="BlockThreads"/>.
    /// </summary>
    public static void StoreKv(ArrayView<float> kSrc, ArrayView<float> vSrc, int stride, int kvHeads, int headDim, int capacity, ArrayView<int> start, ArrayView<ushort> kCache, ArrayView<ushort> vCache)
    {
        int row = Grid.IdxX;
        int pos = start[0] + row;
        long rowBase = (long)row * stride;
        for (int e = Group.IdxX; e < kvHeads * headDim; e += BlockThreads)
        {
            int h = e / headDim;
            int d = e - (h * headDim);
            long at = (((long)h * capacity) + pos) * headDim + d;
            kCache[at] = (ushort)DeviceMath.FloatToHalfBits(kSrc[rowBase + e]);
            vCache[at] = (ushort)DeviceMath.FloatToHalfBits(vSrc[rowBase + e]);
        }
    }

    /// <summary>
    /// The decode path's fused form of <see cref="Rotate"/> (queries and keys) and <see cref="StoreKv"/>: one thread per
    /// rotation pair of the q and k heads of one row of qkv [rows, stride] (q, then k, then v columns); q is rotated in
    /// place, k rotated straight into the fp16 cache and v's pair copied beside it, at position start[0] + row.
    /// Launch geometry: grid (ceil((heads + kvHeads) * headDim / 2 / BlockThreads), rows), group <see cref="BlockThreads"/>:
    /// no thread loops, so the kernel costs one memory round trip instead of three launches of strided loops.
    /// </summary>
    public static void RotateAndStore(ArrayView<float> qkv, int stride, int heads, int kvHeads, int headDim, int capacity, ArrayView<int> start, ArrayView<float> cos, ArrayView<float> sin, ArrayView<ushort> kCache, ArrayView<ushort> vCache)
    {
        int half = headDim / 2;
        int p = (Grid.IdxX * BlockThreads) + Group.IdxX;
        if (p >= (heads + kvHeads) * half)
        {
            return;
        }

        int row = Grid.IdxY;
        int pos = start[0] + row;
        int h = p / half;
        int i = p - (h * half);
        long at = ((long)row * stride) + ((long)h * headDim) + i;
        var r = RotatePair(qkv[at], qkv[at + half], cos[((long)pos * half) + i], sin[((long)pos * half) + i]);
        if (h < heads)
        {
            qkv[at] = r.Re;
            qkv[at + half] = r.Im;
            return;
        }

        long vAt = at + ((long)kvHeads * headDim);
        long cacheAt = ((((long)(h - heads) * capacity) + pos) * headDim) + i;
        kCache[cacheAt] = (ushort)DeviceMath.FloatToHalfBits(r.Re);
        kCache[cacheAt + half] = (ushort)DeviceMath.FloatToHalfBits(r.Im);
        vCache[cacheAt] = (ushort)DeviceMath.FloatToHalfBits(qkv[vAt]);
        vCache[cacheAt + half] = (ushort)DeviceMath.FloatToHalfBits(qkv[vAt + half]);
    }

    /// <summary>HF rotate_half on one pair: (a, b) turned by the angle whose cosine and sine are given.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (float Re, float Im) RotatePair(float a, float b, float cos, float sin) => ((a * cos) - (b * sin), (b * cos) + (a * sin));
}
