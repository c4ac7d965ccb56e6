// Causal grouped-query attention of a few query rows (decode, speculative verification) over the fp16 KV cache,
// flash-decoding style: the keys of a row are split across blocks, so a long context keeps every multiprocessor
// streaming K and V, and a combine kernel merges the splits' partial results. A row whose keys one split holds (a
// short context) is finished by that block, and the combine skips it.
//
// Why the block is laid out as it is: one block serves the up-to-8 query heads that share a KV head, so each key and
// value row is read once for all of them, and its work must not be a chain of serial steps. The kernel this replaced
// staged K and V tiles in shared memory, let each thread run whole 64-step dot products out of shared memory (three
// dependent shared loads a step), one warp per head for the softmax and a serial key loop for P.V: 17-19 us a call at
// a few tokens of context, and ~20 us a layer more per 2,048 tokens. Here lanes own head dimensions and warps take keys
// in turn: every K and V row is one coalesced 8-byte load per lane straight from global memory, a warp has the loads
// of its 8 keys and values (and then of the next tile's) in flight before it needs them, a key costs 32 FMAs per lane
// for the scores and 32 for P.V, four keys' scores for 8 heads are summed over the lanes by one 31-shuffle
// reduce-scatter, and only the scores (one word per key and head) and the warps' output accumulators pass through
// shared memory. The grid is one wave of blocks that step through (split, row, head block) items, split-major, so the
// splits a short context leaves empty cost no block launches (a 16-row verification of the 34B has 16 x 33 x 8 items, of
// which a context of up to 64 tokens uses 16 x 8; as blocks of their own, all 4,224 would be 16 waves of two blocks per
// multiprocessor). Every sum has a fixed order that depends on the row's position and the launch's split count only, so
// a row gets the same bits alone and in a batch; there are no atomics.
using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;

namespace CodeLlamaLsp.Inference.Engine.Cuda;

/// <summary>Arguments of <see cref="AttentionKernels.Partial"/>.</summary>
internal struct AttentionArgs
{
    /// <summary>[rows, QStride] fp32 rotated queries starting at column QOffset.</summary>
    public ArrayView<float> Q;

    /// <summary>One layer's keys [kvHeads, Capacity, HeadDim] fp16 (read as 8-byte words when HeadDim % 4 == 0).</summary>
    public ArrayView<ushort> K;

    /// <summary>One layer's values, same layout.</summary>
    public ArrayView<ushort> V;

    /// <summary>[rows, Splits, heads, HeadDim] unnormalised outputs of each split.</summary>
    public ArrayView<float> PartialO;

    /// <summary>[rows, Splits, heads, 2]: max score and sum of exponentials of each split.</summary>
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
    public int Rows;
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
/// Launch geometry of <see cref="Partial"/>: 256 threads (8 warps) a block; the work is one item per (split, row, head
/// block) for Splits splits, the launch's rows and kvHeads * ceil(G / 8) head blocks (G = heads / kvHeads: a block serves
/// up to 8 query heads that share one KV head, so each key and value row is read once for all of them), and the grid is
/// as many blocks as the device holds at once (<see cref="BlocksPerMultiprocessor"/> per multiprocessor) or fewer, block
/// b taking items b, b + grid, ... in split-major order. Row t (position p = start + t) attends keys 0..p in tiles of
/// <see cref="TileKeys"/> (64) keys; split s takes the whole tiles [s * n, (s + 1) * n), n = <see cref="SplitTiles"/>,
/// cut at p + 1: <see cref="UsedSplits"/> splits get keys, and the items of the others are stepped over (the launch is
/// fixed when a CUDA graph is captured; the position is read on the device). Which block takes an item changes nothing in
/// how it is computed. Lane l owns head dimensions 4l .. 4l + 3 (lanes past headDim / 4 hold zeros); warp w takes the
/// quads of keys 4w .. 4w + 3 and 32 + 4w .. 32 + 4w + 3 of a tile. Per tile:
/// <list type="number">
/// <item>Scores: each lane multiplies its 4 dimensions of a quad's keys with the block's 8 query heads, held in registers
/// (from shared memory, head j ^ ((l / 4) % 8) in slot j); a butterfly then halves what each lane holds at every step
/// (xor 16, 8 and 4 halve the heads: the partner holds the same head in the slot it passes on, so no selects; xor 2 and 1
/// halve the keys), and lane l ends with the score of key l % 4 for head (l / 4) % 8, which it writes to shared memory
/// ([key][head]); the lanes of a head keep its max. The next tile's K and V rows are loaded right after.</item>
/// <item>Softmax, after a barrier: thread t takes head t % 8's tile max from the 8 warps' maxima, rescales its share of
/// that head's running sum and turns two of the tile's (key, head) scores into probabilities.</item>
/// <item>P.V, after a barrier: each warp adds p * v for its keys to 8 heads x 4 dimensions of accumulators, which rest
/// in the warp's slot of the reduction buffer between tiles (rescaled when they come back), so they hold no registers
/// while scores are computed.</item>
/// </list>
/// Scores, maxima and rescale factors are double-buffered by tile parity, so two barriers a tile suffice. At the end the
/// warps' accumulators and sums are added in warp order 0..7. Supports even headDim &lt;= 128. When one split takes all of
/// a row's keys (<see cref="UsedSplits"/> is 1) that item writes the row's output (O / l) in place of a partial, and
/// Combine skips the row; the choice depends on the row's position only, so a row gets the same bits alone and batched.
/// </summary>
internal static class AttentionKernels
{
    public const int BlockThreads = 256;
    public const int HeadsPerBlock = 8;
    public const int MaxHeadDim = 128;

