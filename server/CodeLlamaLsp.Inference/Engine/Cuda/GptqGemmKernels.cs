// Tiled GPTQ matrix-matrix kernel for prefill: a 128 x 128 output tile per block, its activations and packed
// weights streamed into shared memory by a four-stage cp.async pipeline, activations read into tensor-core
// fragments with ldmatrix, weights dequantized in registers to fp16 ((q - zero) * scale, as Marlin and
// ExLlamaV2 do) and multiplied with mma.sync m16n8k16 (fp16 inputs, fp32 accumulation). Each weight is read
// from DRAM once per 128 rows and never written back dequantized.
using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime.Cuda;

namespace CodeLlamaLsp.Inference.Engine.Cuda;

/// <summary>Per-group constants of the warp's four n8 tiles: -(1024 + zero) and the scale, each in both fp16 lanes.</summary>
internal struct GroupConstants
{
    public uint Z0;
    public uint Z1;
    public uint Z2;
    public uint Z3;
    public uint S0;
    public uint S1;
    public uint S2;
    public uint S3;
}

/// <summary>
/// GPTQ GEMM over <see cref="GptqGemvArgs"/> (the GEMV's arguments plus the device addresses of the input and the
/// packed weights, which cp.async needs as raw addresses; <see cref="GptqGemvArgs.ColumnsPerBlock"/> unused).
/// Launch geometry: grid (ceil(rows / TileRows) * ceil(out / TileColumns)), group <see cref="BlockThreads"/>;
/// block b serves row tile b % rowTiles and column tile b / rowTiles, so the blocks sharing a weight tile run
/// back to back (the weights come from DRAM once, the activations stay in L2).
/// <para>
/// The k order inside an mma does not matter as long as A and B agree, so the kernel works in "pair" space:
/// pair P of a row is the half2 that the activation layout (<see cref="ActivationLayout"/>) stores at word P,
/// holding inputs (w*rpw + j, w*rpw + j + rpw/2) with w = P / (rpw/2), j = P % (rpw/2) — exactly the two values
/// that <c>(qweight[w] &gt;&gt; bits*j) &amp; mask | 0x6400_6400</c> puts into one half2 as 1024 + q. A stage holds 32
/// inputs (16 pairs, two k16 steps) of 128 activation rows and the matching packed word rows of 128 columns.
/// A B-fragment register is pair tig (or tig + 4) of column gid: one shared word, one shift, one lop3 into
/// 1024 + q, one sub.f16x2 of (1024 + zero) (exact) and one mul.f16x2 by the group's scale.
/// </para>
/// <para>
/// The group size must be a multiple of <see cref="TileK"/> (a stage never straddles a group); the host sends
/// other layers to the GEMV (<see cref="Supports"/>). Shared memory is one static allocation addressed from
/// inline PTX by ILGPU's name for it, <c>__shared_alloca0</c> (a test compiles the kernel and fails if the name
/// or size changes). On ILGPU's CPU accelerator (tests) each thread computes its outputs with plain loops over
/// the same dequantization, so the layout and epilogue logic runs in CI; the pipeline itself is CUDA-only.
/// </para>
/// </summary>
internal static class GptqGemmKernels
{
    public const int BlockThreads = 256;
    public const int TileRows = 128;
    public const int TileColumns = 128;

    /// <summary>Inputs per pipeline stage: 16 activation pairs, two mma k16 steps.</summary>
    public const int TileK = 32;

    /// <summary>Stages in flight: three loading while one is computed.</summary>
    private const int Stages = 4;

    /// <summary>16-byte chunks of a stage's activation tile: 128 rows x 64 bytes.</summary>
    private const int AChunks = TileRows * TileK * 2 / 16;

    /// <summary>16-byte chunks of a stage's weight tile at 8 bits (8 word rows x 128 columns); 4 bits use half.</summary>
    private const int BChunks = TileK / 4 * TileColumns * 4 / 16;

    private const int StageChunks = AChunks + BChunks;

    /// <summary>Row pitch in floats of the epilogue's fp32 tile (128 + 4: the two rows a warp's spill writes land in different banks).</summary>
    private const int EpiloguePitch = 132;

    /// <summary>Bytes of the one shared allocation (48 KB, the static limit).</summary>
    public const int SharedBytes = Stages * StageChunks * 16;

    /// <summary>Whether a layer can run through this kernel (the host sends the rest to the GEMV).</summary>
    public static bool Supports(int groupSize) => groupSize % TileK == 0;

