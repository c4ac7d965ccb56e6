// Causal grouped-query attention over the fp16 KV cache, flash-decoding style: the keys of one query are
// split across blocks (so a long context keeps every multiprocessor busy at batch 1), each block keeps an
// online softmax over 128-key tiles, and a combine kernel merges the blocks' partial results. A row whose
// keys one block took (a short context) is finished by that block, and the combine skips it.
using System.Runtime.CompilerServices;
using ILGPU;

namespace CodeLlamaLsp.Inference.Engine.Cuda;

/// <summary>Arguments of <see cref="AttentionKernels.Partial"/>.</summary>
internal struct AttentionArgs
{
    /// <summary>[rows, QStride] fp32 rotated queries starting at column QOffset.</summary>
    public ArrayView<float> Q;

    /// <summary>One layer's keys [kvHeads, Capacity, HeadDim] fp16 (as half2 words when HeadDim is even).</summary>
    public ArrayView<ushort> K;

    /// <summary>One layer's values, same layout.</summary>
    public ArrayView<ushort> V;

    /// <summary>[rows, Splits, heads, HeadDim] unnormalised outputs of each split.</summary>
    public ArrayView<float> PartialO;

    /// <summary>[rows, Splits, heads, 2]: running max and sum of exponentials of each split.</summary>
    public ArrayView<float> PartialMl;

    /// <summary>
    /// [rows, heads * HeadDim] fp32 output when HalfOutput is 0, written by <see cref="AttentionKernels.Partial"/> for the rows
    /// whose keys one split took and by <see cref="AttentionKernels.Combine"/> for the others.
    /// </summary>
    public ArrayView<float> Output;

    /// <summary>The same output as fp16 in the o_proj input layout (<see cref="Layout"/>) when HalfOutput is non-zero.</summary>
    public ArrayView<ushort> OutputHalf;

    public InputLayoutArgs Layout;
    public int HalfOutput;

    /// <summary>[1]: position of row 0.</summary>
    public ArrayView<int> Start;
    public int QStride;
    public int QOffset;
    public int Heads;
    public int KvHeads;
    public int HeadDim;
    public int Capacity;
    public int Splits;
    public float Scale;
}

/// <summary>
/// Launch geometry of <see cref="Partial"/>: grid (kvHeads * headGroups, Splits, rows), group 256 threads,
/// headGroups = ceil(G / 8) with G = heads / kvHeads. A block serves up to 8 query heads that share one KV
/// head, so each key and value row is read from memory once for all of them. Row t (position p = start + t)
/// attends keys 0..p; split s takes keys [s*chunk, min(p+1, (s+1)*chunk)), chunk = ceil((p+1) / Splits),
/// in tiles of 128 keys. Each tile's keys are staged in shared memory with 16-byte coalesced loads (row pitch
/// headDim/2 + 1 words, so a warp's 32 keys fall in 32 banks), scored by one thread per (head, key) with q from
/// shared memory (entry h * n + key over the tile's n keys, so a short tile spreads its few scores over the threads); one warp per head updates the running max/sum; then the tile's values are staged the same way
/// and thread (d = tid % 128, heads 4*(tid/128) .. +3) accumulates p * V, reading the four heads' probabilities
/// (stored [key][head]) as one 16-byte shared load. Supports even headDim &lt;= 128. When one split takes all of a
/// row's keys (<see cref="UsedSplits"/> is 1) that block writes the row's output (O / l) in place of a partial, and
/// Combine skips the row; the choice depends on the row's position only, so a row gets the same bits alone and batched.
/// </summary>
internal static class AttentionKernels
{
    public const int BlockThreads = 256;
    public const int HeadsPerBlock = 8;
    public const int Tile = 128;
    public const int MaxHeadDim = 128;

    /// <summary>Words per staged key or value row: 64 half2 words + 1 of padding against bank conflicts.</summary>
    private const int KvPitch = (MaxHeadDim / 2) + 1;

    /// <summary>
    /// Floats per query row in shared memory: 128 + 4 of padding, so that the up to 8 heads a warp scores at a short
    /// tile (entry e = h * n + key) read q from 8 different banks (bank 4h + 2dp) instead of one (an 8-way conflict).
    /// </summary>
    private const int QPitch = MaxHeadDim + 4;