    /// <summary>Keys a warp takes per tile (two quads): the loads of their K and V rows are all in flight together.</summary>
    private const int KeysPerWarp = 8;

    /// <summary>Keys per tile: 8 warps x <see cref="KeysPerWarp"/>; a split is a whole number of tiles.</summary>
    public const int TileKeys = Warps * KeysPerWarp;

    /// <summary>Most splits a launch may use: <see cref="Combine"/> gives each split one of its threads.</summary>
    public const int MaxSplits = CombineThreads;

    /// <summary>Threads of a <see cref="Combine"/> block: one per head dimension and one per split.</summary>
    public const int CombineThreads = 128;

    /// <summary>
    /// Blocks of <see cref="Partial"/> one multiprocessor holds at once: the kernel is compiled for two of 256 threads
    /// (<see cref="PartialSpecialization"/>: at most 128 registers a thread), and <see cref="CudaAttention.DecodeSplits"/>
    /// sizes the grid to fill the device once.
    /// </summary>
    public const int BlocksPerMultiprocessor = 2;

    private const int Warps = BlockThreads / 32;

    /// <summary>
    /// How <see cref="Partial"/> is compiled (<c>.maxntid 256</c>, <c>.minnctapersm 2</c>): ptxas then keeps it within 128
    /// registers, so two blocks fit a multiprocessor whatever the driver's compiler would pick on its own (ptxas 11.8
    /// takes 130 unbounded, which would leave one).
    /// </summary>
    public static KernelSpecialization PartialSpecialization => new(BlockThreads, BlocksPerMultiprocessor);

    /// <summary>Floats of one buffer of scores: [key][head] for a tile.</summary>
    private const int ScoreFloats = TileKeys * HeadsPerBlock;

    public static void Partial(AttentionArgs a)
    {
        Scratch shared;
        shared.Queries = SharedMemory.Allocate<Floats4>(HeadsPerBlock * MaxHeadDim / 4);
        shared.Scores = SharedMemory.Allocate<Floats4>(2 * ScoreFloats / 4);
        shared.WarpMax = SharedMemory.Allocate<Floats4>(2 * HeadsPerBlock * Warps / 4);
        shared.Alphas = SharedMemory.Allocate<Floats4>(2 * HeadsPerBlock / 4);
        shared.Outputs = SharedMemory.Allocate<Floats4>(Warps * HeadsPerBlock * MaxHeadDim / 4);
        shared.Sums = SharedMemory.Allocate<Floats4>(Warps * HeadsPerBlock / 4);
        shared.Maxima = SharedMemory.Allocate<Floats4>(HeadsPerBlock / 4);

        // Work items (split, row, block of heads), split slowest: the items that have keys come first, so at a short
        // context they fall on different blocks, and a block steps over the others without a launch of its own.
        int start = a.Start[0];
        int g = a.Heads / a.KvHeads;
        int headBlocks = a.KvHeads * ((g + HeadsPerBlock - 1) / HeadsPerBlock);
        int items = a.Splits * a.Rows * headBlocks;
        for (int item = Grid.IdxX; item < items; item += Grid.DimX)
        {
            int x = item % headBlocks;
            int rest = item / headBlocks;
            int row = rest % a.Rows;
            int split = rest / a.Rows;
            int len = start + row + 1;
            if (split < UsedSplits(len, a.Splits))
            {
                // Items of splits past the used ones have no keys, and Combine reads only the used splits' partials.
                Attend(a, shared, x, row, split, len);
            }
        }
    }