    public static void Gemm(GptqGemvArgs a)
    {
        var shared = SharedMemory.Allocate<Words4>(Stages * StageChunks);
        if (!CudaAsm.IsSupported)
        {
            Reference(a);
            return;
        }

        int tid = Group.IdxX;
        int lane = tid & 31;
        int warp = tid >> 5;
        int gid = lane >> 2;
        int tig = lane & 3;
        int warpRow = (warp & 1) * 64;
        int warpCol = (warp >> 1) * 32;
        int rowTiles = (a.Rows + TileRows - 1) / TileRows;
        int rowBase = (Grid.IdxX % rowTiles) * TileRows;
        int colBase = (Grid.IdxX / rowTiles) * TileColumns;
        int bits = a.Bits;
        int kTiles = (a.InFeatures + TileK - 1) / TileK;
        int tilesPerGroup = a.GroupSize / TileK;
        uint smem = SharedBase();
        CudaAsm.Emit(DeclareRegisters);

        var copy = CopyPlan.For(a, tid, rowBase, colBase);
        for (int s = 0; s < Stages - 1; s++)
        {
            if (s < kTiles)
            {
                Load(copy, smem, s, s);
            }

            Commit();
        }

        // ldmatrix row addresses: lanes 0-15 give rows 0-15 of an m16 block at the step's first 8 inputs, lanes 16-31
        // the same rows at the next 8 (a0..a3 of the mma A fragment). The chunk index is swizzled (see ChunkOf).
        int aRow = warpRow + (lane & 15);
        int aHalf = lane >> 4;

        var consts = default(GroupConstants);
        int inGroup = 0;
        int group = 0;
        for (int kt = 0; kt < kTiles; kt++)
        {
            if (inGroup == 0)
            {
                consts = LoadGroup(a, group, colBase + warpCol + gid);
            }

            // This thread's copies of tile kt have landed (the newest Stages - 2 groups may still fly); the barrier
            // makes everyone's visible and guarantees the stage refilled below was finished by all warps.
            WaitAllButNewest();
            Group.Barrier();
            if (kt + Stages - 1 < kTiles)
            {
                Load(copy, smem, (kt + Stages - 1) % Stages, kt + Stages - 1);
            }

            Commit();

            uint stage = smem + (uint)(kt % Stages * StageChunks * 16);
            uint bBase = stage + (AChunks * 16);
            Step(stage, bBase, aRow, aHalf, warpCol + gid, tig, bits, consts);

            inGroup++;
            if (inGroup == tilesPerGroup)
            {
                inGroup = 0;
                group++;
            }
        }

        // Nothing may be in flight when the stages are reused for the epilogue.
        WaitAll();
        Group.Barrier();

        // Epilogue in two passes of 64 rows through shared memory (fp32, rows EpiloguePitch floats apart): the warps
        // owning those rows spill their accumulators, then all threads write the rows out, coalesced.
        var tile = shared.Cast<float>();
        uint spill = smem + (uint)(((gid * EpiloguePitch) + warpCol + (2 * tig)) * 4);
        for (int pass = 0; pass < 2; pass++)
        {
            if ((warp & 1) == pass)
            {
                CudaAsm.Emit(StoreRowBlock0, spill);
                CudaAsm.Emit(StoreRowBlock1, spill + (16 * EpiloguePitch * 4));
                CudaAsm.Emit(StoreRowBlock2, spill + (32 * EpiloguePitch * 4));
                CudaAsm.Emit(StoreRowBlock3, spill + (48 * EpiloguePitch * 4));
            }

            Group.Barrier();
            for (int e = tid; e < 64 * TileColumns; e += BlockThreads)
            {
                int r = e / TileColumns;
                int c = e % TileColumns;
                int row = rowBase + (pass * 64) + r;
                int col = colBase + c;
                if (row < a.Rows && col < a.OutFeatures)
                {
                    GptqGemvKernels.StoreOutput(a, row, col, tile[(r * EpiloguePitch) + c]);
                }
            }

            Group.Barrier();
        }
    }

