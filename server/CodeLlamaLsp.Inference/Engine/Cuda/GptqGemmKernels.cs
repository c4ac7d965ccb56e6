// Tiled GPTQ matrix-matrix kernel for prefill: a 128 x 128 output tile per block, its activations and packed
// weights streamed into shared memory by a three-stage cp.async pipeline, each stage's weights dequantized once
// per block to an fp16 tile ((q - zero) * scale, as Marlin and ExLlamaV2 do), both operands read into tensor-core
// fragments with ldmatrix and multiplied with mma.sync m16n8k16 (fp16 inputs, fp32 accumulation). Each weight is
// read from DRAM once per 128 rows and never written back dequantized.
using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime.Cuda;

namespace CodeLlamaLsp.Inference.Engine.Cuda;

/// <summary>One column's group constants in both fp16 lanes: -(1024 + zero) and the scale.</summary>
internal struct ColumnConstants
{
    public uint NegZero;
    public uint Scale;
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
/// Per stage every thread dequantizes whole packed words of one column (lop3 into 1024 + q, add.f16x2 of
/// -(1024 + zero), exact, mul.f16x2 by the scale) into the fp16 weight tile [column][input], stored in that pair
/// order, so a barrier later the warps read B fragments with ldmatrix exactly as they read A (until 11-29 each warp
/// dequantized its own fragments in the mma loop: twice per block, and a dependency chain in front of every mma).
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

    /// <summary>Stages in the cp.async ring: two loading while one is dequantized and computed.</summary>
    private const int Stages = 3;

    /// <summary>16-byte chunks of a stage's activation tile: 128 rows x 64 bytes.</summary>
    private const int AChunks = TileRows * TileK * 2 / 16;

    /// <summary>16-byte chunks of a stage's weight tile at 8 bits (8 word rows x 128 columns); 4 bits use half.</summary>
    private const int BChunks = TileK / 4 * TileColumns * 4 / 16;

    private const int StageChunks = AChunks + BChunks;

    /// <summary>Row pitch in floats of the epilogue's fp32 tile (128 + 4: the two rows a warp's spill writes land in different banks).</summary>
    private const int EpiloguePitch = 132;

    /// <summary>The stage's weights dequantized to fp16, [128 columns][32 inputs] (64-byte rows, swizzled like the activations).</summary>
    private const int WeightTileBytes = TileColumns * TileK * 2;

    /// <summary>Bytes of the one shared allocation (44 KB; the static limit is 48).</summary>
    public const int SharedBytes = (Stages * StageChunks * 16) + WeightTileBytes;

    /// <summary>Whether a layer can run through this kernel (the host sends the rest to the GEMV).</summary>
    public static bool Supports(int groupSize) => groupSize % TileK == 0;