    /// <summary>
    /// One work item of <see cref="Partial"/>: keys of split <paramref name="split"/> of row <paramref name="row"/> (which
    /// attends <paramref name="len"/> keys) for the up-to-8 query heads of head block <paramref name="x"/>. The block's
    /// shared memory passes from item to item: the queries are written after the previous item's last barrier (everyone
    /// is done scoring), everything else after this item's first (everyone is done with the previous outputs).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Attend(AttentionArgs a, Scratch shared, int x, int row, int split, int len)
    {
        int g = a.Heads / a.KvHeads;
        int headGroups = (g + HeadsPerBlock - 1) / HeadsPerBlock;
        int kvh = x / headGroups;
        int hg = x - (kvh * headGroups);
        int qh0 = (kvh * g) + (hg * HeadsPerBlock);
        int nh = g - (hg * HeadsPerBlock);
        nh = nh < HeadsPerBlock ? nh : HeadsPerBlock;
        int hd = a.HeadDim;
        int tid = Group.IdxX;
        int warp = tid >> 5;
        int lane = tid & 31;

        int perSplit = SplitTiles(len, a.Splits);
        int used = UsedSplits(len, a.Splits);
        int begin = split * perSplit * TileKeys;
        int end = begin + (perSplit * TileKeys);
        end = end < len ? end : len;
        int tiles = (end - begin + TileKeys - 1) / TileKeys;
        long kvBase = (long)kvh * a.Capacity * hd;

        // The block's queries and the first tile's rows, all in flight together.
        long qBase = ((long)row * a.QStride) + a.QOffset;
        float q0 = LoadQuery(a, qBase, qh0, nh, hd, tid);
        float q1 = LoadQuery(a, qBase, qh0, nh, hd, tid + BlockThreads);
        float q2 = LoadQuery(a, qBase, qh0, nh, hd, tid + (2 * BlockThreads));
        float q3 = LoadQuery(a, qBase, qh0, nh, hd, tid + (3 * BlockThreads));
        var keys = LoadTile(a.K, kvBase, begin, end, warp, lane, hd);
        var values = LoadTile(a.V, kvBase, begin, end, warp, lane, hd);

        var qs = shared.Queries;
        var sc = shared.Scores;
        var wmax = shared.WarpMax;
        var alphas = shared.Alphas;
        var red = shared.Outputs;
        var sums = shared.Sums;
        var maxima = shared.Maxima;
        var qsf = qs.Cast<float>();
        var scf = sc.Cast<float>();
        var wmaxf = wmax.Cast<float>();
        var alphaf = alphas.Cast<float>();
        var sumsf = sums.Cast<float>();
        var maximaf = maxima.Cast<float>();

        // Element i of qs is query value i (head i / 128, dimension i % 128), which is thread i % 256's i / 256-th load.
        qsf[tid] = q0;
        qsf[tid + BlockThreads] = q1;
        qsf[tid + (2 * BlockThreads)] = q2;
        qsf[tid + (3 * BlockThreads)] = q3;

        // Lane group l / 4 ends the score butterfly holding head hsel; thread t keeps the softmax state of head t % 8.
        // The barrier also ends the block's previous item: every thread is done with its outputs and sums.
        int hsel = (lane >> 2) & 7;
        int myHead = tid & 7;
        float runMax = float.NegativeInfinity;
        float runSum = 0f;
        Group.Barrier();

        for (int t = 0; t < tiles; t++)
        {
            int tileStart = begin + (t * TileKeys);
            int n = end - tileStart;
            n = n < TileKeys ? n : TileKeys;
            int buf = t & 1;
            int scAt = buf * ScoreFloats;

            // Scores of the warp's two quads of keys (the guards are the same for the whole warp, so every lane takes part
            // in the shuffles); each lane gets one (key, head) score and keeps the max of its head.
            var q = LoadQueries(qs, lane, hsel);
            float m = float.NegativeInfinity;
            int key0 = (4 * warp) + (lane & 3);
            int key1 = key0 + (TileKeys / 2);
            if (4 * warp < n)
            {
                float s = ScoreQuad(q, keys.R0, keys.R1, keys.R2, keys.R3, lane);
                if (key0 < n)
                {
                    scf[scAt + (key0 * HeadsPerBlock) + hsel] = s;
                    m = s;
                }
            }

            if ((4 * warp) + (TileKeys / 2) < n)
            {
                float s = ScoreQuad(q, keys.R4, keys.R5, keys.R6, keys.R7, lane);
                if (key1 < n)
                {
                    scf[scAt + (key1 * HeadsPerBlock) + hsel] = s;
                    m = s > m ? s : m;
                }
            }

            // The warp's max of head hsel over lanes 4 hsel .. 4 hsel + 3 (a max is the same in any order).
            float other = Warp.ShuffleXor(m, 1);
            m = other > m ? other : m;
            other = Warp.ShuffleXor(m, 2);
            m = other > m ? other : m;
            if ((lane & 3) == 0)
            {
                wmaxf[(buf * HeadsPerBlock * Warps) + (hsel * Warps) + warp] = m;
            }

            // This tile's keys are used: the next tile's rows load while the softmax and P.V below run.
            var nextKeys = default(Rows8);
            var nextValues = default(Rows8);
            if (t + 1 < tiles)
            {
                nextKeys = LoadTile(a.K, kvBase, tileStart + TileKeys, end, warp, lane, hd);
                nextValues = LoadTile(a.V, kvBase, tileStart + TileKeys, end, warp, lane, hd);
            }

            Group.Barrier();

            // Softmax state of head t % 8 (threads with the same head compute the same values): the tile max from the 8
            // warps' maxima (warp 0 always has key 0, so it is finite), the factor for what came before, and this thread's
            // two of the tile's 8 x 64 (key, head) entries turned into probabilities.
            int wAt = (buf * HeadsPerBlock * Warps / 4) + (myHead * Warps / 4);
            float tileMax = Max8(wmax[wAt], wmax[wAt + 1]);
            float mNew = runMax > tileMax ? runMax : tileMax;
            float alpha = runMax == float.NegativeInfinity ? 0f : MathF.Exp(runMax - mNew);
            runMax = mNew;
            if (tid < HeadsPerBlock)
            {
                alphaf[(buf * HeadsPerBlock) + tid] = alpha;
            }

            float sum = runSum * alpha;
            if ((tid >> 3) < n)
            {
                float p = MathF.Exp(scf[scAt + tid] - mNew);
                scf[scAt + tid] = p;
                sum += p;
            }

            if ((tid >> 3) + (BlockThreads / HeadsPerBlock) < n)
            {
                float p = MathF.Exp(scf[scAt + tid + BlockThreads] - mNew);
                scf[scAt + tid + BlockThreads] = p;
                sum += p;
            }

            runSum = sum;
            Group.Barrier();

            // P.V for the warp's keys. The accumulators live in the warp's slot of the reduction buffer between tiles, so
            // they hold no registers while the next tile is scored; what the earlier tiles added is rescaled first.
            var acc = default(Heads8);
            if (t > 0)
            {
                acc = Rescale(LoadAccumulators(red, warp, lane), alphas[buf * 2], alphas[(buf * 2) + 1]);
            }

            int pAt = buf * ScoreFloats / 4;
            int v0 = 4 * warp;
            int v1 = v0 + (TileKeys / 2);
            acc = AccumulateKey(acc, values.R0, v0, n, sc, pAt);
            acc = AccumulateKey(acc, values.R1, v0 + 1, n, sc, pAt);
            acc = AccumulateKey(acc, values.R2, v0 + 2, n, sc, pAt);
            acc = AccumulateKey(acc, values.R3, v0 + 3, n, sc, pAt);
            acc = AccumulateKey(acc, values.R4, v1, n, sc, pAt);
            acc = AccumulateKey(acc, values.R5, v1 + 1, n, sc, pAt);
            acc = AccumulateKey(acc, values.R6, v1 + 2, n, sc, pAt);
            acc = AccumulateKey(acc, values.R7, v1 + 3, n, sc, pAt);
            StoreAccumulators(red, warp, lane, acc);
            keys = nextKeys;
            values = nextValues;
        }

        // Sums of exponentials: the four lanes of a warp that hold head lane % 8, then the warps in order below.
        float l = runSum;
        l += Warp.ShuffleXor(l, 8);
        l += Warp.ShuffleXor(l, 16);
        if (lane < HeadsPerBlock)
        {
            sumsf[(warp * HeadsPerBlock) + lane] = l;
        }

        if (tid < HeadsPerBlock)
        {
            maximaf[tid] = runMax;
        }

        Group.Barrier();

        // Warp h writes head h: lane l dimensions 4l .. 4l + 3, the 8 warps' outputs and sums added in warp order.
        int h = warp;
        int d = 4 * lane;
        if (h >= nh || d >= hd)
        {
            return;
        }

        var o = red[(h * 32) + lane];
        float total = sumsf[h];
        for (int w = 1; w < Warps; w++)
        {
            o = Add(o, red[(((w * HeadsPerBlock) + h) * 32) + lane]);
            total += sumsf[(w * HeadsPerBlock) + h];
        }

        if (used == 1)
        {
            // The row's only split: its result is final (Combine's out = O / l for one split), so no partial is written.
            int width = a.Heads * hd;
            int k = ((qh0 + h) * hd) + d;
            StoreOutput(a, row, width, k, o.A / total);
            StoreOutput(a, row, width, k + 1, o.B / total);
            if (d + 2 < hd)
            {
                StoreOutput(a, row, width, k + 2, o.C / total);
                StoreOutput(a, row, width, k + 3, o.D / total);
            }

            return;
        }

        long slot = ((((long)row * a.Splits) + split) * a.Heads) + qh0 + h;
        long oAt = (slot * hd) + d;
        a.PartialO[oAt] = o.A;
        a.PartialO[oAt + 1] = o.B;
        if (d + 2 < hd)
        {
            a.PartialO[oAt + 2] = o.C;
            a.PartialO[oAt + 3] = o.D;
        }

        if (lane == 0)
        {
            a.PartialMl[slot * 2] = maximaf[h];
            a.PartialMl[(slot * 2) + 1] = total;
        }
    }