    /// <summary>
    /// The stage's two k16 steps: the B fragments of the four n8 tiles for both steps (register sets fb and fc, so
    /// the second step's shared loads and dequantization overlap the first step's mmas), then per step and m16 row
    /// block an ldmatrix and four mmas. Row block i's rows are 16 i further, which moves the swizzled A address by
    /// exactly 1024 i bytes ((r / 2) % 4 does not change when r grows by 16), so one address serves all four.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Step(uint stage, uint bBase, int aRow, int aHalf, int col, int tig, int bits, GroupConstants g)
    {
        // Pair p = 8s + tig and p + 4 of column col: 4-bit words hold 4 pairs (word row p / 4, shift 4 * (p % 4)),
        // 8-bit words 2 (word row p / 2, shift 8 * (p % 2)). Word rows are 128 words (512 bytes) apart; step 1's
        // pairs are 8 on: 2 word rows (4-bit) or 4 (8-bit), same shift.
        int wr0 = bits == 4 ? tig >> 2 : tig >> 1;
        int wr1 = bits == 4 ? wr0 + 1 : wr0 + 2;
        uint shift = (uint)(bits == 4 ? 4 * (tig & 3) : 8 * (tig & 1));
        uint mask = bits == 4 ? 0x000F000Fu : 0x00FF00FFu;
        uint w0 = bBase + (uint)(((wr0 * TileColumns) + col) * 4);
        uint w1 = bBase + (uint)(((wr1 * TileColumns) + col) * 4);
        uint next = (uint)((bits == 4 ? 2 : 4) * TileColumns * 4);

        CudaAsm.Emit(DequantizeTiles01Step0, w0, w1, shift, mask, g.Z0, g.S0, g.Z1, g.S1);
        CudaAsm.Emit(DequantizeTiles23Step0, w0, w1, shift, mask, g.Z2, g.S2, g.Z3, g.S3);
        CudaAsm.Emit(DequantizeTiles01Step1, w0 + next, w1 + next, shift, mask, g.Z0, g.S0, g.Z1, g.S1);
        CudaAsm.Emit(DequantizeTiles23Step1, w0 + next, w1 + next, shift, mask, g.Z2, g.S2, g.Z3, g.S3);
        CudaAsm.Emit(MmaStep0, stage + (uint)(ChunkOf(aRow, aHalf) * 16));
        CudaAsm.Emit(MmaStep1, stage + (uint)(ChunkOf(aRow, 2 + aHalf) * 16));
    }

    /// <summary>
    /// Where 16-byte chunk c (0-3) of activation-tile row r sits: rows are 64 bytes, and chunk c ^ ((r / 2) % 4) puts
    /// the 8 rows one ldmatrix matrix reads in 8 different 16-byte bank groups (no conflicts).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int ChunkOf(int r, int c) => (r * 4) + (c ^ ((r >> 1) & 3));

