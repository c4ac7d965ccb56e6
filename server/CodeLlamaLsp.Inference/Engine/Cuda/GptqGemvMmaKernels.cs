// GPTQ matrix-vector kernel (batch 1 decode) on the tensor cores: the weights are dequantized exactly to fp16
// with two instructions per pair and multiplied by mma.sync at M = 1 (the activation's hi and lo fp16 halves in
// rows 0 and 1), so fp32 accumulation costs no per-weight conversions. Reads the same buffers as GptqGemvKernels.
// Experimental: correct, but on the H200 it ran at half the SIMT kernel's speed (docs/performance.md), so it is
// selected only by CODELLAMA_GEMV=mma.
using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime.Cuda;

namespace CodeLlamaLsp.Inference.Engine.Cuda;

/// <summary>Per-lane state of <see cref="GptqGemvMmaKernels.Gemv"/>: the four n8 tiles' group sums, their scaled totals and the group's zeros.</summary>
internal struct GemvMmaState
{
    public MmaFragment P0;
    public MmaFragment P1;
    public MmaFragment P2;
    public MmaFragment P3;

    /// <summary>Scaled totals of C-fragment columns 2 * tig (T0..T3, one per tile) and 2 * tig + 1 (T4..T7).</summary>
    public float T0;
    public float T1;
    public float T2;
    public float T3;
    public float T4;
    public float T5;
    public float T6;
    public float T7;

    /// <summary>Group whose sums P holds, -1 before the first chunk.</summary>
    public int Group;

    /// <summary>-(1024 + zero) per tile, both lanes (pairs read at shift 0 or 8).</summary>
    public uint Nz0;
    public uint Nz1;
    public uint Nz2;
    public uint Nz3;

    /// <summary>-(64 + zero) per tile, both lanes (4-bit pairs read from the high nibble of a byte, times 1/16).</summary>
    public uint Nh0;
    public uint Nh1;
    public uint Nh2;
    public uint Nh3;
}

/// <summary>
/// GPTQ GEMV through mma.sync.m16n8k16 at M = 1. Launch geometry: grid (rows * ceil(out / 32)), group
/// <see cref="BlockThreads"/> threads; block b serves input row b % rows and the 32 output columns of tile b / rows,
/// its 8 warps split the packed rows (K) into contiguous ranges of 4-word chunks and reduce through shared memory.
/// Lane (gid = lane / 4, tig = lane % 4) loads 16 bytes per chunk: packed word row w + tig, columns 4 gid .. 4 gid + 3
/// (a warp reads 4 rows of 128 contiguous bytes). Column 4 gid + t is column gid of n8 tile t, and word row
/// w + tig holds the mma k pairs of thread tig, so each loaded word is already a B fragment:
/// pair j of a word is the half2 (q_j, q_{j + rpw/2}), dequantized exactly without shifts for 4-bit:
/// j = 0: (q &amp; 0x000F000F) | 0x6400 + -(1024 + z); j = 1: ((q &amp; 0x00F000F0) | 0x6400) * 1/16 + -(64 + z);
/// j = 2, 3: the same on q &gt;&gt; 8 (8-bit: pairs 0 and 1 from q and q &gt;&gt; 8 with mask 0x00FF00FF).
/// A 4-bit word feeds two k16 steps (pairs 0, 1 then 2, 3), an 8-bit word one. The A fragment is zero except
/// row 0 (fp16 activations, or the hi half of the fp32 ones in precise mode) and row 1 (the lo half x - hi),
/// held by lanes 0..3 and 4..7; the activation pairs use the same layout as the weight pairs (ActivationLayout).
/// mma sums of one group are scaled per column in fp32 and added to the totals; rows 0 and 1 are added at the end.
/// On ILGPU's CPU accelerator (tests) the mma is emulated through shared memory with the same fragment layout.
/// </summary>
internal static class GptqGemvMmaKernels
{
    public const int BlockThreads = 256;
    public const int ColumnsPerBlock = 32;
    private const int Warps = BlockThreads / 32;