    /// <summary>
    /// Tiles per split for a row attending <paramref name="len"/> keys: the row's tiles spread evenly over at most
    /// <paramref name="splits"/> splits, so a short context takes one split per 64-key tile and a long one every split.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int SplitTiles(int len, int splits)
    {
        int tiles = (len + TileKeys - 1) / TileKeys;
        return (tiles + splits - 1) / splits;
    }

    /// <summary>
    /// Splits that get keys for a row attending <paramref name="len"/> keys (each a non-empty run of
    /// <see cref="SplitTiles"/> tiles, the last one cut at the row's length); blocks of the splits past these return at
    /// once. Depends on the row's length and the launch's split count only.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int UsedSplits(int len, int splits)
    {
        int tiles = (len + TileKeys - 1) / TileKeys;
        int per = (tiles + splits - 1) / splits;
        return (tiles + per - 1) / per;
    }

    /// <summary>
    /// Merges the splits: out = sum_s O_s exp(m_s - m) / sum_s l_s exp(m_s - m) with m the largest m_s, over the splits
    /// row start[0] + row used (<see cref="UsedSplits"/>), both sums in split order; a row with one used split was written
    /// by <see cref="Partial"/> and is skipped. Launch geometry: grid (heads, rows), group <see cref="CombineThreads"/>
    /// threads: thread s reads split s's (m, l) (splits &lt;= <see cref="MaxSplits"/>), so the block has every weight after
    /// one round trip, then thread d adds dimension d over the splits, eight splits' loads in flight at a time. Writes fp32
    /// [rows, heads * headDim] when halfOutput is 0, else fp16 into the o_proj input layout.
    /// </summary>
    public static void Combine(ArrayView<float> partialO, ArrayView<float> partialMl, ArrayView<int> start, int splits, int heads, int headDim, int halfOutput, ArrayView<float> output, ArrayView<ushort> outputHalf, InputLayoutArgs layout)
    {
        int h = Grid.IdxX;
        int row = Grid.IdxY;
        int t = Group.IdxX;
        int used = UsedSplits(start[0] + row + 1, splits);
        if (used == 1)
        {
            return;
        }

        var weights = SharedMemory.Allocate<float>(MaxSplits); // exp(m_s - m)
        var shares = SharedMemory.Allocate<float>(MaxSplits); // l_s exp(m_s - m)
        var warpMax = SharedMemory.Allocate<float>(CombineThreads / 32);

        // Split s's slot is first + s * heads.
        long first = ((long)row * splits * heads) + h;
        float ms = float.NegativeInfinity;
        float ls = 0f;
        if (t < used)
        {
            long at = (first + ((long)t * heads)) * 2;
            ms = partialMl[at];
            ls = partialMl[at + 1];
        }

        // The largest m_s (a max is the same in any order).
        float m = ms;
        for (int offset = 16; offset > 0; offset /= 2)
        {
            float other = Warp.ShuffleXor(m, offset);
            m = other > m ? other : m;
        }

        if ((t & 31) == 0)
        {
            warpMax[t >> 5] = m;
        }

        Group.Barrier();
        m = warpMax[0];
        for (int w = 1; w < CombineThreads / 32; w++)
        {
            float other = warpMax[w];
            m = other > m ? other : m;
        }

        if (t < used)
        {
            float w = MathF.Exp(ms - m);
            weights[t] = w;
            shares[t] = ls * w;
        }

        Group.Barrier();
        if (t >= headDim)
        {
            return;
        }

        float total = 0f;
        float acc = 0f;
        long oFirst = (first * headDim) + t;
        long oStep = (long)heads * headDim;
        for (int s0 = 0; s0 < used; s0 += 8)
        {
            // Eight splits' values in flight, then added in split order.
            float o0 = LoadPartial(partialO, oFirst, oStep, s0, used);
            float o1 = LoadPartial(partialO, oFirst, oStep, s0 + 1, used);
            float o2 = LoadPartial(partialO, oFirst, oStep, s0 + 2, used);
            float o3 = LoadPartial(partialO, oFirst, oStep, s0 + 3, used);
            float o4 = LoadPartial(partialO, oFirst, oStep, s0 + 4, used);
            float o5 = LoadPartial(partialO, oFirst, oStep, s0 + 5, used);
            float o6 = LoadPartial(partialO, oFirst, oStep, s0 + 6, used);
            float o7 = LoadPartial(partialO, oFirst, oStep, s0 + 7, used);
            int n = used - s0;
            n = n < 8 ? n : 8;
            acc += o0 * weights[s0];
            total += shares[s0];
            if (n > 1)
            {
                acc += o1 * weights[s0 + 1];
                total += shares[s0 + 1];
            }

            if (n > 2)
            {
                acc += o2 * weights[s0 + 2];
                total += shares[s0 + 2];
            }

            if (n > 3)
            {
                acc += o3 * weights[s0 + 3];
                total += shares[s0 + 3];
            }

            if (n > 4)
            {
                acc += o4 * weights[s0 + 4];
                total += shares[s0 + 4];
            }

            if (n > 5)
            {
                acc += o5 * weights[s0 + 5];
                total += shares[s0 + 5];
            }

            if (n > 6)
            {
                acc += o6 * weights[s0 + 6];
                total += shares[s0 + 6];
            }

            if (n > 7)
            {
                acc += o7 * weights[s0 + 7];
                total += shares[s0 + 7];
            }
        }

        float v = acc / total;
        int width = heads * headDim;
        int k = (h * headDim) + t;
        if (halfOutput != 0)
        {
            ActivationLayout.Store(outputHalf, row, width, k, v, layout);
        }
        else
        {
            output[((long)row * width) + k] = v;
        }
    }

