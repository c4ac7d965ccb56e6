// Tiled GPTQ matrix-matrix kernel for prefill: a block stages a 128-row activation tile and a 64-column
// packed-weight tile in shared memory, dequantizes each weight once per block into tensor-core fragments and
// multiplies with mma.sync m16n8k16 (fp16 inputs, fp32 accumulation), so a weight is reused across 128 rows
// instead of being re-read and re-dequantized per row as the GEMV does.
using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime.Cuda;

namespace CodeLlamaLsp.Inference.Engine.Cuda;

/// <summary>Four fp32 accumulators of one m16n8 tensor-core tile, in the mma C-fragment order.</summary>
internal struct MmaFragment
{
    public float C0;
    public float C1;
    public float C2;
    public float C3;
}

/// <summary>The two n8 tiles of one m16 row block a warp owns.</summary>
internal struct MmaFragmentPair
{
    public MmaFragment N0;
    public MmaFragment N1;
}

/// <summary>A warp's 64 x 16 output tile: four m16 row blocks of two n8 tiles.</summary>
internal struct MmaWarpTile
{
    public MmaFragmentPair M0;
    public MmaFragmentPair M1;
    public MmaFragmentPair M2;
    public MmaFragmentPair M3;
}

/// <summary>Dequantized B fragments (q - zero, exact in fp16) of the warp's two n8 tiles for one k16 step.</summary>
internal struct WeightFragments
{
    public uint B00;
    public uint B01;
    public uint B10;
    public uint B11;
}

/// <summary>
/// GPTQ GEMM over <see cref="GptqGemvArgs"/> (same arguments as the GEMV; <see cref="GptqGemvArgs.ColumnsPerBlock"/> unused).
/// Launch geometry: grid (ceil(rows / TileRows) * ceil(out / TileColumns)), group <see cref="BlockThreads"/>;
/// block b serves row tile b % rowTiles and column tile b / rowTiles, so the blocks sharing a weight tile run
/// back to back (the weights come from DRAM once, the activations stay in L2).
/// <para>
/// The k order inside an mma does not matter as long as A and B agree, so the kernel works in "pair" space:
/// pair P of a row is the half2 that the activation layout (<see cref="ActivationLayout"/>) stores at word P,
/// holding inputs (w*rpw + j, w*rpw + j + rpw/2) with w = P / (rpw/2), j = P % (rpw/2) — exactly the two values
/// that <c>(qweight[w] &gt;&gt; bits*j) &amp; mask | 0x6400_6400</c> dequantizes into one half2. An mma k16 step covers 8 pairs:
/// the A fragment registers (pairs tig and tig + 4 of rows gid and gid + 8) are single 32-bit shared-memory
/// reads, and the B fragment registers (pairs tig and tig + 4 of column gid) one shared word, one shift-and-mask
/// and one add.f16x2 of -(1024 + zero) each. Products of (q - zero) are exact; each group's sum is scaled in fp32.
/// </para>
/// <para>
/// Activations are fp16, products accumulate in fp32 (as in the field: Marlin, ExLlamaV2). A precise mode that split
/// fp32 activations into fp16 hi + lo and ran two mmas per step was removed once the fixtures met their targets
/// without it (docs/performance.md). On ILGPU's CPU accelerator (tests) the mma is replaced by plain loops over the
/// same shared tiles, so the tiling, grouping and bounds logic runs in CI too.
/// </para>
/// </summary>
internal static class GptqGemmKernels
{
    public const int BlockThreads = 256;
    public const int TileRows = 128;
    public const int TileColumns = 64;

    /// <summary>Activation pairs (half2 words) per row of a staged tile: 64 inputs, four k16 steps.</summary>
    private const int ChunkPairs = 32;

    /// <summary>Row pitch of the activation tile: +4 words so the 8 rows x 4 pairs of a fragment read hit 32 distinct banks.</summary>
    private const int AStride = ChunkPairs + 4;

    /// <summary>Row pitch of the weight tile: +8 words so 8-bit word rows two apart do not share banks.</summary>
    private const int BStride = TileColumns + 8;

    private const int ATileWords = TileRows * AStride;

    /// <summary>8-bit weights need 16 packed word rows for 32 pairs; 4-bit need 8.</summary>
    private const int BTileWords = 16 * BStride;

    private const uint Magic = 0x64006400u;