    public static void Gemm(GptqGemvArgs a)
    {
        var shared = SharedMemory.Allocate<Words4>(SharedBytes / 16);
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
        uint smem = DeviceMath.SharedBase();
        CudaAsm.Emit(DeclareRegisters);

        var copy = CopyPlan.For(a, tid, rowBase, colBase);
        for (int s = 0; s < Stages - 1; s++)
        {
            if (s < kTiles)
            {
                Load(copy, smem, s, s);
            }

            DeviceMath.CommitCopies();
        }

        // ldmatrix row addresses: lanes 0-15 give rows 0-15 of an m16 block at the step's first 8 inputs, lanes 16-31
        // the same rows at the next 8 (a0..a3 of the mma A fragment). The chunk index is swizzled (see ChunkOf).
        int aRow = warpRow + (lane & 15);
        int aHalf = lane >> 4;

        // Dequantization: thread t owns column t % 128 of the block and word rows t / 128, + 2, ... of each stage
        // (2 words at 4 bits, 4 at 8); its group's -(1024 + zero) and scale are loaded a stage ahead.
        int dqCol = tid & (TileColumns - 1);
        int dqRow = tid >> 7;
        uint weightTile = smem + (uint)(Stages * StageChunks * 16);
        int groups = (a.InFeatures + a.GroupSize - 1) / a.GroupSize;
        var consts = LoadColumnGroup(a, 0, colBase + dqCol);
        var nextConsts = consts;

        // B fragments by ldmatrix from the fp16 weight tile: matrix m = lane / 8 covers columns 8 (m / 2) + lane % 8
        // of the warp's first two n8 tiles at the step's k half m % 2 (tiles 2, 3 are 16 rows = 1024 bytes on).
        int bRow = warpCol + ((lane >> 4) * 8) + (lane & 7);
        int bHalf = (lane >> 3) & 1;

        int inGroup = 0;
        int group = 0;
        for (int kt = 0; kt < kTiles; kt++)
        {
            if (inGroup == 0)
            {
                consts = nextConsts;
            }

            if (inGroup == tilesPerGroup - 1 && group + 1 < groups)
            {
                nextConsts = LoadColumnGroup(a, group + 1, colBase + dqCol);
            }

            // This thread's copies of tile kt have landed (the newest Stages - 2 groups may still fly); the barrier
            // makes everyone's visible and guarantees that the stage refilled below and the weight tile were
            // finished by all warps.
            DeviceMath.WaitUntilCopyGroupsPending(Stages - 2);
            Group.Barrier();
            if (kt + Stages - 1 < kTiles)
            {
                Load(copy, smem, (kt + Stages - 1) % Stages, kt + Stages - 1);
            }

            DeviceMath.CommitCopies();

            uint stage = smem + (uint)(kt % Stages * StageChunks * 16);
            uint packed = stage + (AChunks * 16) + (uint)(((dqRow * TileColumns) + dqCol) * 4);
            if (bits == 4)
            {
                // Word row w of the stage holds inputs 8w .. 8w + 7: chunk w of the column's 64-byte row.
                CudaAsm.Emit(DequantizeWord4, packed, consts.NegZero, consts.Scale, weightTile + (uint)(ChunkOf(dqCol, dqRow) * 16));
                CudaAsm.Emit(DequantizeWord4, packed + (2 * TileColumns * 4), consts.NegZero, consts.Scale, weightTile + (uint)(ChunkOf(dqCol, dqRow + 2) * 16));
            }
            else
            {
                // 8 bits: word row w holds inputs 4w .. 4w + 3: half of chunk w / 2.
                for (int w = dqRow; w < 8; w += 2)
                {
                    CudaAsm.Emit(DequantizeWord8, packed + (uint)((w - dqRow) * TileColumns * 4), consts.NegZero, consts.Scale, weightTile + (uint)((ChunkOf(dqCol, w >> 1) * 16) + ((w & 1) * 8)));
                }
            }

            Group.Barrier();
            CudaAsm.Emit(MmaStep, stage + (uint)(ChunkOf(aRow, aHalf) * 16), weightTile + (uint)(ChunkOf(bRow, bHalf) * 16));
            CudaAsm.Emit(MmaStep, stage + (uint)(ChunkOf(aRow, 2 + aHalf) * 16), weightTile + (uint)(ChunkOf(bRow, 2 + bHalf) * 16));

            inGroup++;
            if (inGroup == tilesPerGroup)
            {
                inGroup = 0;
                group++;
            }
        }

        // Nothing may be in flight when the stages are reused for the epilogue.
        DeviceMath.WaitForAllCopies();
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
    /// Where 16-byte chunk c (0-3) of activation-tile row r sits: rows are 64 bytes, and chunk c ^ ((r / 2) % 4) puts
    /// the 8 rows one ldmatrix matrix reads in 8 different 16-byte bank groups (no conflicts).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int ChunkOf(int r, int c) => (r * 4) + (c ^ ((r >> 1) & 3));

    /// <summary>Column col's constants of group g; zeros past the last column.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ColumnConstants LoadColumnGroup(GptqGemvArgs a, int g, int col) => new()
    {
        NegZero = NegZeroPair(a, g, col),
        Scale = ScalePair(a, g, col),
    };

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
        DeviceMath.CopyToShared(dst + (uint)p.ADst0, p.A0 + (kt * p.AStep), p.A0Valid != 0 && kIn);
        DeviceMath.CopyToShared(dst + (uint)p.ADst1, p.A1 + (kt * p.AStep), p.A1Valid != 0 && kIn);
        if (p.BValid != 0)
        {
            DeviceMath.CopyToShared(dst + (uint)p.BDst, p.B + (kt * p.BStep), (kt * p.WordRowsPerTile) + p.BWordRow < p.KWordRows);
        }
    }

    // ---- Inline PTX. The warp's 64 x 32 fp32 accumulators live in registers acc0..acc63 that the kernel declares
    // once (row block i, n8 tile j: acc(16i + 4j) .. + 3, the mma C-fragment order). ILGPU returns several asm
    // outputs only through local memory (CudaAsm.EmitRef), and ptxas (11.8 and 13.0 alike) keeps such locals in
    // memory in a kernel that uses cp.async (1.6 KB of stack and a local store per value), so these asm blocks
    // have no outputs: they name the registers directly, and the dequantization writes shared memory. ----

