// Causal grouped-query attention of a few query rows (decode, speculative verification) over the fp16 KV cache,
// flash-decoding style: the keys of a row are split across blocks, so a long context keeps every multiprocessor
// streaming K and V, and the block that finishes the last split of a (row, head block) merges the splits' partial
// results itself (stream-K style: an arrival count per item, no second kernel). A row whose keys one split holds (a
// short context) is finished by that block with no partials at all.
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
// multiprocessor). At a short context the cost is latency, not work, so an item of split 0 (which every row has) issues
// its queries, its output's act-order indices and its first tile's K and V rows before the position is read back, and
// the output indices are never loaded one store at a time at the end. Every sum has a fixed order that depends on the
// row's position and the launch's split count only, so a row gets the same bits alone and in a batch; the only atomic
// is the integer arrival count, which decides who merges, never in what order.
using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

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

    /// <summary>Device addresses of <see cref="PartialO"/> and <see cref="PartialMl"/>: the merging block reads other blocks' partials from L2 through inline PTX.</summary>
    public long PartialOAddress;
    public long PartialMlAddress;

    /// <summary>
    /// [rows * HeadBlocks] arrival counts of the (row, head block) items whose row uses several splits: zero between
    /// launches (the last arrival resets its count), so the buffer is zeroed once when it is allocated.
    /// </summary>
    public ArrayView<int> Arrivals;

    /// <summary>Device address of <see cref="Arrivals"/> (the arrival is an acquire-release atomic in PTX).</summary>
    public long ArrivalsAddress;

    /// <summary>[rows, heads * HeadDim] fp16 output in the o_proj input layout (<see cref="Layout"/>).</summary>
    public ArrayView<ushort> OutputHalf;

    public InputLayoutArgs Layout;

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

    /// <summary>Query heads per KV head (Heads / KvHeads), set by the launch so the kernel divides less before its first loads.</summary>
    public int Group;

    /// <summary>Blocks of up to 8 heads per KV head: ceil(Group / 8).</summary>
    public int HeadGroups;

    /// <summary>KvHeads * HeadGroups: the head blocks of a row.</summary>
    public int HeadBlocks;
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
/// a row's keys (<see cref="UsedSplits"/> is 1) that item writes the row's output (O / l) and no partial. Otherwise it
/// writes its partial (O, m, l), and the block whose arrival completes the (row, head block) merges the used splits
/// (<see cref="MergeSplits"/>); which block that is changes nothing in the order of the sums, and the choice between the
/// two paths depends on the row's position only, so a row gets the same bits alone and batched.
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

    /// <summary>Most splits a launch may use: <see cref="MergeSplits"/> gives a head's splits to one warp, four a lane.</summary>
    public const int MaxSplits = 4 * 32;

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
        shared.Last = SharedMemory.Allocate<int>(1);
        shared.Positions = SharedMemory.Allocate<int>(4 * BlockThreads);

        // Work items (split, row, block of heads), split slowest: the items that have keys come first, so at a short
        // context they fall on different blocks, and a block steps over the others without a launch of its own. The
        // position is read by each item that needs it, where it needs it: an item of split 0 (a row always attends at
        // least itself) issues its first loads before it reads the position (read once up front, it was held in local
        // memory across the item, and that spill store waited for the load before anything else could start).
        int headBlocks = a.HeadBlocks;
        int items = a.Splits * a.Rows * headBlocks;
        for (int item = Grid.IdxX; item < items; item += Grid.DimX)
        {
            int x = item % headBlocks;
            int rest = item / headBlocks;
            int row = rest % a.Rows;
            int split = rest / a.Rows;
            if (split == 0 || split < UsedSplits(a.Start[0] + row + 1, a.Splits))
            {
                // Items of splits past the used ones have no keys, and the merge reads only the used splits' partials.
                Attend(a, shared, x, row, split);
            }
        }
    }

    /// <summary>
    /// One work item of <see cref="Partial"/>: keys of split <paramref name="split"/> of row <paramref name="row"/> (at
    /// position start[0] + row, so it attends start[0] + row + 1 keys) for the up-to-8 query heads of head block
    /// <paramref name="x"/>. The block's shared memory passes from item to item: the queries are written after the
    /// previous item's last barrier (everyone is done scoring), everything else after this item's first (everyone is
    /// done with the previous outputs and merge).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Attend(AttentionArgs a, Scratch shared, int x, int row, int split)
    {
        int g = a.Group;
        int kvh = x / a.HeadGroups;
        int hg = x - (kvh * a.HeadGroups);
        int qh0 = (kvh * g) + (hg * HeadsPerBlock);
        int nh = g - (hg * HeadsPerBlock);
        nh = nh < HeadsPerBlock ? nh : HeadsPerBlock;
        int hd = a.HeadDim;
        int tid = Group.IdxX;
        int warp = tid >> 5;
        int lane = tid & 31;
        long kvBase = (long)kvh * a.Capacity * hd;

        // First what does not depend on the position: the block's queries, and where the outputs of warp h = head h,
        // lane l = dimensions 4l .. 4l + 3 go in the o_proj layout (an act-order permutation read here, not one store
        // at a time at the end; kept in the thread's slots of shared memory, not in registers across the tiles).
        long qBase = ((long)row * a.QStride) + a.QOffset;
        float q0 = LoadQuery(a, qBase, qh0, nh, hd, tid);
        float q1 = LoadQuery(a, qBase, qh0, nh, hd, tid + BlockThreads);
        float q2 = LoadQuery(a, qBase, qh0, nh, hd, tid + (2 * BlockThreads));
        float q3 = LoadQuery(a, qBase, qh0, nh, hd, tid + (3 * BlockThreads));
        int d = 4 * lane;
        bool writes = warp < nh && d < hd;
        int k = ((qh0 + warp) * hd) + d;
        int sorted0 = writes ? ActivationLayout.SortedIndex(k, a.Layout) : 0;
        int sorted1 = writes ? ActivationLayout.SortedIndex(k + 1, a.Layout) : 0;
        int sorted2 = writes && d + 2 < hd ? ActivationLayout.SortedIndex(k + 2, a.Layout) : 0;
        int sorted3 = writes && d + 2 < hd ? ActivationLayout.SortedIndex(k + 3, a.Layout) : 0;

        // Split 0's first tile starts at key 0 whatever the position, so with 8-byte rows its K and V rows go out before
        // the position is read (and before the divisions that follow it), in program order, because the compiler does
        // not move loads across the branches above; rows past the row's keys are read, inside the cache's capacity, and
        // never used. The other splits' first rows wait for the position.
        bool early = split == 0 && (hd & 3) == 0;
        var keys = default(Rows8);
        var values = default(Rows8);
        if (early)
        {
            int last = (TileKeys < a.Capacity ? TileKeys : a.Capacity) - 1;
            keys = LoadTile(a.K, kvBase, 0, last + 1, last, warp, lane, hd);
            values = LoadTile(a.V, kvBase, 0, last + 1, last, warp, lane, hd);
        }

        int len = a.Start[0] + row + 1;
        int perSplit = SplitTiles(len, a.Splits);
        int used = UsedSplits(len, a.Splits);
        int begin = split * perSplit * TileKeys;
        int end = begin + (perSplit * TileKeys);
        end = end < len ? end : len;
        int tiles = (end - begin + TileKeys - 1) / TileKeys;
        if (!early)
        {
            keys = LoadTile(a.K, kvBase, begin, end, end - 1, warp, lane, hd);
            values = LoadTile(a.V, kvBase, begin, end, end - 1, warp, lane, hd);
        }

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
        var positions = shared.Positions;
        positions[tid] = sorted0;
        positions[tid + BlockThreads] = sorted1;
        positions[tid + (2 * BlockThreads)] = sorted2;
        positions[tid + (3 * BlockThreads)] = sorted3;

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
                nextKeys = LoadTile(a.K, kvBase, tileStart + TileKeys, end, end - 1, warp, lane, hd);
                nextValues = LoadTile(a.V, kvBase, tileStart + TileKeys, end, end - 1, warp, lane, hd);
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
        var o = red[(h * 32) + lane];
        float total = sumsf[h];
        for (int w = 1; w < Warps; w++)
        {
            o = Add(o, red[(((w * HeadsPerBlock) + h) * 32) + lane]);
            total += sumsf[(w * HeadsPerBlock) + h];
        }

        int width = a.Heads * hd;
        if (used == 1)
        {
            // The row's only split: its result is final (the merge's out = O / l for one split), so no partial is written.
            if (writes)
            {
                StoreOutput(a, row, width, positions[tid], o.A / total);
                StoreOutput(a, row, width, positions[tid + BlockThreads], o.B / total);
                if (d + 2 < hd)
                {
                    StoreOutput(a, row, width, positions[tid + (2 * BlockThreads)], o.C / total);
                    StoreOutput(a, row, width, positions[tid + (3 * BlockThreads)], o.D / total);
                }
            }

            return;
        }

        // Split s of the row's head qh0 + h is slot first + s * heads.
        long first = ((long)row * a.Splits * a.Heads) + qh0 + h;
        if (writes)
        {
            long slot = first + ((long)split * a.Heads);
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

        // The block's stores happen before thread 0's arrival (the barrier), which releases them device-wide and, for the
        // last of the item's used splits, acquires every other block's (CUTLASS's semaphore pattern, as the small-batch
        // GPTQ kernel's segments end). The last arrival resets the count for the next launch.
        Group.Barrier();
        if (tid == 0)
        {
            int counter = (row * a.HeadBlocks) + x;
            int last = Arrive(a, counter) == used - 1 ? 1 : 0;
            if (last != 0)
            {
                a.Arrivals[counter] = 0;
            }

            shared.Last[0] = last;
        }

        Group.Barrier();
        if (shared.Last[0] != 0 && h < nh)
        {
            MergeSplits(a, red.Cast<float>(), first, used, h, lane, writes, row, width, positions, tid);
        }
    }

    /// <summary>
    /// Merges the used splits of head qh0 + h of a row (warp h of the block whose arrival completed the item): out =
    /// sum_s O_s exp(m_s - m) / sum_s l_s exp(m_s - m) with m the largest m_s, both sums in split order, each term as the
    /// combine kernel this replaced computed it, so the bits are the same. Lane l takes splits l, l + 32, ... for the
    /// weights (<see cref="MaxSplits"/> at most), which go through the head's slice of <paramref name="scratch"/> (the
    /// block's output accumulators, read by now), then adds dimensions 4l .. 4l + 3 over the splits, eight splits' loads
    /// in flight at a time. Partials of other blocks are read from L2 on CUDA (L1 is not coherent across multiprocessors).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MergeSplits(AttentionArgs a, ArrayView<float> scratch, long first, int used, int h, int lane, bool writes, int row, int width, ArrayView<int> positions, int tid)
    {
        long mlStep = 2L * a.Heads;
        long mlFirst = first * 2;
        float m0 = LoadMax(a, mlFirst, mlStep, lane, used);
        float m1 = LoadMax(a, mlFirst, mlStep, lane + 32, used);
        float m2 = LoadMax(a, mlFirst, mlStep, lane + 64, used);
        float m3 = LoadMax(a, mlFirst, mlStep, lane + 96, used);
        float l0 = LoadSum(a, mlFirst, mlStep, lane, used);
        float l1 = LoadSum(a, mlFirst, mlStep, lane + 32, used);
        float l2 = LoadSum(a, mlFirst, mlStep, lane + 64, used);
        float l3 = LoadSum(a, mlFirst, mlStep, lane + 96, used);

        // The largest m_s (a max is the same in any order).
        float m = m0 > m1 ? m0 : m1;
        float m23 = m2 > m3 ? m2 : m3;
        m = m > m23 ? m : m23;
        for (int offset = 16; offset > 0; offset /= 2)
        {
            float other = Warp.ShuffleXor(m, offset);
            m = other > m ? other : m;
        }

        // exp(m_s - m) at [h][s], l_s exp(m_s - m) at [8 + h][s].
        int wAt = h * MaxSplits;
        int sAt = (HeadsPerBlock + h) * MaxSplits;
        StoreWeight(scratch, wAt, sAt, lane, used, m0, l0, m);
        StoreWeight(scratch, wAt, sAt, lane + 32, used, m1, l1, m);
        StoreWeight(scratch, wAt, sAt, lane + 64, used, m2, l2, m);
        StoreWeight(scratch, wAt, sAt, lane + 96, used, m3, l3, m);
        Warp.Barrier();
        if (!writes)
        {
            return;
        }

        int hd = a.HeadDim;
        int d = 4 * lane;
        bool four = d + 2 < hd;
        long oFirst = (first * hd) + d;
        long oStep = (long)a.Heads * hd;
        var acc = default(Floats4);
        float total = 0f;
        for (int s0 = 0; s0 < used; s0 += 8)
        {
            // Eight splits' values in flight, then added in split order.
            var o0 = LoadPartialO(a, oFirst, oStep, s0, used, four);
            var o1 = LoadPartialO(a, oFirst, oStep, s0 + 1, used, four);
            var o2 = LoadPartialO(a, oFirst, oStep, s0 + 2, used, four);
            var o3 = LoadPartialO(a, oFirst, oStep, s0 + 3, used, four);
            var o4 = LoadPartialO(a, oFirst, oStep, s0 + 4, used, four);
            var o5 = LoadPartialO(a, oFirst, oStep, s0 + 5, used, four);
            var o6 = LoadPartialO(a, oFirst, oStep, s0 + 6, used, four);
            var o7 = LoadPartialO(a, oFirst, oStep, s0 + 7, used, four);
            int n = used - s0;
            n = n < 8 ? n : 8;
            acc = AddWeighted(acc, o0, scratch[wAt + s0]);
            total += scratch[sAt + s0];
            if (n > 1)
            {
                acc = AddWeighted(acc, o1, scratch[wAt + s0 + 1]);
                total += scratch[sAt + s0 + 1];
            }

            if (n > 2)
            {
                acc = AddWeighted(acc, o2, scratch[wAt + s0 + 2]);
                total += scratch[sAt + s0 + 2];
            }

            if (n > 3)
            {
                acc = AddWeighted(acc, o3, scratch[wAt + s0 + 3]);
                total += scratch[sAt + s0 + 3];
            }

            if (n > 4)
            {
                acc = AddWeighted(acc, o4, scratch[wAt + s0 + 4]);
                total += scratch[sAt + s0 + 4];
            }

            if (n > 5)
            {
                acc = AddWeighted(acc, o5, scratch[wAt + s0 + 5]);
                total += scratch[sAt + s0 + 5];
            }

            if (n > 6)
            {
                acc = AddWeighted(acc, o6, scratch[wAt + s0 + 6]);
                total += scratch[sAt + s0 + 6];
            }

            if (n > 7)
            {
                acc = AddWeighted(acc, o7, scratch[wAt + s0 + 7]);
                total += scratch[sAt + s0 + 7];
            }
        }

        StoreOutput(a, row, width, positions[tid], acc.A / total);
        StoreOutput(a, row, width, positions[tid + BlockThreads], acc.B / total);
        if (four)
        {
            StoreOutput(a, row, width, positions[tid + (2 * BlockThreads)], acc.C / total);
            StoreOutput(a, row, width, positions[tid + (3 * BlockThreads)], acc.D / total);
        }
    }

    /// <summary>Split s's max score (-inf past the used splits).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float LoadMax(AttentionArgs a, long mlFirst, long mlStep, int s, int used) =>
        s < used ? LoadCg(a.PartialMl, a.PartialMlAddress, mlFirst + (s * mlStep)) : float.NegativeInfinity;

    /// <summary>Split s's sum of exponentials (0 past the used splits).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float LoadSum(AttentionArgs a, long mlFirst, long mlStep, int s, int used) =>
        s < used ? LoadCg(a.PartialMl, a.PartialMlAddress, mlFirst + (s * mlStep) + 1) : 0f;

    /// <summary>Split s's weight exp(m_s - m) and share l_s exp(m_s - m), for the used splits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreWeight(ArrayView<float> scratch, int wAt, int sAt, int s, int used, float ms, float ls, float m)
    {
        if (s < used)
        {
            float w = MathF.Exp(ms - m);
            scratch[wAt + s] = w;
            scratch[sAt + s] = ls * w;
        }
    }

    /// <summary>The lane's 4 (or 2, at the end of an odd head dim) dimensions of split s's partial output (zeros past the used splits).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Floats4 LoadPartialO(AttentionArgs a, long oFirst, long oStep, int s, int used, bool four)
    {
        var o = default(Floats4);
        if (s < used)
        {
            long at = oFirst + (s * oStep);
            o.A = LoadCg(a.PartialO, a.PartialOAddress, at);
            o.B = LoadCg(a.PartialO, a.PartialOAddress, at + 1);
            if (four)
            {
                o.C = LoadCg(a.PartialO, a.PartialOAddress, at + 2);
                o.D = LoadCg(a.PartialO, a.PartialOAddress, at + 3);
            }
        }

        return o;
    }

    /// <summary>acc + o * w per dimension, each as the combine kernel added one split (a product, then a sum).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Floats4 AddWeighted(Floats4 acc, Floats4 o, float w)
    {
        acc.A += o.A * w;
        acc.B += o.B * w;
        acc.C += o.C * w;
        acc.D += o.D * w;
        return acc;
    }

    /// <summary>One float another block may have written, read from L2 on CUDA (L1 is not coherent across multiprocessors).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float LoadCg(ArrayView<float> view, long address, long index)
    {
        if (CudaAsm.IsSupported)
        {
            CudaAsm.Emit("ld.global.cg.f32 %0, [%1];", out float value, address + (index * 4));
            return value;
        }

        return view[index];
    }

    /// <summary>
    /// Counts this block in for (row, head block) item <paramref name="counter"/> and returns the count before it: on
    /// CUDA an acquire-release device-scope atomic, so the block's earlier stores (ordered by a barrier) are released
    /// and, for the last arrival, the others' acquired.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Arrive(AttentionArgs a, int counter)
    {
        if (CudaAsm.IsSupported)
        {
            CudaAsm.Emit("atom.acq_rel.gpu.global.add.s32 %0, [%1], 1;", out int before, a.ArrivalsAddress + (counter * 4L));
            return before;
        }

        MemoryFence.DeviceLevel();
        return Atomic.Add(ref a.Arrivals[counter], 1);
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
    /// hd; rows past <paramref name="end"/> are never used, and are read as row <paramref name="last"/> or below.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Rows8 LoadTile(ArrayView<ushort> src, long kvBase, int tileStart, int end, int last, int warp, int lane, int hd)
    {
        Rows8 r;
        int key = tileStart + (4 * warp);
        int high = key + (TileKeys / 2);
        int d = 4 * lane;
        if ((hd & 3) == 0)
        {
            // Rows start 8-byte aligned: one load per row, all eight issued without a branch (a row past the end reads
            // row last instead, a lane past hd its row's first 8 bytes, and keeps zeros).
            var words = src.Cast<Words2>();
            bool inside = d < hd;
            long at = (kvBase + (inside ? d : 0)) >> 2;
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

    /// <summary>Output feature at act-order position <paramref name="sorted"/> (<see cref="ActivationLayout.SortedIndex"/>, read early) of a row, fp16 into the o_proj input layout.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreOutput(AttentionArgs a, int row, int width, int sorted, float value) =>
        ActivationLayout.StoreSorted(a.OutputHalf, row, width, sorted, value, a.Layout.Bits);

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

        /// <summary>Whether this block's arrival completed its item, so it merges the splits.</summary>
        public ArrayView<int> Last;

        /// <summary>[4][thread] the thread's output positions in the o_proj layout (only the thread itself reads them).</summary>
        public ArrayView<int> Positions;
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