    /// <summary>Shared words per warp for the CPU mma emulation: A fragments (32 x 4) and B fragments (32 x 2).</summary>
    private const int ScratchPerWarp = 192;

    private const uint Magic = 0x64006400u;

    public static void Gemv(GptqGemvArgs a)
    {
        int tid = Group.IdxX;
        int warp = tid / 32;
        int lane = tid % 32;
        int gid = lane / 4;
        int tig = lane % 4;
        int row = Grid.IdxX % a.Rows;
        int tile = Grid.IdxX / a.Rows;
        int colBase = tile * ColumnsPerBlock;
        int col0 = colBase + (4 * gid);
        int rowsPerWord = 32 / a.Bits;
        int words = a.InFeatures / rowsPerWord;
        int chunks = words / 4;
        int chunksPerWarp = (chunks + Warps - 1) / Warps;
        int w0 = warp * chunksPerWarp * 4;
        int w1 = XMin(words, w0 + (chunksPerWarp * 4));

        // Same trip count in every warp so the CPU emulation's barriers match; chunks past w1 are skipped on CUDA.
        int iterations = (chunksPerWarp + 3) / 4;
        var scratch = SharedMemory.Allocate<uint>(Warps * ScratchPerWarp);
        var warpScratch = scratch.SubView(warp * ScratchPerWarp, ScratchPerWarp);
        var st = default(GemvMmaState);
        st.Group = -1;
        for (int it = 0; it < iterations; it++)
        {
            // Four independent 16-byte weight loads issued before any use: 64 bytes in flight per thread.
            int w = w0 + (it * 16);
            var q0 = LoadWeights(a, w + tig, col0, w < w1);
            var q1 = LoadWeights(a, w + 4 + tig, col0, w + 4 < w1);
            var q2 = LoadWeights(a, w + 8 + tig, col0, w + 8 < w1);
            var q3 = LoadWeights(a, w + 12 + tig, col0, w + 12 < w1);
            st = Chunk(st, a, q0, w, w1, row, col0, colBase, gid, tig, lane, warpScratch);
            st = Chunk(st, a, q1, w + 4, w1, row, col0, colBase, gid, tig, lane, warpScratch);
            st = Chunk(st, a, q2, w + 8, w1, row, col0, colBase, gid, tig, lane, warpScratch);
            st = Chunk(st, a, q3, w + 12, w1, row, col0, colBase, gid, tig, lane, warpScratch);
        }

        if (st.Group >= 0)
        {
            st = Flush(st, a, colBase, gid, tig);
        }

        // Rows 0 (hi) and 1 (lo) of every warp: lanes 0..7 hold the block's 32 columns twice.
        var sums = SharedMemory.Allocate<float>(Warps * 2 * ColumnsPerBlock);
        if (gid < 2)
        {
            int at = ((warp * 2) + gid) * ColumnsPerBlock;
            int c = 8 * tig;
            sums[at + c] = st.T0;
            sums[at + c + 1] = st.T1;
            sums[at + c + 2] = st.T2;
            sums[at + c + 3] = st.T3;
            sums[at + c + 4] = st.T4;
            sums[at + c + 5] = st.T5;
            sums[at + c + 6] = st.T6;
            sums[at + c + 7] = st.T7;
        }

        Group.Barrier();
        if (tid < ColumnsPerBlock)
        {
            int col = colBase + tid;
            if (col < a.OutFeatures)
            {
                float sum = 0f;
                for (int k = 0; k < Warps * 2; k++)
                {
                    sum += sums[(k * ColumnsPerBlock) + tid];
                }

                GptqGemvKernels.StoreOutput(a, row, col, sum);
            }
        }
    }

    /// <summary>Columns col0 .. col0 + 3 of packed word row <paramref name="w"/>, or zeros past the end.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Words4 LoadWeights(GptqGemvArgs a, int w, int col0, bool valid) =>
        valid && col0 < a.OutFeatures ? DeviceMath.Load4(a.QWeight, ((long)w * a.OutFeatures) + col0) : default;