    public static void Gemm(GptqGemvArgs a)
    {
        var aTile = SharedMemory.Allocate<uint>(ATileWords);
        var bTile = SharedMemory.Allocate<uint>(BTileWords);

        int tid = Group.IdxX;
        int lane = tid & 31;
        int warp = tid >> 5;
        int gid = lane >> 2;
        int tig = lane & 3;
        int warpRow = (warp & 1) * 64;
        int warpCol = (warp >> 1) * 16;
        int rowTiles = (a.Rows + TileRows - 1) / TileRows;
        int rowBase = (Grid.IdxX % rowTiles) * TileRows;
        int colBase = (Grid.IdxX / rowTiles) * TileColumns;

        int bits = a.Bits;
        int kPairs = a.InFeatures / 2;
        int steps = a.InFeatures / 16;
        int stepsPerGroup = a.GroupSize / 16;

        var total = default(MmaWarpTile);
        var part = default(MmaWarpTile);
        uint nz0 = 0;
        uint nz1 = 0;
        int g = 0;
        int stepInGroup = 0;

        for (int chunk = 0; chunk < kPairs; chunk += ChunkPairs)
        {
            // All of a chunk's global loads are issued before the first store, so each thread keeps up to nine
            // 16-byte loads in flight. (Prefetching the next chunk across the compute took 154 registers, one block
            // per SM, and ran no faster.)
            var loads = LoadChunk(a, tid, rowBase, colBase, chunk);

            // Everyone is done reading the previous tiles before they are overwritten.
            Group.Barrier();
            StoreChunk(loads, aTile, bTile, tid, bits);
            Group.Barrier();

            for (int s = 0; s < ChunkPairs / 8; s++)
            {
                int step = (chunk >> 3) + s;
                if (step < steps)
                {
                    if (stepInGroup == 0)
                    {
                        nz0 = NegZeroPair(a, g, colBase + warpCol + gid);
                        nz1 = NegZeroPair(a, g, colBase + warpCol + 8 + gid);
                    }

                    var b = LoadWeightFragments(bTile, warpCol + gid, s, tig, bits, nz0, nz1);
                    part = StepAll(part, aTile, warpRow, s, lane, b, a, bTile, warpCol, colBase, g);

                    stepInGroup++;
                    if (stepInGroup == stepsPerGroup || step + 1 == steps)
                    {
                        total = ApplyScales(total, part, a, g, colBase + warpCol + (2 * tig));
                        part = default;
                        stepInGroup = 0;
                        g++;
                    }
                }
            }
        }

        int r0 = rowBase + warpRow + gid;
        int col = colBase + warpCol + (2 * tig);
        Store(a, total.M0, r0, col);
        Store(a, total.M1, r0 + 16, col);
        Store(a, total.M2, r0 + 32, col);
        Store(a, total.M3, r0 + 48, col);
    }

    /// <summary>
    /// Issues the global loads of one chunk (activation pairs [chunk, chunk + 32) of rows rowBase.., and the packed
    /// word rows of the same inputs for columns colBase..+63); everything outside the matrices reads as zero.
    /// Activations: one half2 word per pair, 16 bytes = four pairs, 4 per thread. Weights: 8 (4-bit) or 16 (8-bit)
    /// word rows x 16 loads, at most one per thread.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ChunkLoads LoadChunk(GptqGemvArgs a, int tid, int rowBase, int colBase, int chunk)
    {
        var l = default(ChunkLoads);
        l.A0 = LoadActivation(a, rowBase + (tid >> 3), chunk + ((tid & 7) * 4));
        l.A1 = LoadActivation(a, rowBase + 32 + (tid >> 3), chunk + ((tid & 7) * 4));
        l.A2 = LoadActivation(a, rowBase + 64 + (tid >> 3), chunk + ((tid & 7) * 4));
        l.A3 = LoadActivation(a, rowBase + 96 + (tid >> 3), chunk + ((tid & 7) * 4));

        // Word row wr holds pairs [wr * pairsPerWord, ...): 4-bit 4 pairs per word, 8-bit 2.
        int log2Pairs = a.Bits == 4 ? 2 : 1;
        int wordRows = ChunkPairs >> log2Pairs;
        int wr = tid >> 4;
        int word = (chunk >> log2Pairs) + wr;
        int col = colBase + ((tid & 15) * 4);
        if (wr < wordRows && word < (a.InFeatures >> (log2Pairs + 1)) && col < a.OutFeatures)
        {
            l.B = DeviceMath.Load4(a.QWeight, ((long)word * a.OutFeatures) + col);
        }

        return l;
    }

