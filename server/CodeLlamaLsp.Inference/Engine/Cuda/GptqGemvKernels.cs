// GPTQ matrix-vector kernels (4-bit and 8-bit, any group size that is a multiple of four packed words):
// one pass over the packed weights per input row, memory-bound at batch 1. Also the fp16 dense GEMV used
// for lm_head and unquantized checkpoints, which keeps four 16-byte weight loads in flight per lane and serves up to
// four input rows per weight load (a version with one load in flight per lane read 1.12 TB/s on an H200).
using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime.Cuda;

namespace CodeLlamaLsp.Inference.Engine.Cuda;

/// <summary>Arguments of <see cref="GptqGemvKernels.Gemv"/>.</summary>
internal struct GptqGemvArgs
{
    /// <summary>[in / rpw, out] packed words, rows sorted by group (act-order resolved at load time).</summary>
    public ArrayView<uint> QWeight;

    /// <summary>[groups, out / rpw] packed zeros, same bit order as qweight columns.</summary>
    public ArrayView<uint> QZeros;

    /// <summary>[groups, out] fp16 bit patterns.</summary>
    public ArrayView<ushort> Scales;

    /// <summary>[out] fp16 bias, or a dummy when <see cref="HasBias"/> is 0.</summary>
    public ArrayView<ushort> Bias;

    /// <summary>[rows, in / 2] half2 words in the GPTQ activation layout (<see cref="ActivationLayout"/>).</summary>
    public ArrayView<uint> Input;

    /// <summary>[rows, OutputStride] fp32; columns OutputOffset .. OutputOffset + out are written.</summary>
    public ArrayView<float> Output;

    public int InFeatures;
    public int OutFeatures;
    public int Bits;
    public int GroupSize;

    /// <summary>1 for GPTQ v1 checkpoints (stored zero + 1), 0 for v2.</summary>
    public int ZeroOffset;
    public int HasBias;

    /// <summary>Non-zero: output += result (fuses the residual add). Zero: output = result.</summary>
    public int Accumulate;
    public int OutputStride;
    public int OutputOffset;
    public int ColumnsPerBlock;

    /// <summary>Input rows in this launch.</summary>
    public int Rows;

    /// <summary>Device byte address of Input[0] (the GEMM's cp.async needs raw addresses; set by the launcher).</summary>
    public long InputAddress;

    /// <summary>Device byte address of QWeight[0] (GEMM only, as <see cref="InputAddress"/>).</summary>
    public long QWeightAddress;
}

/// <summary>Four fp32 partial sums, one per output column a thread owns.</summary>
internal struct Acc4
{
    public float A;
    public float B;
    public float C;
    public float D;
}

/// <summary>
/// GPTQ GEMV. Launch geometry: grid (rows * ceil(out / ColumnsPerBlock)), group <see cref="BlockThreads"/> threads;
/// block b serves row b % rows and column tile b / rows, so with several rows (prefill) the blocks that
/// share a weight tile run back to back and all but the first read it from L2.
/// ColumnsPerBlock is 32, 64 or 128 (the widest that still gives every multiprocessor two blocks): a thread owns 4
/// adjacent output columns (one 16-byte load per packed word row), ColumnsPerBlock / 4 threads span the columns and
/// the remaining threads split the packed rows (K) into contiguous ranges of whole 4-word chunks, then reduce
/// through shared memory in a fixed order (no atomics: deterministic).
/// Bit layout read: qweight word [w, n] holds inputs w*rpw .. w*rpw + rpw - 1 of column n, low bits first,
/// rpw = 32 / bits; zero of group g, column n sits in qzeros[g, n / rpw] at bit bits * (n % rpw).
/// Two values are dequantized per instruction: (word &gt;&gt; bits*j) &amp; 0x000F000F (or 0x00FF00FF) | 0x64006400
/// is the half2 (1024 + q_j, 1024 + q_{j+rpw/2}); adding -(1024 + zero) gives q - zero exactly, and fma.f16x2
/// multiplies it with the matching fp16 activation pair. Group sums are fp32 and scaled once per group.
/// </summary>
internal static class GptqGemvKernels
{
    public const int BlockThreads = 256;