    /// <summary>The 4 packed word rows from <paramref name="w"/> (word w + tig in this lane): one or two k16 steps of all four tiles.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static GemvMmaState Chunk(GemvMmaState st, GptqGemvArgs a, Words4 q, int w, int w1, int row, int col0, int colBase, int gid, int tig, int lane, ArrayView<uint> scratch)
    {
        bool valid = w < w1;
        if (!valid && CudaAsm.IsSupported)
        {
            return st;
        }

        int rowsPerWord = 32 / a.Bits;
        if (valid)
        {
            // Chunks never straddle a group: GroupSize is a multiple of 4 packed words (checked on the host).
            int g = w / (a.GroupSize / rowsPerWord);
            if (g != st.Group)
            {
                if (st.Group >= 0)
                {
                    st = Flush(st, a, colBase, gid, tig);
                }

                st.P0 = default;
                st.P1 = default;
                st.P2 = default;
                st.P3 = default;
                st.Group = g;
                st = LoadZeros(st, a, g, col0, rowsPerWord);
            }
        }

        var x = LoadActivations(a, row, w + tig, gid, valid);
        if (a.Bits == 4)
        {
            // Step 0: pairs 0 and 1 (low byte of each half), step 1: pairs 2 and 3 (q >> 8).
            var a0 = default(Words4);
            a0.X = x.X;
            a0.Z = x.Y;
            var a1 = default(Words4);
            a1.X = x.Z;
            a1.Z = x.W;
            st.P0 = MmaAny(st.P0, a0, LowNibbles(q.X, st.Nz0), HighNibbles(q.X, st.Nh0), scratch, lane);
            st.P1 = MmaAny(st.P1, a0, LowNibbles(q.Y, st.Nz1), HighNibbles(q.Y, st.Nh1), scratch, lane);
            st.P2 = MmaAny(st.P2, a0, LowNibbles(q.Z, st.Nz2), HighNibbles(q.Z, st.Nh2), scratch, lane);
            st.P3 = MmaAny(st.P3, a0, LowNibbles(q.W, st.Nz3), HighNibbles(q.W, st.Nh3), scratch, lane);
            st.P0 = MmaAny(st.P0, a1, LowNibbles(q.X >> 8, st.Nz0), HighNibbles(q.X >> 8, st.Nh0), scratch, lane);
            st.P1 = MmaAny(st.P1, a1, LowNibbles(q.Y >> 8, st.Nz1), HighNibbles(q.Y >> 8, st.Nh1), scratch, lane);
            st.P2 = MmaAny(st.P2, a1, LowNibbles(q.Z >> 8, st.Nz2), HighNibbles(q.Z >> 8, st.Nh2), scratch, lane);
            st.P3 = MmaAny(st.P3, a1, LowNibbles(q.W >> 8, st.Nz3), HighNibbles(q.W >> 8, st.Nh3), scratch, lane);
        }
        else
        {
            var a0 = default(Words4);
            a0.X = x.X;
            a0.Z = x.Y;
            st.P0 = MmaAny(st.P0, a0, Bytes(q.X, st.Nz0), Bytes(q.X >> 8, st.Nz0), scratch, lane);
            st.P1 = MmaAny(st.P1, a0, Bytes(q.Y, st.Nz1), Bytes(q.Y >> 8, st.Nz1), scratch, lane);
            st.P2 = MmaAny(st.P2, a0, Bytes(q.Z, st.Nz2), Bytes(q.Z >> 8, st.Nz2), scratch, lane);
            st.P3 = MmaAny(st.P3, a0, Bytes(q.W, st.Nz3), Bytes(q.W >> 8, st.Nz3), scratch, lane);
        }

        return st;
    }

    /// <summary>(q_j, q_{j+4}) - zero for the pair in bits 0..3 of each half: exact in fp16.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint LowNibbles(uint q, uint negZero) => DeviceMath.Half2AddAny((q & 0x000F000Fu) | Magic, negZero);