    /// <summary>16 bytes (four half2 pairs) of row <paramref name="row"/> from pair <paramref name="pair"/> on, or zeros.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Words4 LoadActivation(GptqGemvArgs a, int row, int pair)
    {
        int kPairs = a.InFeatures / 2;
        if (row >= a.Rows || pair >= kPairs)
        {
            return default;
        }

        return DeviceMath.Load4(a.Input, ((long)row * kPairs) + pair);
    }

    /// <summary>Writes the loads of <see cref="LoadChunk"/> into the shared tiles.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreChunk(ChunkLoads l, ArrayView<uint> aTile, ArrayView<uint> bTile, int tid, int bits)
    {
        int at = ((tid >> 3) * AStride) + ((tid & 7) * 4);
        StoreWords(aTile, at, l.A0);
        StoreWords(aTile, at + (32 * AStride), l.A1);
        StoreWords(aTile, at + (64 * AStride), l.A2);
        StoreWords(aTile, at + (96 * AStride), l.A3);

        int wordRows = bits == 4 ? ChunkPairs / 4 : ChunkPairs / 2;
        if ((tid >> 4) < wordRows)
        {
            StoreWords(bTile, ((tid >> 4) * BStride) + ((tid & 15) * 4), l.B);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreWords(ArrayView<uint> tile, int at, Words4 v)
    {
        tile[at] = v.X;
        tile[at + 1] = v.Y;
        tile[at + 2] = v.Z;
        tile[at + 3] = v.W;
    }

    /// <summary>B fragments of step <paramref name="s"/> for tile column <paramref name="col"/> (n8 tile 0) and col + 8 (tile 1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static WeightFragments LoadWeightFragments(ArrayView<uint> bTile, int col, int s, int tig, int bits, uint nz0, uint nz1)
    {
        var f = default(WeightFragments);
        if (!CudaAsm.IsSupported)
        {
            return f; // The CPU path dequantizes inside Step.
        }

        // Pair p = 8s + tig and p + 4: word row p / pairsPerWord (4 pairs on = 4 / pairsPerWord rows on), same shift.
        int p = (8 * s) + tig;
        int wr = bits == 4 ? p >> 2 : p >> 1;
        int shift = bits * (bits == 4 ? p & 3 : p & 1);
        int wr1 = wr + (bits == 4 ? 1 : 2);
        uint mask = bits == 4 ? 0x000F000Fu : 0x00FF00FFu;
        f.B00 = DeviceMath.Half2Add(((bTile[(wr * BStride) + col] >> shift) & mask) | Magic, nz0);
        f.B01 = DeviceMath.Half2Add(((bTile[(wr1 * BStride) + col] >> shift) & mask) | Magic, nz0);
        f.B10 = DeviceMath.Half2Add(((bTile[(wr * BStride) + col + 8] >> shift) & mask) | Magic, nz1);
        f.B11 = DeviceMath.Half2Add(((bTile[(wr1 * BStride) + col + 8] >> shift) & mask) | Magic, nz1);
        return f;
    }

    /// <summary>
    /// One k16 step of the warp's four m16 row blocks against both n8 tiles. The eight mmas are independent, so the
    /// tensor pipe never waits on one accumulator twice in a row.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static MmaWarpTile StepAll(MmaWarpTile c, ArrayView<uint> aTile, int warpRow, int s, int lane, WeightFragments b, GptqGemvArgs a, ArrayView<uint> bTile, int warpCol, int colBase, int g)
    {
        if (CudaAsm.IsSupported)
        {
            // A fragment: pairs tig and tig + 4 of rows gid and gid + 8 (the 36-word pitch puts the 32 reads in 32 banks).
            int at = ((warpRow + (lane >> 2)) * AStride) + (8 * s) + (lane & 3);
            return MmaRows(c, LoadFragment(aTile, at), LoadFragment(aTile, at + (16 * AStride)), LoadFragment(aTile, at + (32 * AStride)), LoadFragment(aTile, at + (48 * AStride)), b);
        }

        c.M0 = ReferenceStep(c.M0, aTile, warpRow, s, lane, a, bTile, warpCol, colBase, g);
        c.M1 = ReferenceStep(c.M1, aTile, warpRow + 16, s, lane, a, bTile, warpCol, colBase, g);
        c.M2 = ReferenceStep(c.M2, aTile, warpRow + 32, s, lane, a, bTile, warpCol, colBase, g);
        c.M3 = ReferenceStep(c.M3, aTile, warpRow + 48, s, lane, a, bTile, warpCol, colBase, g);
        return c;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static MmaWarpTile MmaRows(MmaWarpTile c, Words4 x0, Words4 x1, Words4 x2, Words4 x3, WeightFragments b)
    {
        c.M0.N0 = DeviceMath.Mma(c.M0.N0, x0, b.B00, b.B01);
        c.M1.N0 = DeviceMath.Mma(c.M1.N0, x1, b.B00, b.B01);
        c.M2.N0 = DeviceMath.Mma(c.M2.N0, x2, b.B00, b.B01);
        c.M3.N0 = DeviceMath.Mma(c.M3.N0, x3, b.B00, b.B01);
        c.M0.N1 = DeviceMath.Mma(c.M0.N1, x0, b.B10, b.B11);
        c.M1.N1 = DeviceMath.Mma(c.M1.N1, x1, b.B10, b.B11);
        c.M2.N1 = DeviceMath.Mma(c.M2.N1, x2, b.B10, b.B11);
        c.M3.N1 = DeviceMath.Mma(c.M3.N1, x3, b.B10, b.B11);
        return c;
    }

    /// <summary>CPU accelerator: the C-fragment elements of one m16 row block from the same tiles, by plain loops.</summary>
    private static MmaFragmentPair ReferenceStep(MmaFragmentPair c, ArrayView<uint> aTile, int tileRow, int s, int lane, GptqGemvArgs a, ArrayView<uint> bTile, int warpCol, int colBase, int g)
    {
        int r = tileRow + (lane >> 2);
        int cl = warpCol + (2 * (lane & 3));
        c.N0.C0 += ReferenceDot(a, aTile, bTile, r, cl, colBase, s, g);
        c.N0.C1 += ReferenceDot(a, aTile, bTile, r, cl + 1, colBase, s, g);
        c.N0.C2 += ReferenceDot(a, aTile, bTile, r + 8, cl, colBase, s, g);
        c.N0.C3 += ReferenceDot(a, aTile, bTile, r + 8, cl + 1, colBase, s, g);
        c.N1.C0 += ReferenceDot(a, aTile, bTile, r, cl + 8, colBase, s, g);
        c.N1.C1 += ReferenceDot(a, aTile, bTile, r, cl + 9, colBase, s, g);
        c.N1.C2 += ReferenceDot(a, aTile, bTile, r + 8, cl + 8, colBase, s, g);
        c.N1.C3 += ReferenceDot(a, aTile, bTile, r + 8, cl + 9, colBase, s, g);
        return c;
    }

    /// <summary>The a0..a3 registers of an m16n8k16 A fragment whose (row gid, pair tig) word is at <paramref name="at"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Words4 LoadFragment(ArrayView<uint> tile, int at) => new()
    {
        X = tile[at],
        Y = tile[at + (8 * AStride)],
        Z = tile[at + 4],
        W = tile[at + (8 * AStride) + 4],
    };

    /// <summary>CPU-accelerator stand-in for the mma: sum over the 8 pairs of step s of A[row] . (q - zero)[col].</summary>
    private static float ReferenceDot(GptqGemvArgs a, ArrayView<uint> aTile, ArrayView<uint> bTile, int tileRow, int tileCol, int colBase, int s, int g)
    {
        int col = colBase + tileCol;
        if (col >= a.OutFeatures)
        {
            return 0f;
        }

        int bits = a.Bits;
        int pairsPerWord = 16 / bits;
        int zero = (int)ZeroOf(a, g, col);
        uint vmask = (1u << bits) - 1u;
        float sum = 0f;
        for (int q = 0; q < 8; q++)
        {
            int p = (8 * s) + q;
            uint x = aTile[(tileRow * AStride) + p];
            float lo = DeviceMath.HalfBitsToFloat(x & 0xFFFFu);
            float hi = DeviceMath.HalfBitsToFloat(x >> 16);

            uint w = bTile[((p / pairsPerWord) * BStride) + tileCol];
            int shift = bits * (p % pairsPerWord);
            sum += (((int)((w >> shift) & vmask) - zero) * lo) + (((int)((w >> (shift + 16)) & vmask) - zero) * hi);
        }

        return sum;
    }

    /// <summary>total += part * scale per column, for the columns c0, c0 + 1 (tile 0) and c0 + 8, c0 + 9 (tile 1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static MmaWarpTile ApplyScales(MmaWarpTile total, MmaWarpTile part, GptqGemvArgs a, int g, int c0)
    {
        float s00 = 0f;
        float s01 = 0f;
        float s10 = 0f;
        float s11 = 0f;
        long at = ((long)g * a.OutFeatures) + c0;
        if (c0 < a.OutFeatures)
        {
            s00 = DeviceMath.HalfBitsToFloat(a.Scales[at]);
            s01 = DeviceMath.HalfBitsToFloat(a.Scales[at + 1]);
        }

        if (c0 + 8 < a.OutFeatures)
        {
            s10 = DeviceMath.HalfBitsToFloat(a.Scales[at + 8]);
            s11 = DeviceMath.HalfBitsToFloat(a.Scales[at + 9]);
        }

        total.M0 = Scale(total.M0, part.M0, s00, s01, s10, s11);
        total.M1 = Scale(total.M1, part.M1, s00, s01, s10, s11);
        total.M2 = Scale(total.M2, part.M2, s00, s01, s10, s11);
        total.M3 = Scale(total.M3, part.M3, s00, s01, s10, s11);
        return total;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static MmaFragmentPair Scale(MmaFragmentPair t, MmaFragmentPair p, float s00, float s01, float s10, float s11)
    {
        t.N0.C0 += p.N0.C0 * s00;
        t.N0.C1 += p.N0.C1 * s01;
        t.N0.C2 += p.N0.C2 * s00;
        t.N0.C3 += p.N0.C3 * s01;
        t.N1.C0 += p.N1.C0 * s10;
        t.N1.C1 += p.N1.C1 * s11;
        t.N1.C2 += p.N1.C2 * s10;
        t.N1.C3 += p.N1.C3 * s11;
        return t;
    }

    /// <summary>Writes one row block's fragments: rows r0 and r0 + 8, columns col, col + 1, col + 8, col + 9.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(GptqGemvArgs a, MmaFragmentPair f, int r0, int col)
    {
        StoreTwo(a, r0, col, f.N0.C0, f.N0.C1);
        StoreTwo(a, r0 + 8, col, f.N0.C2, f.N0.C3);
        StoreTwo(a, r0, col + 8, f.N1.C0, f.N1.C1);
        StoreTwo(a, r0 + 8, col + 8, f.N1.C2, f.N1.C3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreTwo(GptqGemvArgs a, int row, int col, float v0, float v1)
    {
        // out_features is a multiple of 4 (checked on the host), so col < out implies col + 1 < out.
        if (row >= a.Rows || col >= a.OutFeatures)
        {
            return;
        }

        if (a.HasBias != 0)
        {
            v0 += DeviceMath.HalfBitsToFloat(a.Bias[col]);
            v1 += DeviceMath.HalfBitsToFloat(a.Bias[col + 1]);
        }

        long o = ((long)row * a.OutputStride) + a.OutputOffset + col;
        if (a.Accumulate != 0)
        {
            v0 += a.Output[o];
            v1 += a.Output[o + 1];
        }

        a.Output[o] = v0;
        a.Output[o + 1] = v1;
    }

    /// <summary>Zero of group g, column col as an integer (v1 checkpoints store zero - 1); 0 past the last column.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint ZeroOf(GptqGemvArgs a, int g, int col)
    {
        if (col >= a.OutFeatures)
        {
            return 0;
        }

        int bits = a.Bits;
        int rpw = 32 / bits;
        uint word = a.QZeros[((long)g * (a.OutFeatures / rpw)) + (col / rpw)];
        return ((word >> (bits * (col % rpw))) & ((1u << bits) - 1u)) + (uint)a.ZeroOffset;
    }

    /// <summary>-(1024 + zero) in both fp16 lanes (exact for zero &lt;= 1024), the add that turns a magic half2 into q - zero.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint NegZeroPair(GptqGemvArgs a, int g, int col)
    {
        uint h = 0x8000u | (0x6400u + ZeroOf(a, g, col));
        return h | (h << 16);
    }
}

/// <summary>The global loads of one staged chunk, held in registers while the previous chunk is computed.</summary>
internal struct ChunkLoads
{
    public Words4 A0;
    public Words4 A1;
    public Words4 A2;
    public Words4 A3;
    public Words4 B;
}