    public static void Partial(AttentionArgs a)
    {
        int g = a.Heads / a.KvHeads;
        int headGroups = (g + HeadsPerBlock - 1) / HeadsPerBlock;
        int kvh = Grid.IdxX / headGroups;
        int hg = Grid.IdxX - (kvh * headGroups);
        int split = Grid.IdxY;
        int row = Grid.IdxZ;
        int qh0 = (kvh * g) + (hg * HeadsPerBlock);
        int nh = g - (hg * HeadsPerBlock);
        nh = nh < HeadsPerBlock ? nh : HeadsPerBlock;
        int hd = a.HeadDim;
        int tid = Group.IdxX;
        int warp = tid / 32;
        int lane = tid % 32;

        int pos = a.Start[0] + row;
        int len = pos + 1;
        int used = UsedSplits(len, a.Splits);
        if (split >= used)
        {
            // No keys for this block, and Combine reads only the used splits' partials.
            return;
        }

        int chunk = (len + used - 1) / used;
        int begin = split * chunk;
        int end = begin + chunk;
        end = end < len ? end : len;

        var qs = SharedMemory.Allocate<float>(HeadsPerBlock * QPitch);
        var sc = SharedMemory.Allocate<Words4>(Tile * HeadsPerBlock / 4); // [key][head] fp32 bits
        var kv = SharedMemory.Allocate<uint>(Tile * KvPitch);
        var runMax = SharedMemory.Allocate<float>(HeadsPerBlock);
        var runSum = SharedMemory.Allocate<float>(HeadsPerBlock);
        var alpha = SharedMemory.Allocate<float>(HeadsPerBlock);
        var scf = sc.Cast<float>();

        // The block's 8 x 128 query values, four per thread (HeadsPerBlock * MaxHeadDim == 4 * BlockThreads), written out
        // so that all four global loads are issued before the first shared store (the loop form waited for each in turn).
        // Same values as before (q * Scale, 0 past nh heads or hd dimensions); only their row pitch in qs is QPitch.
        long qBase = ((long)row * a.QStride) + a.QOffset;
        float q0 = LoadQuery(a, qBase, qh0, nh, hd, tid);
        float q1 = LoadQuery(a, qBase, qh0, nh, hd, tid + BlockThreads);
        float q2 = LoadQuery(a, qBase, qh0, nh, hd, tid + (2 * BlockThreads));
        float q3 = LoadQuery(a, qBase, qh0, nh, hd, tid + (3 * BlockThreads));
        qs[QueryAt(tid)] = q0;
        qs[QueryAt(tid + BlockThreads)] = q1;
        qs[QueryAt(tid + (2 * BlockThreads))] = q2;
        qs[QueryAt(tid + (3 * BlockThreads))] = q3;

        if (tid < HeadsPerBlock)
        {
            runMax[tid] = float.NegativeInfinity;
            runSum[tid] = 0f;
        }

        int myD = tid % MaxHeadDim;
        int myH = (tid / MaxHeadDim) * 4;
        float acc0 = 0f;
        float acc1 = 0f;
        float acc2 = 0f;
        float acc3 = 0f;
        long kvBase = (long)kvh * a.Capacity * hd;

        for (int tile = begin; tile < end; tile += Tile)
        {
            int n = end - tile;
            n = n < Tile ? n : Tile;

            // Also orders the q stores (first tile) and the previous tile's reads of kv before the overwrite.
            Group.Barrier();
            Stage(a.K, kvBase + ((long)tile * hd), n, hd, kv, tid);
            Group.Barrier();

            // Scores: entry e = h * n + key over the tile's 8n real (head, key) pairs only. With a full tile (n == Tile)
            // this is the former mapping e = h * Tile + key (a warp shares one head and reads 32 consecutive staged keys);
            // with a short tile (a short context: n = 4 left 8 threads running four 64-step dot products in turn under
            // the old 8 x 128 slots) the 8n scores are spread over the first 8n threads. Each score is the same
            // sequential sum over dp as before, so the bits do not change; only which thread computes it does.
            // Slots [key][h] with key >= n are not written (they were -inf or 0 before): nothing reads them, since the
            // softmax below and the value loop both run key < n only. The loop bound is the same for the whole block
            // and the barriers around it are outside it, so no barrier is divergent.
            int pairs = HeadsPerBlock * n;
            for (int e = tid; e < pairs; e += BlockThreads)
            {
                int h = e / n;
                int key = e - (h * n);
                float s = 0f;
                if (h < nh)
                {
                    int kAt = key * KvPitch;
                    int qAt = h * QPitch;
                    for (int dp = 0; dp < hd / 2; dp++)
                    {
                        uint pair = kv[kAt + dp];
                        s += qs[qAt + (2 * dp)] * DeviceMath.Low(pair);
                        s += qs[qAt + (2 * dp) + 1] * DeviceMath.High(pair);
                    }
                }

                // Heads past nh keep 0 so the value loop below may run all four of its heads unconditionally.
                scf[(key * HeadsPerBlock) + h] = s;
            }

            Group.Barrier();

            // Online softmax update, one warp per head.
            if (warp < nh)
            {
                float m = float.NegativeInfinity;
                for (int key = lane; key < n; key += 32)
                {
                    float v = scf[(key * HeadsPerBlock) + warp];
                    m = v > m ? v : m;
                }

                for (int offset = 16; offset > 0; offset /= 2)
                {
                    float o = Warp.ShuffleXor(m, offset);
                    m = o > m ? o : m;
                }

                float old = runMax[warp];
                float mNew = old > m ? old : m;
                float sum = 0f;
                for (int key = lane; key < n; key += 32)
                {
                    float p = MathF.Exp(scf[(key * HeadsPerBlock) + warp] - mNew);
                    scf[(key * HeadsPerBlock) + warp] = p;
                    sum += p;
                }

                for (int offset = 16; offset > 0; offset /= 2)
                {
                    sum += Warp.ShuffleXor(sum, offset);
                }

                if (lane == 0)
                {
                    float al = old == float.NegativeInfinity ? 0f : MathF.Exp(old - mNew);
                    alpha[warp] = al;
                    runSum[warp] = (runSum[warp] * al) + sum;
                    runMax[warp] = mNew;
                }
            }

            // Keys are no longer needed: stage the values in their place.
            Group.Barrier();
            Stage(a.V, kvBase + ((long)tile * hd), n, hd, kv, tid);
            Group.Barrier();

            if (myD < hd)
            {
                acc0 *= alpha[myH];
                acc1 *= alpha[myH + 1];
                acc2 *= alpha[myH + 2];
                acc3 *= alpha[myH + 3];
                int vAt = myD / 2;
                int odd = myD & 1;
                for (int key = 0; key < n; key++)
                {
                    uint pair = kv[(key * KvPitch) + vAt];
                    float v = odd != 0 ? DeviceMath.High(pair) : DeviceMath.Low(pair);
                    var p = sc[(key * (HeadsPerBlock / 4)) + (myH / 4)];
                    acc0 += Interop.IntAsFloat(p.X) * v;
                    acc1 += Interop.IntAsFloat(p.Y) * v;
                    acc2 += Interop.IntAsFloat(p.Z) * v;
                    acc3 += Interop.IntAsFloat(p.W) * v;
                }
            }
        }

        // No barrier needed: runMax and runSum were last written before the last tile's two barriers; a split without keys
        // (never a row's only split) holds its initial values, read below by the threads that wrote them.
        if (used == 1)
        {
            // The row's only split: its result is final (Combine's out = O / l for one split), so no partial is written.
            if (myD < hd)
            {
                int width = a.Heads * hd;
                int k = ((qh0 + myH) * hd) + myD;
                if (myH < nh)
                {
                    StoreOutput(a, row, width, k, acc0 / runSum[myH]);
                }

                if (myH + 1 < nh)
                {
                    StoreOutput(a, row, width, k + hd, acc1 / runSum[myH + 1]);
                }

                if (myH + 2 < nh)
                {
                    StoreOutput(a, row, width, k + (2 * hd), acc2 / runSum[myH + 2]);
                }

                if (myH + 3 < nh)
                {
                    StoreOutput(a, row, width, k + (3 * hd), acc3 / runSum[myH + 3]);
                }
            }

            return;
        }

        long oBase = (((long)row * a.Splits) + split) * a.Heads;
        if (myD < hd)
        {
            if (myH < nh)
            {
                a.PartialO[((oBase + qh0 + myH) * hd) + myD] = acc0;
            }

            if (myH + 1 < nh)
            {
                a.PartialO[((oBase + qh0 + myH + 1) * hd) + myD] = acc1;
            }

            if (myH + 2 < nh)
            {
                a.PartialO[((oBase + qh0 + myH + 2) * hd) + myD] = acc2;
            }

            if (myH + 3 < nh)
            {
                a.PartialO[((oBase + qh0 + myH + 3) * hd) + myD] = acc3;
            }
        }

        if (tid < nh)
        {
            a.PartialMl[((oBase + qh0 + tid) * 2) + 0] = runMax[tid];
            a.PartialMl[((oBase + qh0 + tid) * 2) + 1] = runSum[tid];
        }
    }

