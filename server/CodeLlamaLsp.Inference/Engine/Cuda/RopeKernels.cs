// Rotary position embedding (HF rotate_half) fused with the KV-cache store. Positions come from device memory
// so a captured CUDA graph replays correctly at every step.
using System.Runtime.CompilerServices;
using ILGPU;

namespace CodeLlamaLsp.Inference.Engine.Cuda;

/// <summary>
/// RoPE on the q and k heads of qkv rows, with cos/sin from the table [positions, headDim/2] (computed on the host in
/// fp32 angles, as HF does), fused with the KV-cache store.
/// </summary>
internal static class RopeKernels
{
    public const int BlockThreads = 256;

    /// <summary>
    /// One thread per rotation pair of the q and k heads of one row of qkv [rows, stride] (q, then k, then v columns):
    /// q is rotated in place, k rotated straight into the fp16 cache [kvHeads, capacity, headDim] of one layer and v's
    /// pair copied beside it, at position start[0] + row.
    /// Launch geometry: grid (ceil((heads + kvHeads) * headDim / 2 / BlockThreads), rows), group <see cref="BlockThreads"/>:
    /// no thread loops, so the kernel costs one memory round trip instead of separate rotate and store launches.
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