    /// <summary>Packed words per chunk: a chunk never straddles a group (GroupSize is a multiple of 4 words, checked on the host).</summary>
    private const int ChunkWords = 4;

    /// <summary>
    /// The decode GEMV over fp16 activations (the GPTQ input layout of <see cref="ActivationLayout"/>). Each thread
    /// owns 4 adjacent columns and a contiguous slice of 4-word chunks; per chunk it issues four 16-byte weight loads,
    /// the chunk's activations, one zero word and one 8-byte scale load, and it issues the next chunk's loads before it
    /// computes the current one (software pipelining: two chunks, 128 weight bytes per thread, in flight). Per packed
    /// word and column the dequantization never converts: lop3 puts two nibbles into fp16 1024 + q, one add/fma.f16x2
    /// removes the offset and the zero exactly, four fma.f16x2 multiply with the activations, and the half2 sum is
    /// flushed to fp32 once per word (8 products), so an fp16 sum never spans more than 8 terms. Group sums are scaled
    /// in fp32. The K slices of a block are reduced through shared memory in a fixed order: no atomics, deterministic.
    /// </summary>
    public static void Gemv(GptqGemvArgs a)
    {
        int colThreads = a.ColumnsPerBlock / 4;
        int kSlices = BlockThreads / colThreads;
        int tid = Group.IdxX;
        int ct = tid % colThreads;
        int kt = tid / colThreads;
        int row = Grid.IdxX % a.Rows;
        int tile = Grid.IdxX / a.Rows;
        int col0 = (tile * a.ColumnsPerBlock) + (ct * 4);
        int chunks = a.InFeatures / (32 / a.Bits) / ChunkWords;
        int perSlice = (chunks + kSlices - 1) / kSlices;
        int c0 = kt * perSlice;
        int c1 = XMin(chunks, c0 + perSlice);

        var total = default(Acc4);
        if (col0 < a.OutFeatures && c0 < c1)
        {
            // One test of the backend for the whole slice, so the CUDA loop body is one straight-line block.
            total = CudaAsm.IsSupported ? SliceCuda(a, row, col0, c0, c1) : SliceManaged(a, row, col0, c0, c1);
        }

        var shared = SharedMemory.Allocate<float>(1024);
        int slot = (kt * a.ColumnsPerBlock) + (ct * 4);
        shared[slot] = total.A;
        shared[slot + 1] = total.B;
        shared[slot + 2] = total.C;
        shared[slot + 3] = total.D;
        Group.Barrier();
        if (tid < a.ColumnsPerBlock)
        {
            int col = (tile * a.ColumnsPerBlock) + tid;
            if (col < a.OutFeatures)
            {
                float sum = 0f;
                for (int k = 0; k < kSlices; k++)
                {
                    sum += shared[(k * a.ColumnsPerBlock) + tid];
                }

                StoreOutput(a, row, col, sum);
            }
        }
    }

    /// <summary>Adds the bias (if any) to one finished output and writes it, or adds it to what is there (fused residual).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void StoreOutput(GptqGemvArgs a, int row, int col, float sum) =>
        StoreLinearOutput(a.Output, a.Bias, a.HasBias, a.Accumulate, a.OutputStride, a.OutputOffset, row, col, sum);

    /// <summary>
    /// Every linear kernel's output store (GPTQ and dense): output[row, offset + col] = sum + bias[col], or += it when
    /// <paramref name="accumulate"/> is set (the residual add fused into o_proj and down_proj).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void StoreLinearOutput(ArrayView<float> output, ArrayView<ushort> bias, int hasBias, int accumulate, int stride, int offset, int row, int col, float sum)
    {
        if (hasBias != 0)
        {
            sum += DeviceMath.HalfBitsToFloat(bias[col]);
        }

        long o = ((long)row * stride) + offset + col;
        output[o] = accumulate != 0 ? output[o] + sum : sum;
    }