    /// <summary>The pair in bits 4..7 of each half: 1024 + 16 q, times 1/16, minus 64 + zero; exact in fp16.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint HighNibbles(uint q, uint negZero64) => DeviceMath.Half2FmaSixteenth((q & 0x00F000F0u) | Magic, negZero64);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Bytes(uint q, uint negZero) => DeviceMath.Half2AddAny((q & 0x00FF00FFu) | Magic, negZero);

    /// <summary>
    /// The lane's A words for packed word <paramref name="w"/>: its activation pairs (X..W = pairs 0..3; 8-bit uses X, Y),
    /// as fp16 in row 0 (lanes 0..3), the lo half of the fp32 values in row 1 (lanes 4..7, precise mode), else zero.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Words4 LoadActivations(GptqGemvArgs a, int row, int w, int gid, bool valid)
    {
        var r = default(Words4);
        if (gid >= 2 || !valid || (gid == 1 && a.Precise == 0))
        {
            return r;
        }

        int pairs = 16 / a.Bits;
        long at = ((long)row * (a.InFeatures / 2)) + ((long)w * pairs);
        if (a.Precise == 0)
        {
            if (pairs == 4)
            {
                return DeviceMath.Load4(a.Input, at);
            }

            r.X = a.Input[at];
            r.Y = a.Input[at + 1];
            return r;
        }

        var f0 = DeviceMath.Load4(a.Input, 2 * at);
        var s0 = DeviceMath.SplitHalfPair(Interop.IntAsFloat(f0.X), Interop.IntAsFloat(f0.Y));
        var s1 = DeviceMath.SplitHalfPair(Interop.IntAsFloat(f0.Z), Interop.IntAsFloat(f0.W));
        r.X = gid == 0 ? s0.X : s0.Y;
        r.Y = gid == 0 ? s1.X : s1.Y;
        if (pairs == 4)
        {
            var f1 = DeviceMath.Load4(a.Input, (2 * at) + 4);
            var s2 = DeviceMath.SplitHalfPair(Interop.IntAsFloat(f1.X), Interop.IntAsFloat(f1.Y));
            var s3 = DeviceMath.SplitHalfPair(Interop.IntAsFloat(f1.Z), Interop.IntAsFloat(f1.W));
            r.Z = gid == 0 ? s2.X : s2.Y;
            r.W = gid == 0 ? s3.X : s3.Y;
        }

        return r;
    }