        private const string DeclareRegisters =
        ".reg .f32 acc<64>; " +
        "mov.f32 acc0, 0f00000000; mov.f32 acc1, 0f00000000; mov.f32 acc2, 0f00000000; mov.f32 acc3, 0f00000000; mov.f32 acc4, 0f00000000; mov.f32 acc5, 0f00000000; mov.f32 acc6, 0f00000000; mov.f32 acc7, 0f00000000; mov.f32 acc8, 0f00000000; mov.f32 acc9, 0f00000000; mov.f32 acc10, 0f00000000; mov.f32 acc11, 0f00000000; mov.f32 acc12, 0f00000000; mov.f32 acc13, 0f00000000; mov.f32 acc14, 0f00000000; mov.f32 acc15, 0f00000000; mov.f32 acc16, 0f00000000; mov.f32 acc17, 0f00000000; mov.f32 acc18, 0f00000000; mov.f32 acc19, 0f00000000; mov.f32 acc20, 0f00000000; mov.f32 acc21, 0f00000000; mov.f32 acc22, 0f00000000; mov.f32 acc23, 0f00000000; mov.f32 acc24, 0f00000000; mov.f32 acc25, 0f00000000; mov.f32 acc26, 0f00000000; mov.f32 acc27, 0f00000000; mov.f32 acc28, 0f00000000; mov.f32 acc29, 0f00000000; mov.f32 acc30, 0f00000000; mov.f32 acc31, 0f00000000; mov.f32 acc32, 0f00000000; mov.f32 acc33, 0f00000000; mov.f32 acc34, 0f00000000; mov.f32 acc35, 0f00000000; mov.f32 acc36, 0f00000000; mov.f32 acc37, 0f00000000; mov.f32 acc38, 0f00000000; mov.f32 acc39, 0f00000000; mov.f32 acc40, 0f00000000; mov.f32 acc41, 0f00000000; mov.f32 acc42, 0f00000000; mov.f32 acc43, 0f00000000; mov.f32 acc44, 0f00000000; mov.f32 acc45, 0f00000000; mov.f32 acc46, 0f00000000; mov.f32 acc47, 0f00000000; mov.f32 acc48, 0f00000000; mov.f32 acc49, 0f00000000; mov.f32 acc50, 0f00000000; mov.f32 acc51, 0f00000000; mov.f32 acc52, 0f00000000; mov.f32 acc53, 0f00000000; mov.f32 acc54, 0f00000000; mov.f32 acc55, 0f00000000; mov.f32 acc56, 0f00000000; mov.f32 acc57, 0f00000000; mov.f32 acc58, 0f00000000; mov.f32 acc59, 0f00000000; mov.f32 acc60, 0f00000000; mov.f32 acc61, 0f00000000; mov.f32 acc62, 0f00000000; mov.f32 acc63, 0f00000000;";

    /// <summary>
    /// One 4-bit word (8 inputs of one column) of the packed stage at %0 to fp16: nibbles i and i + 4 into 1024 + q by
    /// lop3 (the activation layout's pair i), -(1024 + zero) added (%1, exact), times the scale (%2), the four pairs
    /// stored as one 16-byte chunk at %3.
    /// </summary>
    private const string DequantizeWord4 =
        "{ .reg .b32 w, t0, t1, t2, t3; ld.shared.u32 w, [%0]; " +
        "lop3.b32 t0, w, 0x000F000F, 0x64006400, 0xEA; shr.u32 w, w, 4; lop3.b32 t1, w, 0x000F000F, 0x64006400, 0xEA; " +
        "shr.u32 w, w, 4; lop3.b32 t2, w, 0x000F000F, 0x64006400, 0xEA; shr.u32 w, w, 4; lop3.b32 t3, w, 0x000F000F, 0x64006400, 0xEA; " +
        "add.rn.f16x2 t0, t0, %1; add.rn.f16x2 t1, t1, %1; add.rn.f16x2 t2, t2, %1; add.rn.f16x2 t3, t3, %1; " +
        "mul.rn.f16x2 t0, t0, %2; mul.rn.f16x2 t1, t1, %2; mul.rn.f16x2 t2, t2, %2; mul.rn.f16x2 t3, t3, %2; " +
        "st.shared.v4.b32 [%3], {t0, t1, t2, t3}; }";