    /// <summary>Query value i of the block (head i / 128, dimension i % 128) times Scale, or 0 past nh heads or hd dimensions.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float LoadQuery(AttentionArgs a, long qBase, int qh0, int nh, int hd, int i)
    {
        int h = i / MaxHeadDim;
        int d = i - (h * MaxHeadDim);
        return h < nh && d < hd ? a.Q[qBase + ((long)(qh0 + h) * hd) + d] * a.Scale : 0f;
    }

    /// <summary>Where query value i (head i / 128, dimension i % 128) sits in shared memory (row pitch <see cref="QPitch"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int QueryAt(int i)
    {
        int h = i / MaxHeadDim;
        return (h * QPitch) + (i - (h * MaxHeadDim));
    }

    /// <summary>Element k of an output row (row width <paramref name="width"/>), fp32 or fp16 into the o_proj input layout.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreOutput(AttentionArgs a, int row, int width, int k, float value)
    {
        if (a.HalfOutput != 0)
        {
            ActivationLayout.Store(a.OutputHalf, row, width, k, value, a.Layout);
        }
        else
        {
            a.Output[((long)row * width) + k] = value;
        }
    }

    /// <summary>
    /// Copies keys (or values) [0, n) of a tile, row i at half index rowStart + i * hd, into the shared tile at pitch
    /// <see cref="KvPitch"/> words; 16-byte loads when hd % 8 == 0, else one half2 word per load. Rows past n are zero.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Stage(ArrayView<ushort> src, long rowStart, int n, int hd, ArrayView<uint> kv, int tid)
    {
        var words = src.Cast<uint>();
        long wordStart = rowStart / 2;
        int rowWords = hd / 2;
        if ((hd & 7) == 0)
        {
            int perRow = hd / 8;
            for (int i = tid; i < Tile * perRow; i += BlockThreads)
            {
                int key = i / perRow;
                int c = i - (key * perRow);
                var v = default(Words4);
                if (key < n)
                {
                    v = DeviceMath.Load4(words, wordStart + ((long)key * rowWords) + (c * 4));
                }

                int at = (key * KvPitch) + (c * 4);
                kv[at] = v.X;
                kv[at + 1] = v.Y;
                kv[at + 2] = v.Z;
                kv[at + 3] = v.W;
            }
        }
        else
        {
            for (int i = tid; i < Tile * rowWords; i += BlockThreads)
            {
                int key = i / rowWords;
                int c = i - (key * rowWords);
                kv[(key * KvPitch) + c] = key < n ? words[wordStart + ((long)key * rowWords) + c] : 0u;
            }
        }
    }