    /// <summary>Partial output of split <paramref name="s"/> (0 past the used splits).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float LoadPartial(ArrayView<float> partialO, long first, long step, int s, int used) =>
        s < used ? partialO[first + (s * step)] : 0f;

    /// <summary>Query value i of the block (head i / 128, dimension i % 128) times Scale, or 0 past nh heads or hd dimensions.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float LoadQuery(AttentionArgs a, long qBase, int qh0, int nh, int hd, int i)
    {
        int h = i / MaxHeadDim;
        int d = i - (h * MaxHeadDim);
        return h < nh && d < hd ? a.Q[qBase + ((long)(qh0 + h) * hd) + d] * a.Scale : 0f;
    }

    /// <summary>
    /// The lane's query dimensions 4l .. 4l + 3 of the 8 heads, head j ^ hsel in slot j: the order in which the score
    /// butterfly's xor-16, 8 and 4 steps always keep the low slots and pass on the high ones.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Heads8 LoadQueries(ArrayView<Floats4> qs, int lane, int hsel)
    {
        Heads8 q;
        q.H0 = qs[(hsel * 32) + lane];
        q.H1 = qs[((1 ^ hsel) * 32) + lane];
        q.H2 = qs[((2 ^ hsel) * 32) + lane];
        q.H3 = qs[((3 ^ hsel) * 32) + lane];
        q.H4 = qs[((4 ^ hsel) * 32) + lane];
        q.H5 = qs[((5 ^ hsel) * 32) + lane];
        q.H6 = qs[((6 ^ hsel) * 32) + lane];
        q.H7 = qs[((7 ^ hsel) * 32) + lane];
        return q;
    }