    /// <summary>
    /// One thread's K slice on CUDA: chunks c0 .. c1 - 1 of columns col0 .. col0 + 3, with the next chunk's loads in
    /// flight while the current one is computed. Every index advances by addition: no division or 64-bit multiply in
    /// the loop (a first version recomputed them per chunk and spent a third of its instructions there).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Acc4 SliceCuda(GptqGemvArgs a, int row, int col0, int c0, int c1)
    {
        int n = a.OutFeatures;
        int bits = a.Bits;
        int rowsPerWord = 32 / bits;
        int chunksPerGroup = a.GroupSize / rowsPerWord / ChunkWords;
        int g = c0 / chunksPerGroup;
        var cursor = new ChunkCursor
        {
            Weight = ((long)c0 * n) + (col0 / 4),
            Input = (((long)row * (a.InFeatures / 2)) + ((long)c0 * ChunkWords * (rowsPerWord / 2))) / 4,
            Zero = ((long)g * (n / rowsPerWord)) + (col0 / rowsPerWord),
            Scale = (((long)g * n) + col0) / 4,
            InGroup = c0 - (g * chunksPerGroup),
        };
        var step = new ChunkStep
        {
            WordRow = n / 4,
            Input = bits == 4 ? 4 : 2,
            Zero = n / rowsPerWord,
            Scale = n / 4,
            ChunksPerGroup = chunksPerGroup,
        };
        var views = new ChunkViews
        {
            Weights = a.QWeight.Cast<Words4>(),
            Input = a.Input.Cast<Words4>(),
            Zeros = a.QZeros,
            Scales = a.Scales.Cast<Words2>(),
        };

        // -(1024 + z) and -(64 + z) in both fp16 lanes are z * 0x00010001 + K1024 and z * 0x00100010 + K64, where the
        // constants carry the sign, 0x6400 = 1024.0 or 0x5400 = 64.0 (16 z is z in 64.0's mantissa) and the v1 zero offset.
        uint off = (uint)a.ZeroOffset;
        uint k1024 = 0xE400E400u + (off * 0x00010001u);
        uint k64 = 0xD400D400u + (off * 0x00100010u);
        int zeroShift = bits * (col0 % rowsPerWord);

        var total = default(Acc4);
        var current = LoadChunk(views, cursor, step, bits);
        for (int c = c0; c < c1; c++)
        {
            // The last iteration reloads its own chunk rather than branching around the load.
            if (c + 1 < c1)
            {
                cursor = Advance(cursor, step);
            }

            var next = LoadChunk(views, cursor, step, bits);
            total = bits == 4 ? AddChunk4(current, total, zeroShift, k1024, k64) : AddChunk8(current, total, zeroShift, k1024);
            current = next;
        }

        return total;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ChunkCursor Advance(ChunkCursor c, ChunkStep s)
    {
        c.Weight += 4L * s.WordRow;
        c.Input += s.Input;
        c.InGroup++;
        if (c.InGroup == s.ChunksPerGroup)
        {
            c.InGroup = 0;
            c.Zero += s.Zero;
            c.Scale += s.Scale;
        }

        return c;
    }

    /// <summary>The loads of one chunk: weights of 4 word rows x 4 columns, activations, zero word, scales.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static GemvChunk LoadChunk(ChunkViews v, ChunkCursor c, ChunkStep s, int bits)
    {
        var ch = default(GemvChunk);
        ch.Q0 = v.Weights[c.Weight];
        ch.Q1 = v.Weights[c.Weight + s.WordRow];
        ch.Q2 = v.Weights[c.Weight + (2L * s.WordRow)];
        ch.Q3 = v.Weights[c.Weight + (3L * s.WordRow)];

        ch = LoadActivations(ch, v, c.Input, bits);

        ch.Zeros = v.Zeros[c.Zero];
        ch.Scales = v.Scales[c.Scale];
        return ch;
    }

    /// <summary>A chunk's activations: rpw / 2 half2 words per packed word, 16 (4-bit) or 8 (8-bit) per chunk.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static GemvChunk LoadActivations(GemvChunk ch, ChunkViews v, long input, int bits)
    {
        ch.X0 = v.Input[input];
        ch.X1 = v.Input[input + 1];
        if (bits == 4)
        {
            ch.X2 = v.Input[input + 2];
            ch.X3 = v.Input[input + 3];
        }

        return ch;
    }

    /// <summary>Adds one 4-bit chunk: 4 words x 8 inputs for each of the 4 columns, scaled by the group's scales.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Acc4 AddChunk4(GemvChunk ch, Acc4 total, int zeroShift, uint k1024, uint k64)
    {
        uint z = ch.Zeros >> zeroShift;
        total.A = ScaledWords4(ch.Q0.X, ch.Q1.X, ch.Q2.X, ch.Q3.X, z & 0xFu, k1024, k64, ch, DeviceMath.Low(ch.Scales.X), total.A);
        total.B = ScaledWords4(ch.Q0.Y, ch.Q1.Y, ch.Q2.Y, ch.Q3.Y, (z >> 4) & 0xFu, k1024, k64, ch, DeviceMath.High(ch.Scales.X), total.B);
        total.C = ScaledWords4(ch.Q0.Z, ch.Q1.Z, ch.Q2.Z, ch.Q3.Z, (z >> 8) & 0xFu, k1024, k64, ch, DeviceMath.Low(ch.Scales.Y), total.C);
        total.D = ScaledWords4(ch.Q0.W, ch.Q1.W, ch.Q2.W, ch.Q3.W, (z >> 12) & 0xFu, k1024, k64, ch, DeviceMath.High(ch.Scales.Y), total.D);
        return total;
    }

    /// <summary>total + scale * sum over the chunk's 4 words of one column (4-bit).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float ScaledWords4(uint q0, uint q1, uint q2, uint q3, uint zero, uint k1024, uint k64, GemvChunk ch, float scale, float total)
    {
        uint nz1024 = (zero * 0x00010001u) + k1024;
        uint nz64 = (zero * 0x00100010u) + k64;
        float part = Dot4Bit(q0, nz1024, nz64, ch.X0, 0f);
        part = Dot4Bit(q1, nz1024, nz64, ch.X1, part);
        part = Dot4Bit(q2, nz1024, nz64, ch.X2, part);
        part = Dot4Bit(q3, nz1024, nz64, ch.X3, part);
        return total + (part * scale);
    }

    /// <summary>
    /// acc + sum over the 8 nibbles of <paramref name="q"/> of (q_i - zero) * x_i, with x as the 4 half2 pairs (i, i + 4)
    /// of the activation layout. Pairs 0 and 2 are (q &amp; 0x000F000F) | 0x6400 = 1024 + q, pairs 1 and 3 are
    /// (q &amp; 0x00F000F0) | 0x6400 = 1024 + 16 q, scaled by 1/16 in the same fma that removes 64 + zero: all exact.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Dot4Bit(uint q, uint negZero1024, uint negZero64, Words4 x, float acc)
    {
        CudaAsm.Emit(
            "{ .reg .b32 m1, m2, mg, s16, q8, t0, t1, t2, t3, d; .reg .f16 lo, hi; .reg .f32 flo, fhi; "
            + "mov.b32 m1, 0x000F000F; mov.b32 m2, 0x00F000F0; mov.b32 mg, 0x64006400; mov.b32 s16, 0x2C002C00; "
            + "lop3.b32 t0, %1, m1, mg, 0xEA; lop3.b32 t1, %1, m2, mg, 0xEA; shr.u32 q8, %1, 8; "
            + "lop3.b32 t2, q8, m1, mg, 0xEA; lop3.b32 t3, q8, m2, mg, 0xEA; "
            + "add.rn.f16x2 t0, t0, %2; fma.rn.f16x2 t1, t1, s16, %3; add.rn.f16x2 t2, t2, %2; fma.rn.f16x2 t3, t3, s16, %3; "
            + "mul.rn.f16x2 d, t0, %4; fma.rn.f16x2 d, t1, %5, d; fma.rn.f16x2 d, t2, %6, d; fma.rn.f16x2 d, t3, %7, d; "
            + "mov.b32 {lo, hi}, d; cvt.f32.f16 flo, lo; cvt.f32.f16 fhi, hi; add.f32 flo, flo, fhi; add.f32 %0, %8, flo; }",
            out float result,
            q,
            negZero1024,
            negZero64,
            x.X,
            x.Y,
            x.Z,
            x.W,
            acc);
        return result;
    }

    /// <summary>Adds one 8-bit chunk: 4 words x 4 inputs for each of the 4 columns, scaled by the group's scales.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Acc4 AddChunk8(GemvChunk ch, Acc4 total, int zeroShift, uint k1024)
    {
        uint z = ch.Zeros >> zeroShift;
        total.A = ScaledWords8(ch.Q0.X, ch.Q1.X, ch.Q2.X, ch.Q3.X, (z & 0xFFu) * 0x00010001u, k1024, ch, DeviceMath.Low(ch.Scales.X), total.A);
        total.B = ScaledWords8(ch.Q0.Y, ch.Q1.Y, ch.Q2.Y, ch.Q3.Y, ((z >> 8) & 0xFFu) * 0x00010001u, k1024, ch, DeviceMath.High(ch.Scales.X), total.B);
        total.C = ScaledWords8(ch.Q0.Z, ch.Q1.Z, ch.Q2.Z, ch.Q3.Z, ((z >> 16) & 0xFFu) * 0x00010001u, k1024, ch, DeviceMath.Low(ch.Scales.Y), total.C);
        total.D = ScaledWords8(ch.Q0.W, ch.Q1.W, ch.Q2.W, ch.Q3.W, (z >> 24) * 0x00010001u, k1024, ch, DeviceMath.High(ch.Scales.Y), total.D);
        return total;
    }

    /// <summary>total + scale * sum over the chunk's 4 words of one column (8-bit: two words per Dot8Bit).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float ScaledWords8(uint q0, uint q1, uint q2, uint q3, uint zeroPair, uint k1024, GemvChunk ch, float scale, float total)
    {
        uint nz = zeroPair + k1024;
        float part = Dot8Bit(q0, q1, nz, ch.X0, 0f);
        part = Dot8Bit(q2, q3, nz, ch.X1, part);
        return total + (part * scale);
    }

    /// <summary>
    /// acc + sum over the 8 bytes of two consecutive words of (q_i - zero) * x_i; x holds each word's 2 half2 pairs
    /// (i, i + 2): (q &amp; 0x00FF00FF) | 0x6400 and ((q &gt;&gt; 8) &amp; 0x00FF00FF) | 0x6400 are 1024 + q, exactly.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Dot8Bit(uint qa, uint qb, uint negZero1024, Words4 x, float acc)
    {
        CudaAsm.Emit(
            "{ .reg .b32 m, mg, s, t0, t1, t2, t3, d; .reg .f16 lo, hi; .reg .f32 flo, fhi; "
            + "mov.b32 m, 0x00FF00FF; mov.b32 mg, 0x64006400; "
            + "lop3.b32 t0, %1, m, mg, 0xEA; shr.u32 s, %1, 8; lop3.b32 t1, s, m, mg, 0xEA; "
            + "lop3.b32 t2, %2, m, mg, 0xEA; shr.u32 s, %2, 8; lop3.b32 t3, s, m, mg, 0xEA; "
            + "add.rn.f16x2 t0, t0, %3; add.rn.f16x2 t1, t1, %3; add.rn.f16x2 t2, t2, %3; add.rn.f16x2 t3, t3, %3; "
            + "mul.rn.f16x2 d, t0, %4; fma.rn.f16x2 d, t1, %5, d; fma.rn.f16x2 d, t2, %6, d; fma.rn.f16x2 d, t3, %7, d; "
            + "mov.b32 {lo, hi}, d; cvt.f32.f16 flo, lo; cvt.f32.f16 fhi, hi; add.f32 flo, flo, fhi; add.f32 %0, %8, flo; }",
            out float result,
            qa,
            qb,
            negZero1024,
            x.X,
            x.Y,
            x.Z,
            x.W,
            acc);
        return result;
    }

    /// <summary>
    /// The same slice on ILGPU's CPU accelerator (CI): plain fp32 arithmetic on the same layout, so the kernel's
    /// indexing, slicing and reduction are tested everywhere.
    /// </summary>
    private static Acc4 SliceManaged(GptqGemvArgs a, int row, int col0, int c0, int c1)
    {
        int bits = a.Bits;
        int rowsPerWord = 32 / bits;
        int pairs = rowsPerWord / 2;
        int wordsPerGroup = a.GroupSize / rowsPerWord;
        uint vmask = (1u << bits) - 1u;
        int zShift = bits * (col0 % rowsPerWord);
        var total = default(Acc4);
        for (int w = c0 * ChunkWords; w < c1 * ChunkWords; w++)
        {
            int g = w / wordsPerGroup;
            uint zword = a.QZeros[((long)g * (a.OutFeatures / rowsPerWord)) + (col0 / rowsPerWord)];
            long xAt = ((long)row * (a.InFeatures / 2)) + ((long)w * pairs);
            for (int c = 0; c < 4; c++)
            {
                uint q = a.QWeight[((long)w * a.OutFeatures) + col0 + c];
                int zero = (int)(((zword >> (zShift + (bits * c))) & vmask) + (uint)a.ZeroOffset);
                float part = 0f;
                for (int j = 0; j < pairs; j++)
                {
                    uint x = a.Input[xAt + j];
                    part += (((int)((q >> (bits * j)) & vmask) - zero) * DeviceMath.Low(x))
                        + (((int)((q >> (bits * (j + pairs))) & vmask) - zero) * DeviceMath.High(x));
                }

                float scale = DeviceMath.HalfBitsToFloat(a.Scales[((long)g * a.OutFeatures) + col0 + c]);
                if (c == 0)
                {
                    total.A += part * scale;
                }
                else if (c == 1)
                {
                    total.B += part * scale;
                }
                else if (c == 2)
                {
                    total.C += part * scale;
                }
                else
                {
                    total.D += part * scale;
                }
            }
        }

        return total;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int XMin(int a, int b) => a < b ? a : b;
}

/// <summary>Where a thread's next chunk is, in units of each view's element.</summary>
internal struct ChunkCursor
{
    public long Weight;
    public long Input;
    public long Zero;
    public long Scale;
    public int InGroup;
}

/// <summary>How far a <see cref="ChunkCursor"/> moves per chunk (Input, WordRow) and per group (Zero, Scale).</summary>
internal struct ChunkStep
{
    public long WordRow;
    public long Input;
    public long Zero;
    public long Scale;
    public int ChunksPerGroup;
}

/// <summary>The GEMV's inputs as the element types the chunk loads read.</summary>
internal struct ChunkViews
{
    public ArrayView<Words4> Weights;
    public ArrayView<Words4> Input;
    public ArrayView<uint> Zeros;
    public ArrayView<Words2> Scales;
}

/// <summary>What one thread loads for one 4-word chunk of the GEMV (see <see cref="GptqGemvKernels.Gemv"/>).</summary>
internal struct GemvChunk
{
    /// <summary>Packed word rows w .. w + 3, each holding the thread's 4 columns.</summary>
    public Words4 Q0;
    public Words4 Q1;
    public Words4 Q2;
    public Words4 Q3;

    /// <summary>The chunk's activations as half2 words: 4 per word row for 4-bit (X0..X3), 2 per word row for 8-bit (X0, X1).</summary>
    public Words4 X0;
    public Words4 X1;
    public Words4 X2;
    public Words4 X3;

    /// <summary>The packed zero word holding the 4 columns' zeros for the chunk's group.</summary>
    public uint Zeros;

    /// <summary>The 4 columns' fp16 scales for the chunk's group.</summary>
    public Words2 Scales;
}

/// <summary>Arguments of <see cref="DenseGemvKernels.Gemv"/>.</summary>
internal struct DenseGemvArgs
{
    /// <summary>[out, in] fp16 weights as half2 words ([out, in / 2]).</summary>
    public ArrayView<uint> Weight;

    /// <summary>[rows, in / 2] half2 words, natural order.</summary>
    public ArrayView<uint> Input;

    /// <summary>[rows, OutputStride] fp32.</summary>
    public ArrayView<float> Output;

    /// <summary>[out] fp16 bias or dummy.</summary>
    public ArrayView<ushort> Bias;
    public int InFeatures;
    public int OutFeatures;
    public int HasBias;
    public int Accumulate;
    public int OutputStride;
    public int OutputOffset;

    /// <summary>Input rows in this launch (set by the launcher).</summary>
    public int Rows;
}

/// <summary>
/// fp16 dense GEMV (lm_head, unquantized projections), built to stream the weights at memory bandwidth for 1-16 rows.
/// Launch geometry: grid (ceil(out / <see cref="RowsPerBlock"/>) * rowGroups), group 256 threads = 8 warps, one warp
/// per output feature (weight row); rowGroups = ceil(rows / <see cref="InputRowsPerBlock"/>), and block b serves input
/// rows 4 (b % rowGroups) .. + 3 and weight tile b / rowGroups, so the blocks sharing a weight tile run back to back and
/// all but the first read it from L2. Each lane reads the weight row in 16-byte chunks (8 fp16), lane-strided so a
/// warp's load is 512 contiguous bytes, and issues four independent chunk loads (64 bytes per lane, 2 KB per warp)
/// before any math: the first version had one load in flight per lane and was latency-bound at 1.12 TB/s on an H200
/// (468 us for the 32000 x 8192 lm_head). The activations (16 KB per row) come from L1/L2. A chunk's weights are
/// converted to fp32 once and used for all of the block's input rows; products accumulate in fp32 with explicit
/// fma.rn.f32, each lane over its chunks in increasing order, then a fixed warp shuffle tree: no atomics, and a row's
/// bits do not depend on the other rows of the launch (each row's chain is the same alone and batched).
/// Reads weight [out, in] row-major (the HF layout). Requires in % 8 == 0 and 16-byte aligned rows.
/// </summary>
internal static class DenseGemvKernels
{
    public const int BlockThreads = 256;

    /// <summary>Output features (weight rows) per block: one per warp.</summary>
    public const int RowsPerBlock = 8;

    /// <summary>Input rows a block computes against each weight chunk it loads.</summary>
    public const int InputRowsPerBlock = 4;

    /// <summary>Lanes of a warp: consecutive lanes read consecutive 16-byte chunks.</summary>
    private const int Lanes = 32;

    public static void Gemv(DenseGemvArgs a)
    {
        int rowGroups = (a.Rows + InputRowsPerBlock - 1) / InputRowsPerBlock;
        int rowGroup = Grid.IdxX % rowGroups;
        int tile = Grid.IdxX / rowGroups;
        int warp = Group.IdxX / Lanes;
        int lane = Group.IdxX % Lanes;
        int n = (tile * RowsPerBlock) + warp;
        int r0 = rowGroup * InputRowsPerBlock;
        int nr = a.Rows - r0;
        nr = nr < InputRowsPerBlock ? nr : InputRowsPerBlock;

        var acc = default(Acc4);
        if (n < a.OutFeatures)
        {
            acc = Slice(a, n, r0, nr, lane);
        }

        // nr is the same for the whole warp, so these branches never split it before a shuffle.
        acc.A = WarpSum(acc.A);
        if (nr > 1)
        {
            acc.B = WarpSum(acc.B);
        }

        if (nr > 2)
        {
            acc.C = WarpSum(acc.C);
        }

        if (nr > 3)
        {
            acc.D = WarpSum(acc.D);
        }

        if (lane == 0 && n < a.OutFeatures)
        {
            Store(a, r0, n, acc.A);
            if (nr > 1)
            {
                Store(a, r0 + 1, n, acc.B);
            }

            if (nr > 2)
            {
                Store(a, r0 + 2, n, acc.C);
            }

            if (nr > 3)
            {
                Store(a, r0 + 3, n, acc.D);
            }
        }
    }

    /// <summary>
    /// One lane's part of weight row n against input rows r0 .. r0 + nr - 1: chunks lane, lane + 32, ..., in groups of
    /// four whose weight loads are all issued before the first is used, then the remaining chunks one by one. The
    /// grouping does not change the arithmetic: each row's sum runs over the lane's chunks in increasing order.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Acc4 Slice(DenseGemvArgs a, int n, int r0, int nr, int lane)
    {
        var w = a.Weight.Cast<Words4>();
        var x = a.Input.Cast<Words4>();
        int chunks = a.InFeatures / 8;
        long wAt = (long)n * chunks;
        long xAt = (long)r0 * chunks;
        var acc = default(Acc4);
        int c = lane;
        for (; c + (3 * Lanes) < chunks; c += 4 * Lanes)
        {
            var w0 = w[wAt + c];
            var w1 = w[wAt + c + Lanes];
            var w2 = w[wAt + c + (2 * Lanes)];
            var w3 = w[wAt + c + (3 * Lanes)];

            // The first row's activations are loaded up front too (the other rows' loads sit behind nr tests).
            var x0 = x[xAt + c];
            var x1 = x[xAt + c + Lanes];
            var x2 = x[xAt + c + (2 * Lanes)];
            var x3 = x[xAt + c + (3 * Lanes)];
            acc = Chunk(w0, x0, x, xAt + c, chunks, nr, acc);
            acc = Chunk(w1, x1, x, xAt + c + Lanes, chunks, nr, acc);
            acc = Chunk(w2, x2, x, xAt + c + (2 * Lanes), chunks, nr, acc);
            acc = Chunk(w3, x3, x, xAt + c + (3 * Lanes), chunks, nr, acc);
        }

        for (; c < chunks; c += Lanes)
        {
            acc = Chunk(w[wAt + c], x[xAt + c], x, xAt + c, chunks, nr, acc);
        }

        return acc;
    }

    /// <summary>
    /// Adds one 16-byte weight chunk times the same chunk of each of the nr input rows: <paramref name="first"/> (the
    /// first row's, loaded by the caller) and x[at + r * chunks] for the others.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Acc4 Chunk(Words4 w, Words4 first, ArrayView<Words4> x, long at, int chunks, int nr, Acc4 acc)
    {
        // Converted once for all rows; fp16 to fp32 is exact, so this is Half2Dot's arithmetic.
        var f = new Weights8
        {
            W0 = DeviceMath.Low(w.X),
            W1 = DeviceMath.High(w.X),
            W2 = DeviceMath.Low(w.Y),
            W3 = DeviceMath.High(w.Y),
            W4 = DeviceMath.Low(w.Z),
            W5 = DeviceMath.High(w.Z),
            W6 = DeviceMath.Low(w.W),
            W7 = DeviceMath.High(w.W),
        };
        acc.A = Dot(f, first, acc.A);
        if (nr > 1)
        {
            acc.B = Dot(f, x[at + chunks], acc.B);
        }

        if (nr > 2)
        {
            acc.C = Dot(f, x[at + (2L * chunks)], acc.C);
        }

        if (nr > 3)
        {
            acc.D = Dot(f, x[at + (3L * chunks)], acc.D);
        }

        return acc;
    }

    /// <summary>acc + the 8 products of a converted weight chunk and an fp16 activation chunk, in element order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Dot(Weights8 f, Words4 x, float acc)
    {
        acc = PairDot(f.W0, f.W1, x.X, acc);
        acc = PairDot(f.W2, f.W3, x.Y, acc);
        acc = PairDot(f.W4, f.W5, x.Z, acc);
        return PairDot(f.W6, f.W7, x.W, acc);
    }

    /// <summary>acc + lo * lo(x) + hi * hi(x): two fma.rn.f32 in that order on CUDA (no contraction choices left to a compiler).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float PairDot(float lo, float hi, uint x, float acc)
    {
        if (CudaAsm.IsSupported)
        {
            CudaAsm.Emit(
                "{ .reg .f16 xl, xh; .reg .f32 fl, fh, r; mov.b32 {xl, xh}, %3; cvt.f32.f16 fl, xl; cvt.f32.f16 fh, xh; fma.rn.f32 r, %1, fl, %4; fma.rn.f32 %0, %2, fh, r; }",
                out float result,
                lo,
                hi,
                x,
                acc);
            return result;
        }

        return acc + (lo * DeviceMath.Low(x)) + (hi * DeviceMath.High(x));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float WarpSum(float v)
    {
        for (int offset = Lanes / 2; offset > 0; offset /= 2)
        {
            v += Warp.ShuffleDown(v, offset);
        }

        return v;
    }

    /// <summary>Adds the bias (if any) to output feature n of row <paramref name="row"/> and writes it, or adds it to what is there.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(DenseGemvArgs a, int row, int n, float acc) =>
        GptqGemvKernels.StoreLinearOutput(a.Output, a.Bias, a.HasBias, a.Accumulate, a.OutputStride, a.OutputOffset, row, n, acc);
}

/// <summary>A 16-byte fp16 weight chunk converted to fp32 (element order).</summary>
internal struct Weights8
{
    public float W0;
    public float W1;
    public float W2;
    public float W3;
    public float W4;
    public float W5;
    public float W6;
    public float W7;
}