    /// <summary>Zeros of the lane's 4 columns (one packed word: out % rpw == 0 and col0 % 4 == 0) as negated fp16 pairs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static GemvMmaState LoadZeros(GemvMmaState st, GptqGemvArgs a, int g, int col0, int rowsPerWord)
    {
        if (col0 >= a.OutFeatures)
        {
            return st;
        }

        int bits = a.Bits;
        uint word = a.QZeros[((long)g * (a.OutFeatures / rowsPerWord)) + (col0 / rowsPerWord)];
        int shift = bits * (col0 % rowsPerWord);
        uint zmask = (1u << bits) - 1u;
        uint off = (uint)a.ZeroOffset;
        uint z0 = ((word >> shift) & zmask) + off;
        uint z1 = ((word >> (shift + bits)) & zmask) + off;
        uint z2 = ((word >> (shift + (2 * bits))) & zmask) + off;
        uint z3 = ((word >> (shift + (3 * bits))) & zmask) + off;
        st.Nz0 = NegPair(0x6400u + z0);
        st.Nz1 = NegPair(0x6400u + z1);
        st.Nz2 = NegPair(0x6400u + z2);
        st.Nz3 = NegPair(0x6400u + z3);

        // 64 + z has exponent 6 (0x5400 = 64.0, one unit = 1/16) for z < 64, so its bits are 0x5400 + 16 z.
        st.Nh0 = NegPair(0x5400u + (z0 << 4));
        st.Nh1 = NegPair(0x5400u + (z1 << 4));
        st.Nh2 = NegPair(0x5400u + (z2 << 4));
        st.Nh3 = NegPair(0x5400u + (z3 << 4));
        return st;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint NegPair(uint halfBits)
    {
        uint h = 0x8000u | halfBits;
        return h | (h << 16);
    }

    /// <summary>
    /// Totals += group sums * scale. Lane (gid, tig) holds C columns 2 tig and 2 tig + 1 of each tile, that is
    /// block columns 8 tig + t and 8 tig + 4 + t: the 8 consecutive scales from 8 tig. Only rows 0 and 1 are non-zero.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static GemvMmaState Flush(GemvMmaState st, GptqGemvArgs a, int colBase, int gid, int tig)
    {
        if (gid >= 2)
        {
            return st;
        }

        int c = colBase + (8 * tig);
        long at = ((long)st.Group * a.OutFeatures) + c;
        var s = default(Words4);
        if (c + 8 <= a.OutFeatures && (a.OutFeatures & 7) == 0)
        {
            s = a.Scales.Cast<Words4>()[at / 8];
        }
        else
        {
            s.X = ScaleAt(a, at, c) | (ScaleAt(a, at + 1, c + 1) << 16);
            s.Y = ScaleAt(a, at + 2, c + 2) | (ScaleAt(a, at + 3, c + 3) << 16);
            s.Z = ScaleAt(a, at + 4, c + 4) | (ScaleAt(a, at + 5, c + 5) << 16);
            s.W = ScaleAt(a, at + 6, c + 6) | (ScaleAt(a, at + 7, c + 7) << 16);
        }

        st.T0 += st.P0.C0 * DeviceMath.Low(s.X);
        st.T1 += st.P1.C0 * DeviceMath.High(s.X);
        st.T2 += st.P2.C0 * DeviceMath.Low(s.Y);
        st.T3 += st.P3.C0 * DeviceMath.High(s.Y);
        st.T4 += st.P0.C1 * DeviceMath.Low(s.Z);
        st.T5 += st.P1.C1 * DeviceMath.High(s.Z);
        st.T6 += st.P2.C1 * DeviceMath.Low(s.W);
        st.T7 += st.P3.C1 * DeviceMath.High(s.W);
        return st;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint ScaleAt(GptqGemvArgs a, long at, int col) => col < a.OutFeatures ? a.Scales[at] : 0u;

    /// <summary>c + A * B for one m16n8k16 tile; on the CPU accelerator by loops over the fragments staged in shared memory.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static MmaFragment MmaAny(MmaFragment c, Words4 x, uint b0, uint b1, ArrayView<uint> scratch, int lane)
    {
        if (CudaAsm.IsSupported)
        {
            return DeviceMath.Mma(c, x, b0, b1);
        }

        scratch[(lane * 4) + 0] = x.X;
        scratch[(lane * 4) + 1] = x.Y;
        scratch[(lane * 4) + 2] = x.Z;
        scratch[(lane * 4) + 3] = x.W;
        scratch[128 + (lane * 2)] = b0;
        scratch[128 + (lane * 2) + 1] = b1;
        Group.Barrier();
        int gid = lane / 4;
        int tig = lane % 4;
        c.C0 += FragmentDot(scratch, gid, 2 * tig);
        c.C1 += FragmentDot(scratch, gid, (2 * tig) + 1);
        c.C2 += FragmentDot(scratch, gid + 8, 2 * tig);
        c.C3 += FragmentDot(scratch, gid + 8, (2 * tig) + 1);
        Group.Barrier();
        return c;
    }

    /// <summary>Row r of A times column n of B over the 8 k pairs, from the PTX fragment layout of m16n8k16 (f16).</summary>
    private static float FragmentDot(ArrayView<uint> scratch, int r, int n)
    {
        float sum = 0f;
        for (int p = 0; p < 8; p++)
        {
            uint x = scratch[((((r % 8) * 4) + (p % 4)) * 4) + (r < 8 ? 0 : 1) + (p < 4 ? 0 : 2)];
            uint b = scratch[128 + (((n * 4) + (p % 4)) * 2) + (p < 4 ? 0 : 1)];
            sum += (DeviceMath.Low(x) * DeviceMath.Low(b)) + (DeviceMath.High(x) * DeviceMath.High(b));
        }

        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int XMin(int a, int b) => a < b ? a : b;
}