    /// <summary>-(1024 + zero) and the scale of group g for column col (both lanes); zeros past the last column.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static GroupConstants LoadGroup(GptqGemvArgs a, int g, int col)
    {
        var k = default(GroupConstants);
        k.Z0 = NegZeroPair(a, g, col);
        k.Z1 = NegZeroPair(a, g, col + 8);
        k.Z2 = NegZeroPair(a, g, col + 16);
        k.Z3 = NegZeroPair(a, g, col + 24);
        k.S0 = ScalePair(a, g, col);
        k.S1 = ScalePair(a, g, col + 8);
        k.S2 = ScalePair(a, g, col + 16);
        k.S3 = ScalePair(a, g, col + 24);
        return k;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint ScalePair(GptqGemvArgs a, int g, int col)
    {
        if (col >= a.OutFeatures)
        {
            return 0;
        }

        uint s = a.Scales[((long)g * a.OutFeatures) + col];
        return s | (s << 16);
    }

    /// <summary>Zero of group g, column col as an integer (v1 checkpoints store zero - 1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint ZeroOf(GptqGemvArgs a, int g, int col)
    {
        int bits = a.Bits;
        int rpw = 32 / bits;
        uint word = a.QZeros[((long)g * (a.OutFeatures / rpw)) + (col / rpw)];
        return ((word >> (bits * (col % rpw))) & ((1u << bits) - 1u)) + (uint)a.ZeroOffset;
    }

    /// <summary>-(1024 + zero) in both fp16 lanes (exact for zero &lt;= 1024); 0 past the last column.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint NegZeroPair(GptqGemvArgs a, int g, int col)
    {
        if (col >= a.OutFeatures)
        {
            return 0;
        }

        uint h = 0x8000u | (0x6400u + ZeroOf(a, g, col));
        return h | (h << 16);
    }

    /// <summary>
    /// CPU accelerator: thread t of block b computes outputs (row, col) of the block's tile with index
    /// t, t + 256, ..., by the kernel's arithmetic: (q - zero) * scale rounded to fp16, products summed in fp32.
    /// </summary>
    private static void Reference(GptqGemvArgs a)
    {
        int rowTiles = (a.Rows + TileRows - 1) / TileRows;
        int rowBase = (Grid.IdxX % rowTiles) * TileRows;
        int colBase = (Grid.IdxX / rowTiles) * TileColumns;
        int bits = a.Bits;
        int rpw = 32 / bits;
        int half = rpw / 2;
        uint vmask = (1u << bits) - 1u;
        for (int e = Group.IdxX; e < TileRows * TileColumns; e += BlockThreads)
        {
            int row = rowBase + (e / TileColumns);
            int col = colBase + (e % TileColumns);
            if (row >= a.Rows || col >= a.OutFeatures)
            {
                continue;
            }

            float sum = 0f;
            for (int pair = 0; pair < a.InFeatures / 2; pair++)
            {
                int w = pair / half;
                int j = pair % half;
                int g = w * rpw / a.GroupSize;
                uint word = a.QWeight[((long)w * a.OutFeatures) + col];
                int zero = (int)ZeroOf(a, g, col);
                float scale = DeviceMath.HalfBitsToFloat(a.Scales[((long)g * a.OutFeatures) + col]);
                uint x = a.Input[((long)row * (a.InFeatures / 2)) + pair];
                float w0 = DeviceMath.HalfBitsToFloat(DeviceMath.FloatToHalfBits((((int)((word >> (bits * j)) & vmask)) - zero) * scale));
                float w1 = DeviceMath.HalfBitsToFloat(DeviceMath.FloatToHalfBits((((int)((word >> (bits * (j + half))) & vmask)) - zero) * scale));
                sum += (DeviceMath.HalfBitsToFloat(x & 0xFFFFu) * w0) + (DeviceMath.HalfBitsToFloat(x >> 16) * w1);
            }

            GptqGemvKernels.StoreOutput(a, row, col, sum);
        }
    }

    // ---- cp.async pipeline and shared-memory access through inline PTX (CUDA only) ----

    /// <summary>Shared-window address of the kernel's one shared allocation (16-byte aligned: ILGPU aligns a Words4 array to its size).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint SharedBase()
    {
        CudaAsm.Emit("mov.u32 %0, __shared_alloca0;", out uint address);
        return address;
    }

    /// <summary>
    /// What one thread copies per stage: two 16-byte activation chunks (rows tid / 4 and 64 + tid / 4, chunk tid % 4)
    /// and at most one 16-byte weight chunk (word row tid / 32, columns 4 * (tid % 32) ..), with their validity.
    /// </summary>
    private struct CopyPlan
    {
        public long A0;
        public long A1;
        public long B;
        public long AStep;
        public long BStep;
        public int A0Valid;
        public int A1Valid;
        public int BValid;
        public int AKChunk;
        public int ADst0;
        public int ADst1;
        public int BDst;
        public int BWordRow;
        public int WordRowsPerTile;
        public int KWords;
        public int KWordRows;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static CopyPlan For(GptqGemvArgs a, int tid, int rowBase, int colBase)
        {
            var p = default(CopyPlan);
            int kWords = a.InFeatures / 2;
            int r0 = tid >> 2;
            int c = tid & 3;
            p.A0Valid = rowBase + r0 < a.Rows ? 1 : 0;
            p.A1Valid = rowBase + r0 + 64 < a.Rows ? 1 : 0;
            p.A0 = a.InputAddress + ((((long)(rowBase + r0) * kWords) + (c * 4)) * 4);
            p.A1 = a.InputAddress + ((((long)(rowBase + r0 + 64) * kWords) + (c * 4)) * 4);
            p.AStep = TileK * 2;
            p.AKChunk = c * 4;
            p.ADst0 = ChunkOf(r0, c) * 16;
            p.ADst1 = ChunkOf(r0 + 64, c) * 16;
            p.KWords = kWords;

            int rpw = 32 / a.Bits;
            p.WordRowsPerTile = TileK / rpw;
            p.KWordRows = a.InFeatures / rpw;
            p.BWordRow = tid >> 5;
            int col = colBase + ((tid & 31) * 4);
            p.BValid = p.BWordRow < p.WordRowsPerTile && col < a.OutFeatures ? 1 : 0;
            p.B = a.QWeightAddress + ((((long)p.BWordRow * a.OutFeatures) + col) * 4);
            p.BStep = (long)p.WordRowsPerTile * a.OutFeatures * 4;
            p.BDst = (AChunks * 16) + (tid * 16);
            return p;
        }
    }

    /// <summary>Issues this thread's copies of k tile <paramref name="kt"/> into stage <paramref name="stage"/>; out-of-range chunks are zero-filled.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Load(CopyPlan p, uint smem, int stage, int kt)
    {
        uint dst = smem + (uint)(stage * StageChunks * 16);
        bool kIn = (kt * TileK / 2) + p.AKChunk < p.KWords;
        CopyToShared(dst + (uint)p.ADst0, p.A0 + (kt * p.AStep), p.A0Valid != 0 && kIn);
        CopyToShared(dst + (uint)p.ADst1, p.A1 + (kt * p.AStep), p.A1Valid != 0 && kIn);
        if (p.BValid != 0)
        {
            CopyToShared(dst + (uint)p.BDst, p.B + (kt * p.BStep), (kt * p.WordRowsPerTile) + p.BWordRow < p.KWordRows);
        }
    }

    /// <summary>cp.async of 16 bytes from global to shared, bypassing L1; when not valid, 16 zero bytes are written instead.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CopyToShared(uint dst, long src, bool valid)
    {
        CudaAsm.Emit("cp.async.cg.shared.global [%0], [%1], 16, %2;", dst, valid ? src : 0L, valid ? 16u : 0u);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Commit() => CudaAsm.Emit("cp.async.commit_group;");

    /// <summary>Waits until at most Stages - 2 of this thread's newest copy groups are still in flight.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void WaitAllButNewest() => CudaAsm.Emit("cp.async.wait_group 2;");

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void WaitAll() => CudaAsm.Emit("cp.async.wait_all;");

    // ---- Inline PTX on registers the kernel declares once: the warp's 64 x 32 fp32 accumulators acc0..acc63 (row
    // block i, n8 tile j: acc(16i + 4j) .. + 3, the mma C-fragment order) and one k16 step's B fragments fb0..fb7
    // (tile j: fb(2j), fb(2j + 1)). ILGPU returns several asm outputs only through local memory (CudaAsm.EmitRef),
    // and ptxas (11.8 and 13.0 alike) keeps such locals in memory in a kernel that uses cp.async (1.6 KB of stack
    // and a local store per value), so these asm blocks have no outputs: they name the registers directly. ----

    private const string Mma = "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 ";

    private const string DeclareRegisters =
        ".reg .f32 acc<64>; .reg .b32 fb<8>; .reg .b32 fc<8>; " +
        "mov.f32 acc0, 0f00000000; mov.f32 acc1, 0f00000000; mov.f32 acc2, 0f00000000; mov.f32 acc3, 0f00000000; mov.f32 acc4, 0f00000000; mov.f32 acc5, 0f00000000; mov.f32 acc6, 0f00000000; mov.f32 acc7, 0f00000000; mov.f32 acc8, 0f00000000; mov.f32 acc9, 0f00000000; mov.f32 acc10, 0f00000000; mov.f32 acc11, 0f00000000; mov.f32 acc12, 0f00000000; mov.f32 acc13, 0f00000000; mov.f32 acc14, 0f00000000; mov.f32 acc15, 0f00000000; mov.f32 acc16, 0f00000000; mov.f32 acc17, 0f00000000; mov.f32 acc18, 0f00000000; mov.f32 acc19, 0f00000000; mov.f32 acc20, 0f00000000; mov.f32 acc21, 0f00000000; mov.f32 acc22, 0f00000000; mov.f32 acc23, 0f00000000; mov.f32 acc24, 0f00000000; mov.f32 acc25, 0f00000000; mov.f32 acc26, 0f00000000; mov.f32 acc27, 0f00000000; mov.f32 acc28, 0f00000000; mov.f32 acc29, 0f00000000; mov.f32 acc30, 0f00000000; mov.f32 acc31, 0f00000000; mov.f32 acc32, 0f00000000; mov.f32 acc33, 0f00000000; mov.f32 acc34, 0f00000000; mov.f32 acc35, 0f00000000; mov.f32 acc36, 0f00000000; mov.f32 acc37, 0f00000000; mov.f32 acc38, 0f00000000; mov.f32 acc39, 0f00000000; mov.f32 acc40, 0f00000000; mov.f32 acc41, 0f00000000; mov.f32 acc42, 0f00000000; mov.f32 acc43, 0f00000000; mov.f32 acc44, 0f00000000; mov.f32 acc45, 0f00000000; mov.f32 acc46, 0f00000000; mov.f32 acc47, 0f00000000; mov.f32 acc48, 0f00000000; mov.f32 acc49, 0f00000000; mov.f32 acc50, 0f00000000; mov.f32 acc51, 0f00000000; mov.f32 acc52, 0f00000000; mov.f32 acc53, 0f00000000; mov.f32 acc54, 0f00000000; mov.f32 acc55, 0f00000000; mov.f32 acc56, 0f00000000; mov.f32 acc57, 0f00000000; mov.f32 acc58, 0f00000000; mov.f32 acc59, 0f00000000; mov.f32 acc60, 0f00000000; mov.f32 acc61, 0f00000000; mov.f32 acc62, 0f00000000; mov.f32 acc63, 0f00000000;";

    /// <summary>fb0..fb3 (n8 tiles 0, 1): %0, %1 the shared word addresses of pairs p and p + 4, %2 shift, %3 mask, %4/%5 and %6/%7 each tile's -(1024 + zero) and scale.</summary>
    private const string DequantizeTiles01Step0 =
        "{ .reg .b32 t; " +
        "ld.shared.u32 t, [%0]; shr.u32 t, t, %2; lop3.b32 t, t, %3, 0x64006400, 0xEA; add.rn.f16x2 t, t, %4; mul.rn.f16x2 fb0, t, %5; " +
        "ld.shared.u32 t, [%1]; shr.u32 t, t, %2; lop3.b32 t, t, %3, 0x64006400, 0xEA; add.rn.f16x2 t, t, %4; mul.rn.f16x2 fb1, t, %5; " +
        "ld.shared.u32 t, [%0+32]; shr.u32 t, t, %2; lop3.b32 t, t, %3, 0x64006400, 0xEA; add.rn.f16x2 t, t, %6; mul.rn.f16x2 fb2, t, %7; " +
        "ld.shared.u32 t, [%1+32]; shr.u32 t, t, %2; lop3.b32 t, t, %3, 0x64006400, 0xEA; add.rn.f16x2 t, t, %6; mul.rn.f16x2 fb3, t, %7; " +
        "}";

    private const string DequantizeTiles01Step1 =
        "{ .reg .b32 t; " +
        "ld.shared.u32 t, [%0]; shr.u32 t, t, %2; lop3.b32 t, t, %3, 0x64006400, 0xEA; add.rn.f16x2 t, t, %4; mul.rn.f16x2 fc0, t, %5; " +
        "ld.shared.u32 t, [%1]; shr.u32 t, t, %2; lop3.b32 t, t, %3, 0x64006400, 0xEA; add.rn.f16x2 t, t, %4; mul.rn.f16x2 fc1, t, %5; " +
        "ld.shared.u32 t, [%0+32]; shr.u32 t, t, %2; lop3.b32 t, t, %3, 0x64006400, 0xEA; add.rn.f16x2 t, t, %6; mul.rn.f16x2 fc2, t, %7; " +
        "ld.shared.u32 t, [%1+32]; shr.u32 t, t, %2; lop3.b32 t, t, %3, 0x64006400, 0xEA; add.rn.f16x2 t, t, %6; mul.rn.f16x2 fc3, t, %7; " +
        "}";

    /// <summary>fb4..fb7 (n8 tiles 2, 3), same operands as <see cref="DequantizeTiles01Step0"/>.</summary>
    private const string DequantizeTiles23Step0 =
        "{ .reg .b32 t; " +
        "ld.shared.u32 t, [%0+64]; shr.u32 t, t, %2; lop3.b32 t, t, %3, 0x64006400, 0xEA; add.rn.f16x2 t, t, %4; mul.rn.f16x2 fb4, t, %5; " +
        "ld.shared.u32 t, [%1+64]; shr.u32 t, t, %2; lop3.b32 t, t, %3, 0x64006400, 0xEA; add.rn.f16x2 t, t, %4; mul.rn.f16x2 fb5, t, %5; " +
        "ld.shared.u32 t, [%0+96]; shr.u32 t, t, %2; lop3.b32 t, t, %3, 0x64006400, 0xEA; add.rn.f16x2 t, t, %6; mul.rn.f16x2 fb6, t, %7; " +
        "ld.shared.u32 t, [%1+96]; shr.u32 t, t, %2; lop3.b32 t, t, %3, 0x64006400, 0xEA; add.rn.f16x2 t, t, %6; mul.rn.f16x2 fb7, t, %7; " +
        "}";

    private const string DequantizeTiles23Step1 =
        "{ .reg .b32 t; " +
        "ld.shared.u32 t, [%0+64]; shr.u32 t, t, %2; lop3.b32 t, t, %3, 0x64006400, 0xEA; add.rn.f16x2 t, t, %4; mul.rn.f16x2 fc4, t, %5; " +
        "ld.shared.u32 t, [%1+64]; shr.u32 t, t, %2; lop3.b32 t, t, %3, 0x64006400, 0xEA; add.rn.f16x2 t, t, %4; mul.rn.f16x2 fc5, t, %5; " +
        "ld.shared.u32 t, [%0+96]; shr.u32 t, t, %2; lop3.b32 t, t, %3, 0x64006400, 0xEA; add.rn.f16x2 t, t, %6; mul.rn.f16x2 fc6, t, %7; " +
        "ld.shared.u32 t, [%1+96]; shr.u32 t, t, %2; lop3.b32 t, t, %3, 0x64006400, 0xEA; add.rn.f16x2 t, t, %6; mul.rn.f16x2 fc7, t, %7; " +
        "}";

    /// <summary>The 16 mmas of one k16 step: the four row blocks' ldmatrix (row block i at %0 + 1024 i: 16 rows of 64 bytes on) into their own registers, so all four are in flight, then four mmas per row block.</summary>
    private const string MmaStep0 =
        "{ .reg .b32 fa<16>; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {fa0,fa1,fa2,fa3}, [%0]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {fa4,fa5,fa6,fa7}, [%0+1024]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {fa8,fa9,fa10,fa11}, [%0+2048]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {fa12,fa13,fa14,fa15}, [%0+3072]; " +
        Mma + "{acc0,acc1,acc2,acc3}, {fa0,fa1,fa2,fa3}, {fb0,fb1}, {acc0,acc1,acc2,acc3}; " +
        Mma + "{acc4,acc5,acc6,acc7}, {fa0,fa1,fa2,fa3}, {fb2,fb3}, {acc4,acc5,acc6,acc7}; " +
        Mma + "{acc8,acc9,acc10,acc11}, {fa0,fa1,fa2,fa3}, {fb4,fb5}, {acc8,acc9,acc10,acc11}; " +
        Mma + "{acc12,acc13,acc14,acc15}, {fa0,fa1,fa2,fa3}, {fb6,fb7}, {acc12,acc13,acc14,acc15}; " +
        Mma + "{acc16,acc17,acc18,acc19}, {fa4,fa5,fa6,fa7}, {fb0,fb1}, {acc16,acc17,acc18,acc19}; " +
        Mma + "{acc20,acc21,acc22,acc23}, {fa4,fa5,fa6,fa7}, {fb2,fb3}, {acc20,acc21,acc22,acc23}; " +
        Mma + "{acc24,acc25,acc26,acc27}, {fa4,fa5,fa6,fa7}, {fb4,fb5}, {acc24,acc25,acc26,acc27}; " +
        Mma + "{acc28,acc29,acc30,acc31}, {fa4,fa5,fa6,fa7}, {fb6,fb7}, {acc28,acc29,acc30,acc31}; " +
        Mma + "{acc32,acc33,acc34,acc35}, {fa8,fa9,fa10,fa11}, {fb0,fb1}, {acc32,acc33,acc34,acc35}; " +
        Mma + "{acc36,acc37,acc38,acc39}, {fa8,fa9,fa10,fa11}, {fb2,fb3}, {acc36,acc37,acc38,acc39}; " +
        Mma + "{acc40,acc41,acc42,acc43}, {fa8,fa9,fa10,fa11}, {fb4,fb5}, {acc40,acc41,acc42,acc43}; " +
        Mma + "{acc44,acc45,acc46,acc47}, {fa8,fa9,fa10,fa11}, {fb6,fb7}, {acc44,acc45,acc46,acc47}; " +
        Mma + "{acc48,acc49,acc50,acc51}, {fa12,fa13,fa14,fa15}, {fb0,fb1}, {acc48,acc49,acc50,acc51}; " +
        Mma + "{acc52,acc53,acc54,acc55}, {fa12,fa13,fa14,fa15}, {fb2,fb3}, {acc52,acc53,acc54,acc55}; " +
        Mma + "{acc56,acc57,acc58,acc59}, {fa12,fa13,fa14,fa15}, {fb4,fb5}, {acc56,acc57,acc58,acc59}; " +
        Mma + "{acc60,acc61,acc62,acc63}, {fa12,fa13,fa14,fa15}, {fb6,fb7}, {acc60,acc61,acc62,acc63}; " +
        "}";

    private const string MmaStep1 =
        "{ .reg .b32 fa<16>; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {fa0,fa1,fa2,fa3}, [%0]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {fa4,fa5,fa6,fa7}, [%0+1024]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {fa8,fa9,fa10,fa11}, [%0+2048]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {fa12,fa13,fa14,fa15}, [%0+3072]; " +
        Mma + "{acc0,acc1,acc2,acc3}, {fa0,fa1,fa2,fa3}, {fc0,fc1}, {acc0,acc1,acc2,acc3}; " +
        Mma + "{acc4,acc5,acc6,acc7}, {fa0,fa1,fa2,fa3}, {fc2,fc3}, {acc4,acc5,acc6,acc7}; " +
        Mma + "{acc8,acc9,acc10,acc11}, {fa0,fa1,fa2,fa3}, {fc4,fc5}, {acc8,acc9,acc10,acc11}; " +
        Mma + "{acc12,acc13,acc14,acc15}, {fa0,fa1,fa2,fa3}, {fc6,fc7}, {acc12,acc13,acc14,acc15}; " +
        Mma + "{acc16,acc17,acc18,acc19}, {fa4,fa5,fa6,fa7}, {fc0,fc1}, {acc16,acc17,acc18,acc19}; " +
        Mma + "{acc20,acc21,acc22,acc23}, {fa4,fa5,fa6,fa7}, {fc2,fc3}, {acc20,acc21,acc22,acc23}; " +
        Mma + "{acc24,acc25,acc26,acc27}, {fa4,fa5,fa6,fa7}, {fc4,fc5}, {acc24,acc25,acc26,acc27}; " +
        Mma + "{acc28,acc29,acc30,acc31}, {fa4,fa5,fa6,fa7}, {fc6,fc7}, {acc28,acc29,acc30,acc31}; " +
        Mma + "{acc32,acc33,acc34,acc35}, {fa8,fa9,fa10,fa11}, {fc0,fc1}, {acc32,acc33,acc34,acc35}; " +
        Mma + "{acc36,acc37,acc38,acc39}, {fa8,fa9,fa10,fa11}, {fc2,fc3}, {acc36,acc37,acc38,acc39}; " +
        Mma + "{acc40,acc41,acc42,acc43}, {fa8,fa9,fa10,fa11}, {fc4,fc5}, {acc40,acc41,acc42,acc43}; " +
        Mma + "{acc44,acc45,acc46,acc47}, {fa8,fa9,fa10,fa11}, {fc6,fc7}, {acc44,acc45,acc46,acc47}; " +
        Mma + "{acc48,acc49,acc50,acc51}, {fa12,fa13,fa14,fa15}, {fc0,fc1}, {acc48,acc49,acc50,acc51}; " +
        Mma + "{acc52,acc53,acc54,acc55}, {fa12,fa13,fa14,fa15}, {fc2,fc3}, {acc52,acc53,acc54,acc55}; " +
        Mma + "{acc56,acc57,acc58,acc59}, {fa12,fa13,fa14,fa15}, {fc4,fc5}, {acc56,acc57,acc58,acc59}; " +
        Mma + "{acc60,acc61,acc62,acc63}, {fa12,fa13,fa14,fa15}, {fc6,fc7}, {acc60,acc61,acc62,acc63}; " +
        "}";

    /// <summary>Writes the accumulators to the epilogue tile: row block i at %0 + 16 i rows, tile j 8 columns on, rows gid and gid + 8.</summary>
    private const string StoreRowBlock0 =
        "st.shared.v2.f32 [%0], {acc0,acc1}; " +
        "st.shared.v2.f32 [%0+4224], {acc2,acc3}; " +
        "st.shared.v2.f32 [%0+32], {acc4,acc5}; " +
        "st.shared.v2.f32 [%0+4256], {acc6,acc7}; " +
        "st.shared.v2.f32 [%0+64], {acc8,acc9}; " +
        "st.shared.v2.f32 [%0+4288], {acc10,acc11}; " +
        "st.shared.v2.f32 [%0+96], {acc12,acc13}; " +
        "st.shared.v2.f32 [%0+4320], {acc14,acc15};";

    private const string StoreRowBlock1 =
        "st.shared.v2.f32 [%0], {acc16,acc17}; " +
        "st.shared.v2.f32 [%0+4224], {acc18,acc19}; " +
        "st.shared.v2.f32 [%0+32], {acc20,acc21}; " +
        "st.shared.v2.f32 [%0+4256], {acc22,acc23}; " +
        "st.shared.v2.f32 [%0+64], {acc24,acc25}; " +
        "st.shared.v2.f32 [%0+4288], {acc26,acc27}; " +
        "st.shared.v2.f32 [%0+96], {acc28,acc29}; " +
        "st.shared.v2.f32 [%0+4320], {acc30,acc31};";

    private const string StoreRowBlock2 =
        "st.shared.v2.f32 [%0], {acc32,acc33}; " +
        "st.shared.v2.f32 [%0+4224], {acc34,acc35}; " +
        "st.shared.v2.f32 [%0+32], {acc36,acc37}; " +
        "st.shared.v2.f32 [%0+4256], {acc38,acc39}; " +
        "st.shared.v2.f32 [%0+64], {acc40,acc41}; " +
        "st.shared.v2.f32 [%0+4288], {acc42,acc43}; " +
        "st.shared.v2.f32 [%0+96], {acc44,acc45}; " +
        "st.shared.v2.f32 [%0+4320], {acc46,acc47};";

    private const string StoreRowBlock3 =
        "st.shared.v2.f32 [%0], {acc48,acc49}; " +
        "st.shared.v2.f32 [%0+4224], {acc50,acc51}; " +
        "st.shared.v2.f32 [%0+32], {acc52,acc53}; " +
        "st.shared.v2.f32 [%0+4256], {acc54,acc55}; " +
        "st.shared.v2.f32 [%0+64], {acc56,acc57}; " +
        "st.shared.v2.f32 [%0+4288], {acc58,acc59}; " +
        "st.shared.v2.f32 [%0+96], {acc60,acc61}; " +
        "st.shared.v2.f32 [%0+4320], {acc62,acc63};";
}