    /// <summary>
    /// Splits that get keys for a row attending <paramref name="len"/> keys: at most one per 128-key tile, so a short
    /// context does not pay for a long one's splits (the graph is captured once with the context's split count; the
    /// length is read on the device). Blocks of the splits past these return at once.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int UsedSplits(int len, int splits)
    {
        int tiles = (len + Tile - 1) / Tile;
        return tiles < splits ? tiles : splits;
    }

    /// <summary>
    /// Merges the splits: out = sum_s O_s exp(m_s - m) / sum_s l_s exp(m_s - m), over the splits row start[0] + row
    /// used (<see cref="UsedSplits"/>); a row with one used split was written by <see cref="Partial"/> and is skipped.
    /// Launch geometry: grid (heads, rows), group 128 threads (one per head dimension). Writes fp32
    /// [rows, heads * headDim] when halfOutput is 0, else fp16 into the o_proj input layout.
    /// </summary>
    public static void Combine(ArrayView<float> partialO, ArrayView<float> partialMl, ArrayView<int> start, int splits, int heads, int headDim, int halfOutput, ArrayView<float> output, ArrayView<ushort> outputHalf, InputLayoutArgs layout)
    {
        int h = Grid.IdxX;
        int row = Grid.IdxY;
        int d = Group.IdxX;
        int used = UsedSplits(start[0] + row + 1, splits);
        if (used == 1)
        {
            return;
        }

        float m = float.NegativeInfinity;
        for (int s = 0; s < used; s++)
        {
            long at = ((((long)row * splits) + s) * heads) + h;
            float ms = partialMl[(at * 2) + 0];
            m = ms > m ? ms : m;
        }

        float total = 0f;
        float acc = 0f;
        for (int s = 0; s < used; s++)
        {
            long at = ((((long)row * splits) + s) * heads) + h;
            float ms = partialMl[(at * 2) + 0];
            if (ms != float.NegativeInfinity)
            {
                float w = MathF.Exp(ms - m);
                total += partialMl[(at * 2) + 1] * w;
                if (d < headDim)
                {
                    acc += partialO[(at * headDim) + d] * w;
                }
            }
        }

        if (d < headDim)
        {
            float v = acc / total;
            int width = heads * headDim;
            int k = (h * headDim) + d;
            if (halfOutput != 0)
            {
                ActivationLayout.Store(outputHalf, row, width, k, v, layout);
            }
            else
            {
                output[((long)row * width) + k] = v;
            }
        }
    }
}