    /// <summary>One 8-bit word (4 inputs: bytes i and i + 2 are pair i) to fp16, as <see cref="DequantizeWord4"/>; 8 bytes at %3.</summary>
    private const string DequantizeWord8 =
        "{ .reg .b32 w, t0, t1; ld.shared.u32 w, [%0]; " +
        "lop3.b32 t0, w, 0x00FF00FF, 0x64006400, 0xEA; shr.u32 w, w, 8; lop3.b32 t1, w, 0x00FF00FF, 0x64006400, 0xEA; " +
        "add.rn.f16x2 t0, t0, %1; add.rn.f16x2 t1, t1, %1; mul.rn.f16x2 t0, t0, %2; mul.rn.f16x2 t1, t1, %2; " +
        "st.shared.v2.b32 [%3], {t0, t1}; }";

    /// <summary>
    /// One k16 step: the four row blocks' A fragments (%0, row block i 1024 i bytes on), the B fragments of the four n8
    /// tiles from the fp16 weight tile (%1; tiles 2, 3 at +1024), then 16 independent mmas.
    /// </summary>
    private const string MmaStep =
        "{ .reg .b32 fa<16>, fb<8>; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {fa0,fa1,fa2,fa3}, [%0]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {fa4,fa5,fa6,fa7}, [%0+1024]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {fa8,fa9,fa10,fa11}, [%0+2048]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {fa12,fa13,fa14,fa15}, [%0+3072]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {fb0,fb1,fb2,fb3}, [%1]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {fb4,fb5,fb6,fb7}, [%1+1024]; " +
        DeviceMath.MmaF16F32 + "{acc0,acc1,acc2,acc3}, {fa0,fa1,fa2,fa3}, {fb0,fb1}, {acc0,acc1,acc2,acc3}; " +
        DeviceMath.MmaF16F32 + "{acc4,acc5,acc6,acc7}, {fa0,fa1,fa2,fa3}, {fb2,fb3}, {acc4,acc5,acc6,acc7}; " +
        DeviceMath.MmaF16F32 + "{acc8,acc9,acc10,acc11}, {fa0,fa1,fa2,fa3}, {fb4,fb5}, {acc8,acc9,acc10,acc11}; " +
        DeviceMath.MmaF16F32 + "{acc12,acc13,acc14,acc15}, {fa0,fa1,fa2,fa3}, {fb6,fb7}, {acc12,acc13,acc14,acc15}; " +
        DeviceMath.MmaF16F32 + "{acc16,acc17,acc18,acc19}, {fa4,fa5,fa6,fa7}, {fb0,fb1}, {acc16,acc17,acc18,acc19}; " +
        DeviceMath.MmaF16F32 + "{acc20,acc21,acc22,acc23}, {fa4,fa5,fa6,fa7}, {fb2,fb3}, {acc20,acc21,acc22,acc23}; " +
        DeviceMath.MmaF16F32 + "{acc24,acc25,acc26,acc27}, {fa4,fa5,fa6,fa7}, {fb4,fb5}, {acc24,acc25,acc26,acc27}; " +
        DeviceMath.MmaF16F32 + "{acc28,acc29,acc30,acc31}, {fa4,fa5,fa6,fa7}, {fb6,fb7}, {acc28,acc29,acc30,acc31}; " +
        DeviceMath.MmaF16F32 + "{acc32,acc33,acc34,acc35}, {fa8,fa9,fa10,fa11}, {fb0,fb1}, {acc32,acc33,acc34,acc35}; " +
        DeviceMath.MmaF16F32 + "{acc36,acc37,acc38,acc39}, {fa8,fa9,fa10,fa11}, {fb2,fb3}, {acc36,acc37,acc38,acc39}; " +
        DeviceMath.MmaF16F32 + "{acc40,acc41,acc42,acc43}, {fa8,fa9,fa10,fa11}, {fb4,fb5}, {acc40,acc41,acc42,acc43}; " +
        DeviceMath.MmaF16F32 + "{acc44,acc45,acc46,acc47}, {fa8,fa9,fa10,fa11}, {fb6,fb7}, {acc44,acc45,acc46,acc47}; " +
        DeviceMath.MmaF16F32 + "{acc48,acc49,acc50,acc51}, {fa12,fa13,fa14,fa15}, {fb0,fb1}, {acc48,acc49,acc50,acc51}; " +
        DeviceMath.MmaF16F32 + "{acc52,acc53,acc54,acc55}, {fa12,fa13,fa14,fa15}, {fb2,fb3}, {acc52,acc53,acc54,acc55}; " +
        DeviceMath.MmaF16F32 + "{acc56,acc57,acc58,acc59}, {fa12,fa13,fa14,fa15}, {fb4,fb5}, {acc56,acc57,acc58,acc59}; " +
        DeviceMath.MmaF16F32 + "{acc60,acc61,acc62,acc63}, {fa12,fa13,fa14,fa15}, {fb6,fb7}, {acc60,acc61,acc62,acc63}; " +
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