    /// <summary>
    /// The lane's 8 bytes (dimensions 4l .. 4l + 3) of the warp's 8 rows of a tile: keys 4w .. 4w + 3 and 32 + 4w .. 32 + 4w + 3
    /// from tileStart (a short context spreads over the warps; a quad's scores land in 32 consecutive words). Zeros past
    /// hd; rows past <paramref name="end"/> are never used.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Rows8 LoadTile(ArrayView<ushort> src, long kvBase, int tileStart, int end, int warp, int lane, int hd)
    {
        Rows8 r;
        int key = tileStart + (4 * warp);
        int high = key + (TileKeys / 2);
        int d = 4 * lane;
        if ((hd & 3) == 0)
        {
            // Rows start 8-byte aligned: one load per row, all eight issued without a branch (a row past the end reads
            // the last row instead, a lane past hd its row's first 8 bytes, and keeps zeros).
            var words = src.Cast<Words2>();
            bool inside = d < hd;
            long at = (kvBase + (inside ? d : 0)) >> 2;
            int last = end - 1;
            int rowWords = hd >> 2;
            r.R0 = Row(words, at, key, last, rowWords, inside);
            r.R1 = Row(words, at, key + 1, last, rowWords, inside);
            r.R2 = Row(words, at, key + 2, last, rowWords, inside);
            r.R3 = Row(words, at, key + 3, last, rowWords, inside);
            r.R4 = Row(words, at, high, last, rowWords, inside);
            r.R5 = Row(words, at, high + 1, last, rowWords, inside);
            r.R6 = Row(words, at, high + 2, last, rowWords, inside);
            r.R7 = Row(words, at, high + 3, last, rowWords, inside);
        }
        else
        {
            r.R0 = RowByWords(src, kvBase, key, end, d, hd);
            r.R1 = RowByWords(src, kvBase, key + 1, end, d, hd);
            r.R2 = RowByWords(src, kvBase, key + 2, end, d, hd);
            r.R3 = RowByWords(src, kvBase, key + 3, end, d, hd);
            r.R4 = RowByWords(src, kvBase, high, end, d, hd);
            r.R5 = RowByWords(src, kvBase, high + 1, end, d, hd);
            r.R6 = RowByWords(src, kvBase, high + 2, end, d, hd);
            r.R7 = RowByWords(src, kvBase, high + 3, end, d, hd);
        }

        return r;
    }

    /// <summary>Row <paramref name="key"/> (at most <paramref name="last"/>) of 8-byte words from word <paramref name="at"/>; zeros unless <paramref name="inside"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Words2 Row(ArrayView<Words2> words, long at, int key, int last, int rowWords, bool inside)
    {
        int k = key < last ? key : last;
        var w = words[at + ((long)k * rowWords)];
        w.X = inside ? w.X : 0u;
        w.Y = inside ? w.Y : 0u;
        return w;
    }

    /// <summary>Dimensions d .. d + 3 of row <paramref name="key"/> word by word (hd % 4 == 2: rows are only 4-byte aligned); zeros past the end or hd.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Words2 RowByWords(ArrayView<ushort> src, long kvBase, int key, int end, int d, int hd)
    {
        var r = default(Words2);
        if (key < end && d < hd)
        {
            var words = src.Cast<uint>();
            long at = (kvBase + ((long)key * hd) + d) >> 1;
            r.X = words[at];
            if (d + 2 < hd)
            {
                r.Y = words[at + 1];
            }
        }

        return r;
    }

    /// <summary>
    /// q . k of four keys for the 8 heads: each lane's 4-dimension products (32 per key), then a butterfly that halves
    /// what a lane holds at every step: xor 16, 8 and 4 halve the heads (slot j + width / 2 goes to the partner, which
    /// holds the same head there: see <see cref="LoadQueries"/>), xor 2 and 1 halve the keys. Lane l returns the full
    /// score of key l % 4 for head (l / 4) % 8. 31 shuffles of 32 bits on the GPU, each step one shuffle of a struct on
    /// the CPU accelerator (where every shuffle is a rendezvous of the warp's threads).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float ScoreQuad(Heads8 q, Words2 k0, Words2 k1, Words2 k2, Words2 k3, int lane)
    {
        var s0 = Products(q, k0);
        var s1 = Products(q, k1);
        var s2 = Products(q, k2);
        var s3 = Products(q, k3);

        Floats16 high;
        high.K0 = s0.High;
        high.K1 = s1.High;
        high.K2 = s2.High;
        high.K3 = s3.High;
        var r16 = Warp.ShuffleXor(high, 16);
        var a0 = Add(s0.Low, r16.K0);
        var a1 = Add(s1.Low, r16.K1);
        var a2 = Add(s2.Low, r16.K2);
        var a3 = Add(s3.Low, r16.K3);

        Floats8 upper;
        upper.Low = Pack(a0.C, a0.D, a1.C, a1.D);
        upper.High = Pack(a2.C, a2.D, a3.C, a3.D);
        var r8 = Warp.ShuffleXor(upper, 8);
        float b00 = a0.A + r8.Low.A;
        float b01 = a0.B + r8.Low.B;
        float b10 = a1.A + r8.Low.C;
        float b11 = a1.B + r8.Low.D;
        float b20 = a2.A + r8.High.A;
        float b21 = a2.B + r8.High.B;
        float b30 = a3.A + r8.High.C;
        float b31 = a3.B + r8.High.D;

        var r4 = Warp.ShuffleXor(Pack(b01, b11, b21, b31), 4);
        float c0 = b00 + r4.A;
        float c1 = b10 + r4.B;
        float c2 = b20 + r4.C;
        float c3 = b30 + r4.D;

        // Keys: lanes with bit 1 set keep keys 2-3 and pass on 0-1, the others the reverse; then bit 0 picks one key.
        bool two = (lane & 2) != 0;
        Floats2 pass;
        pass.A = two ? c0 : c2;
        pass.B = two ? c1 : c3;
        var r2 = Warp.ShuffleXor(pass, 2);
        float d0 = (two ? c2 : c0) + r2.A;
        float d1 = (two ? c3 : c1) + r2.B;
        bool one = (lane & 1) != 0;
        float r1 = Warp.ShuffleXor(one ? d0 : d1, 1);
        return (one ? d1 : d0) + r1;
    }

    /// <summary>The lane's products of its 4 dimensions of one key with the 8 query slots.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Floats8 Products(Heads8 q, Words2 k)
    {
        float k0 = DeviceMath.Low(k.X);
        float k1 = DeviceMath.High(k.X);
        float k2 = DeviceMath.Low(k.Y);
        float k3 = DeviceMath.High(k.Y);
        Floats8 s;
        s.Low = Pack(Dot(q.H0, k0, k1, k2, k3), Dot(q.H1, k0, k1, k2, k3), Dot(q.H2, k0, k1, k2, k3), Dot(q.H3, k0, k1, k2, k3));
        s.High = Pack(Dot(q.H4, k0, k1, k2, k3), Dot(q.H5, k0, k1, k2, k3), Dot(q.H6, k0, k1, k2, k3), Dot(q.H7, k0, k1, k2, k3));
        return s;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Floats4 Pack(float a, float b, float c, float d)
    {
        Floats4 x;
        x.A = a;
        x.B = b;
        x.C = c;
        x.D = d;
        return x;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Dot(Floats4 q, float k0, float k1, float k2, float k3) => (q.A * k0) + (q.B * k1) + (q.C * k2) + (q.D * k3);

    /// <summary>Adds p * v of key <paramref name="key"/> (if it is one of the tile's n keys) for the 8 heads, p read as two 16-byte shared loads.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Heads8 AccumulateKey(Heads8 acc, Words2 v, int key, int n, ArrayView<Floats4> sc, int pAt)
    {
        if (key < n)
        {
            var p0 = sc[pAt + (2 * key)];
            var p1 = sc[pAt + (2 * key) + 1];
            float v0 = DeviceMath.Low(v.X);
            float v1 = DeviceMath.High(v.X);
            float v2 = DeviceMath.Low(v.Y);
            float v3 = DeviceMath.High(v.Y);
            acc.H0 = Fma(acc.H0, p0.A, v0, v1, v2, v3);
            acc.H1 = Fma(acc.H1, p0.B, v0, v1, v2, v3);
            acc.H2 = Fma(acc.H2, p0.C, v0, v1, v2, v3);
            acc.H3 = Fma(acc.H3, p0.D, v0, v1, v2, v3);
            acc.H4 = Fma(acc.H4, p1.A, v0, v1, v2, v3);
            acc.H5 = Fma(acc.H5, p1.B, v0, v1, v2, v3);
            acc.H6 = Fma(acc.H6, p1.C, v0, v1, v2, v3);
            acc.H7 = Fma(acc.H7, p1.D, v0, v1, v2, v3);
        }

        return acc;
    }

    /// <summary>The warp's accumulators in its slot of the reduction buffer ([warp][head][lane] 16-byte words).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Heads8 LoadAccumulators(ArrayView<Floats4> red, int warp, int lane)
    {
        int at = (warp * HeadsPerBlock * 32) + lane;
        Heads8 acc;
        acc.H0 = red[at];
        acc.H1 = red[at + 32];
        acc.H2 = red[at + 64];
        acc.H3 = red[at + 96];
        acc.H4 = red[at + 128];
        acc.H5 = red[at + 160];
        acc.H6 = red[at + 192];
        acc.H7 = red[at + 224];
        return acc;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreAccumulators(ArrayView<Floats4> red, int warp, int lane, Heads8 acc)
    {
        int at = (warp * HeadsPerBlock * 32) + lane;
        red[at] = acc.H0;
        red[at + 32] = acc.H1;
        red[at + 64] = acc.H2;
        red[at + 96] = acc.H3;
        red[at + 128] = acc.H4;
        red[at + 160] = acc.H5;
        red[at + 192] = acc.H6;
        red[at + 224] = acc.H7;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Floats4 Fma(Floats4 acc, float p, float v0, float v1, float v2, float v3)
    {
        acc.A += p * v0;
        acc.B += p * v1;
        acc.C += p * v2;
        acc.D += p * v3;
        return acc;
    }

    /// <summary>Multiplies each head's accumulators by its rescale factor (a0 heads 0-3, a1 heads 4-7).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Heads8 Rescale(Heads8 acc, Floats4 a0, Floats4 a1)
    {
        acc.H0 = Scale(acc.H0, a0.A);
        acc.H1 = Scale(acc.H1, a0.B);
        acc.H2 = Scale(acc.H2, a0.C);
        acc.H3 = Scale(acc.H3, a0.D);
        acc.H4 = Scale(acc.H4, a1.A);
        acc.H5 = Scale(acc.H5, a1.B);
        acc.H6 = Scale(acc.H6, a1.C);
        acc.H7 = Scale(acc.H7, a1.D);
        return acc;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Floats4 Scale(Floats4 x, float f)
    {
        x.A *= f;
        x.B *= f;
        x.C *= f;
        x.D *= f;
        return x;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Floats4 Add(Floats4 x, Floats4 y)
    {
        x.A += y.A;
        x.B += y.B;
        x.C += y.C;
        x.D += y.D;
        return x;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Max8(Floats4 x, Floats4 y)
    {
        float a = x.A > x.B ? x.A : x.B;
        float b = x.C > x.D ? x.C : x.D;
        float c = y.A > y.B ? y.A : y.B;
        float d = y.C > y.D ? y.C : y.D;
        a = a > b ? a : b;
        c = c > d ? c : d;
        return a > c ? a : c;
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

    /// <summary>Four floats per head for the 8 heads of a block: a lane's query slots or output accumulators.</summary>
    private struct Heads8
    {
        public Floats4 H0;
        public Floats4 H1;
        public Floats4 H2;
        public Floats4 H3;
        public Floats4 H4;
        public Floats4 H5;
        public Floats4 H6;
        public Floats4 H7;
    }

    /// <summary>The shared memory of a <see cref="Partial"/> block.</summary>
    private struct Scratch
    {
        /// <summary>[head][dim] queries times Scale.</summary>
        public ArrayView<Floats4> Queries;

        /// <summary>Two tiles' [key][head] scores, then probabilities.</summary>
        public ArrayView<Floats4> Scores;

        /// <summary>Two tiles' [head][warp] maxima.</summary>
        public ArrayView<Floats4> WarpMax;

        /// <summary>Two tiles' rescale factors per head.</summary>
        public ArrayView<Floats4> Alphas;

        /// <summary>[warp][head][dim] output accumulators.</summary>
        public ArrayView<Floats4> Outputs;

        /// <summary>[warp][head] sums of exponentials.</summary>
        public ArrayView<Floats4> Sums;

        /// <summary>[head] final max.</summary>
        public ArrayView<Floats4> Maxima;
    }

    /// <summary>A key's 8 products (slots 0-3, 4-7), or 8 values passed in one shuffle.</summary>
    private struct Floats8
    {
        public Floats4 Low;
        public Floats4 High;
    }

    /// <summary>Four keys' upper 4 slots, passed in one shuffle.</summary>
    private struct Floats16
    {
        public Floats4 K0;
        public Floats4 K1;
        public Floats4 K2;
        public Floats4 K3;
    }

    private struct Floats2
    {
        public float A;
        public float B;
    }

    /// <summary>A lane's 8 bytes of each of its warp's 8 key (or value) rows in a tile.</summary>
    private struct Rows8
    {
        public Words2 R0;
        public Words2 R1;
        public Words2 R2;
        public Words2 R3;
        public Words2 R4;
        public Words2 R5;
        public Words2 R6;
        public Words2 R7;
    }
}
