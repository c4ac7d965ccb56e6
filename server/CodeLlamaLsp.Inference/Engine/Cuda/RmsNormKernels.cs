// RMSNorm kernels: fp32 statistics, fp16 output written straight into the input layouts of the next linear
// layers, saving a pass and a launch per layout: act-order q/k/v (or gate/up) share an input but each has its
// own permutation, so one norm writes up to three layouts. Many rows
// (prefill) take one block per row; the few rows of a decode step or a speculative verification spread each
// row over several blocks, since one block per row left all but one multiprocessor idle at batch 1. A split-row
// block's cost is a serial instruction chain (4.5 us a call at hidden 8192 under Nsight Compute with ~1,070
// instructions a warp), so it is kept short: uniform branches on the layouts instead of per-element tests, 32-bit
// offsets, approximate reciprocal and rsqrt, and everything that does not need the row's sum done while its loads fly.
using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime.Cuda;

namespace CodeLlamaLsp.Inference.Engine.Cuda;

/// <summary>
/// <para>
/// <see cref="ToHalf"/>, for many rows: grid (rows), group of up to <see cref="MaxBlockThreads"/>
/// threads (a multiple of 32); each block normalises one row of <c>width</c> fp32 values: x * rsqrt(mean(x^2) + eps) *
/// weight. Each thread issues <see cref="Unroll"/> independent loads per step (a first version with one dependent load
/// per step of 256 threads took 25 us per call on an H200), and the sum of squares is reduced with warp shuffles. At
/// batch 1 this is one block on one multiprocessor: 16 us per call under Nsight Compute, two calls per layer.
/// </para>
/// <para>
/// <see cref="SplitRowToHalf"/>, for up to <see cref="SplitRowMaxRows"/> rows whose width
/// is a multiple of 4 and whose starts are 16-byte aligned: grid (ceil(width / <see cref="SplitRowSliceWidth"/>), rows),
/// group <see cref="SplitRowBlockThreads"/>. Block (s, r) writes only slice s of row r, but reduces the whole row's sum
/// of squares itself (at hidden 8192 each of a row's 8 blocks reads the 32 KB row, from L2 after the residual add that
/// wrote it). The reduction's order is fixed by the width alone (thread t sums 16-byte quads t, t + T, ... of the row, a
/// pass of eight at a time, then warp shuffles, then the warp sums in warp order), never by the block or the number of rows in the launch: a
/// row's output is the same bits alone or batched, which speculative verification needs to choose what plain decoding
/// chooses. On CUDA the inverse RMS is rsqrt.approx(sum * rcp.approx(width) + eps), not ToHalf's IEEE 1 / sqrt(sum /
/// width + eps): within a few ulps of fp32, far below the fp16 rounding of the outputs. Thread t writes the slice's
/// 4 consecutive elements 4t .. 4t + 3. Reads input [rows, width] fp32 and weight [width] fp32 (16-byte aligned).
/// </para>
/// </summary>
internal static class RmsNormKernels
{
    public const int MaxBlockThreads = 1024;

    /// <summary>Most rows the split-row kernels take: a decode step and every speculative verification (fewer than 16 rows).</summary>
    public const int SplitRowMaxRows = 16;

    public const int SplitRowBlockThreads = 256;

    /// <summary>Elements of one row a split-row block normalises and writes.</summary>
    public const int SplitRowSliceWidth = SplitRowBlockThreads * SliceElementsPerThread;

    private const int Unroll = 4;

    /// <summary>A split-row thread's share of its block's slice: the 4 consecutive elements 4t .. 4t + 3 (one quad).</summary>
    private const int SliceElementsPerThread = 4;

    /// <summary>16-byte loads a split-row thread has in flight (<see cref="QuadPass"/>): at hidden 8192 its whole share of the row's statistics.</summary>
    private const int QuadsInFlight = 8;

    /// <summary>Same, writing fp16 at <see cref="ActivationLayout.HalfIndex"/> of the consumer (output row stride = width).</summary>
    public static void ToHalf(ArrayView<float> input, ArrayView<float> weight, int width, float eps, NormOutputs outputs) =>
        Normalize(input, weight, width, eps, outputs);

    /// <summary><see cref="ToHalf"/> with a row split over blocks (few rows).</summary>
    public static void SplitRowToHalf(ArrayView<float> input, ArrayView<float> weight, int width, float eps, NormOutputs outputs) =>
        NormalizeSlice(input, weight, width, eps, outputs);

    /// <summary>One row: the statistics, then every element scaled and written into each fp16 layout.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Normalize(ArrayView<float> input, ArrayView<float> weight, int width, float eps, NormOutputs outputs)
    {
        float inv = InverseRms(input, width, eps);
        long b = (long)Grid.IdxX * width;
        for (int i = Group.IdxX; i < width; i += Unroll * Group.DimX)
        {
            var v = Load(input, b, i, width);
            var w = Load(weight, 0, i, width);
            for (int u = 0; u < Unroll; u++)
            {
                int k = i + (u * Group.DimX);
                if (k < width)
                {
                    float y = Get(v, u) * inv * Get(w, u);
                    ActivationLayout.Store(outputs.Output0, Grid.IdxX, width, k, y, outputs.Layout0);
                    if (outputs.Count > 1)
                    {
                        ActivationLayout.Store(outputs.Output1, Grid.IdxX, width, k, y, outputs.Layout1);
                    }

                    if (outputs.Count > 2)
                    {
                        ActivationLayout.Store(outputs.Output2, Grid.IdxX, width, k, y, outputs.Layout2);
                    }
                }
            }
        }
    }

    private static float InverseRms(ArrayView<float> input, int width, float eps)
    {
        long b = (long)Grid.IdxX * width;
        float sum = 0f;
        for (int i = Group.IdxX; i < width; i += Unroll * Group.DimX)
        {
            var v = Load(input, b, i, width);
            sum += Squares(v);
        }

        return 1f / MathF.Sqrt((BlockSum(sum) / width) + eps);
    }

    /// <summary>
    /// Slice Grid.IdxX of row Grid.IdxY: thread t normalises the slice's quad t (4 consecutive elements, one 16-byte
    /// load of x and one of the weight). Everything that does not need the row's sum (those loads, the act-order
    /// positions, the output slots) is issued before the statistics' loads are used. Layout properties are uniform, so
    /// each is one branch for the block rather than a test per element: the common case (one layout, no permutation)
    /// runs no permutation load and no code for the other layouts. Offsets are 32-bit (rows x width is below 2^31).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void NormalizeSlice(ArrayView<float> input, ArrayView<float> weight, int width, float eps, NormOutputs outputs)
    {
        int n = width / 4;
        int rowStart = Grid.IdxY * width;
        int rowQuad = rowStart / 4;
        int quad = (Grid.IdxX * SplitRowBlockThreads) + Group.IdxX;
        int k = quad * 4;
        bool inRow = quad < n;
        var quads = input.Cast<Floats4>();
        var x = inRow ? quads[rowQuad + quad] : default;
        var w = inRow ? weight.Cast<Floats4>()[quad] : default;

        // The statistics' first pass is loaded here, before the layout branches: ptxas does not move loads across
        // branches, so all eight are in flight together (loaded next to their squares, ptxas issued them two or three
        // at a time to save registers, each group waiting for the last).
        const int PassQuads = QuadsInFlight * SplitRowBlockThreads;
        var pass = n >= PassQuads ? LoadFullPass(quads, rowQuad + Group.IdxX) : LoadPass(quads, rowQuad, Group.IdxX, n);

        var sorted0 = SortedQuad(k, inRow, outputs.Layout0);
        var sorted1 = default(Words4);
        var sorted2 = default(Words4);
        if (outputs.Count > 1)
        {
            sorted1 = SortedQuad(k, inRow, outputs.Layout1);
        }

        if (outputs.Count > 2)
        {
            sorted2 = SortedQuad(k, inRow, outputs.Layout2);
        }

        float inv = SplitRowInverseRms(quads, rowQuad, n, width, eps, pass);
        uint h0 = DeviceMath.FloatToHalfBits(x.A * inv * w.A);
        uint h1 = DeviceMath.FloatToHalfBits(x.B * inv * w.B);
        uint h2 = DeviceMath.FloatToHalfBits(x.C * inv * w.C);
        uint h3 = DeviceMath.FloatToHalfBits(x.D * inv * w.D);
        if (inRow)
        {
            StoreQuad(outputs.Output0, rowStart, sorted0, outputs.Layout0.Bits, h0, h1, h2, h3);
            if (outputs.Count > 1)
            {
                StoreQuad(outputs.Output1, rowStart, sorted1, outputs.Layout1.Bits, h0, h1, h2, h3);
            }

            if (outputs.Count > 2)
            {
                StoreQuad(outputs.Output2, rowStart, sorted2, outputs.Layout2.Bits, h0, h1, h2, h3);
            }
        }
    }

    /// <summary>Act-order positions of elements k .. k + 3: loaded only when the layout has a permutation (a uniform branch).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Words4 SortedQuad(int k, bool inRow, InputLayoutArgs layout)
    {
        var r = default(Words4);
        if (layout.Bits != 16 && layout.HasPermutation != 0)
        {
            var p = layout.InversePermutation;
            r.X = inRow ? (uint)p[k] : 0u;
            r.Y = inRow ? (uint)p[k + 1] : 0u;
            r.Z = inRow ? (uint)p[k + 2] : 0u;
            r.W = inRow ? (uint)p[k + 3] : 0u;
        }
        else
        {
            r.X = (uint)k;
            r.Y = (uint)(k + 1);
            r.Z = (uint)(k + 2);
            r.W = (uint)(k + 3);
        }

        return r;
    }

    /// <summary>Four fp16 values at the act-order positions <paramref name="sorted"/> of a row starting at <paramref name="rowStart"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreQuad(ArrayView<ushort> output, int rowStart, Words4 sorted, int bits, uint h0, uint h1, uint h2, uint h3)
    {
        var masks = SlotMasks.Of(bits);
        output[rowStart + ActivationLayout.HalfIndexOfSorted((int)sorted.X, masks)] = (ushort)h0;
        output[rowStart + ActivationLayout.HalfIndexOfSorted((int)sorted.Y, masks)] = (ushort)h1;
        output[rowStart + ActivationLayout.HalfIndexOfSorted((int)sorted.Z, masks)] = (ushort)h2;
        output[rowStart + ActivationLayout.HalfIndexOfSorted((int)sorted.W, masks)] = (ushort)h3;
    }

    /// <summary>
    /// The whole row's statistics in the fixed order described on the class; the same in every block of the row.
    /// <paramref name="firstPass"/> holds the thread's first <see cref="QuadsInFlight"/> quads, which cover a row up to
    /// 8192 wide; wider rows loop over further passes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float SplitRowInverseRms(ArrayView<Floats4> quads, int rowQuad, int n, int width, float eps, QuadPass firstPass)
    {
        const int PassQuads = QuadsInFlight * SplitRowBlockThreads;
        float sum = Squares(firstPass);
        for (int q = Group.IdxX + PassQuads; q < n; q += PassQuads)
        {
            sum += Squares(LoadPass(quads, rowQuad, q, n));
        }

        return InverseRmsOfSum(SplitRowBlockSum(sum), width, eps);
    }

    /// <summary>
    /// <see cref="LoadPass"/> of a pass inside the row (a branch on the width only): the quads' 64-bit offsets from one
    /// base (a 32-bit sum sign-extended per load cost each load three instructions more), and no bounds tests.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static QuadPass LoadFullPass(ArrayView<Floats4> quads, long first)
    {
        const int T = SplitRowBlockThreads;
        var p = default(QuadPass);
        p.Q0 = quads[first];
        p.Q1 = quads[first + T];
        p.Q2 = quads[first + (2 * T)];
        p.Q3 = quads[first + (3 * T)];
        p.Q4 = quads[first + (4 * T)];
        p.Q5 = quads[first + (5 * T)];
        p.Q6 = quads[first + (6 * T)];
        p.Q7 = quads[first + (7 * T)];
        return p;
    }

    /// <summary>
    /// 1 / sqrt(sum / width + eps). On CUDA without IEEE division or square root (whose slow paths were subroutine calls
    /// on the critical path): rcp.approx of the width (exact for a power of two, within 1 ulp otherwise) and
    /// rsqrt.approx (relative error below 2^-22), both far below fp16's 2^-11 rounding of the outputs.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float InverseRmsOfSum(float sum, int width, float eps)
    {
        if (CudaAsm.IsSupported)
        {
            CudaAsm.Emit("rcp.approx.ftz.f32 %0, %1;", out float perElement, (float)width);
            CudaAsm.Emit("rsqrt.approx.ftz.f32 %0, %1;", out float inv, (sum * perElement) + eps);
            return inv;
        }

        return 1f / MathF.Sqrt((sum * (1f / width)) + eps);
    }

    /// <summary>
    /// <see cref="BlockSum"/> for the split-row block's fixed 8 warps, with the same additions in the same order (so the
    /// same bits), written out: constant shuffle offsets, the warp index by a shift, and the 8 warp sums loaded before
    /// they are added in warp order. ILGPU kept the generic version's loops, divided by the warp size at run time and
    /// waited on each shared load in turn, all after the row's loads, on the kernel's critical path.
    /// </summary>
    private static float SplitRowBlockSum(float sum)
    {
        sum += Warp.ShuffleDown(sum, 16);
        sum += Warp.ShuffleDown(sum, 8);
        sum += Warp.ShuffleDown(sum, 4);
        sum += Warp.ShuffleDown(sum, 2);
        sum += Warp.ShuffleDown(sum, 1);

        var partial = SharedMemory.Allocate<Floats4>(SplitRowBlockThreads / 32 / 4);
        var partialF = partial.Cast<float>();
        int tid = Group.IdxX;
        if ((tid & 31) == 0)
        {
            partialF[tid >> 5] = sum;
        }

        Group.Barrier();
        var p0 = partial[0];
        var p1 = partial[1];
        float total = 0f;
        total += p0.A;
        total += p0.B;
        total += p0.C;
        total += p0.D;
        total += p1.A;
        total += p1.B;
        total += p1.C;
        total += p1.D;
        return total;
    }

    /// <summary>Quads q, q + T, ..., q + 7T of a row of n quads starting at quad <paramref name="at"/>, zero past its end.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static QuadPass LoadPass(ArrayView<Floats4> quads, int at, int q, int n)
    {
        const int T = SplitRowBlockThreads;
        var p = default(QuadPass);
        p.Q0 = q < n ? quads[at + q] : default;
        p.Q1 = q + T < n ? quads[at + q + T] : default;
        p.Q2 = q + (2 * T) < n ? quads[at + q + (2 * T)] : default;
        p.Q3 = q + (3 * T) < n ? quads[at + q + (3 * T)] : default;
        p.Q4 = q + (4 * T) < n ? quads[at + q + (4 * T)] : default;
        p.Q5 = q + (5 * T) < n ? quads[at + q + (5 * T)] : default;
        p.Q6 = q + (6 * T) < n ? quads[at + q + (6 * T)] : default;
        p.Q7 = q + (7 * T) < n ? quads[at + q + (7 * T)] : default;
        return p;
    }

    /// <summary>Sum of squares of a pass's quads in order; quads past the row are zero, and adding zero leaves the sum's bits as they are.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Squares(QuadPass p)
    {
        float sum = Squares(p.Q0);
        sum += Squares(p.Q1);
        sum += Squares(p.Q2);
        sum += Squares(p.Q3);
        sum += Squares(p.Q4);
        sum += Squares(p.Q5);
        sum += Squares(p.Q6);
        sum += Squares(p.Q7);
        return sum;
    }

    /// <summary>The block's sum of every thread's <paramref name="sum"/>: warp shuffles, then the warp sums in warp order, so the order is fixed by the block size.</summary>
    private static float BlockSum(float sum)
    {
        for (int offset = 16; offset > 0; offset /= 2)
        {
            sum += Warp.ShuffleDown(sum, offset);
        }

        var partial = SharedMemory.Allocate<float>(MaxBlockThreads / 32);
        if (Warp.LaneIdx == 0)
        {
            partial[Warp.WarpIdx] = sum;
        }

        Group.Barrier();
        float total = 0f;
        for (int w = 0; w < Group.DimX / 32; w++)
        {
            total += partial[w];
        }

        return total;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Squares(Floats4 v) => (v.A * v.A) + (v.B * v.B) + (v.C * v.C) + (v.D * v.D);

    /// <summary>Elements i, i + T, i + 2T, i + 3T of a row (T threads), zero past its end, loaded before any is used.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Floats4 Load(ArrayView<float> row, long b, int i, int width)
    {
        int t = Group.DimX;
        var r = default(Floats4);
        r.A = row[b + i];
        r.B = i + t < width ? row[b + i + t] : 0f;
        r.C = i + (2 * t) < width ? row[b + i + (2 * t)] : 0f;
        r.D = i + (3 * t) < width ? row[b + i + (3 * t)] : 0f;
        return r;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Get(Floats4 v, int u) => u == 0 ? v.A : u == 1 ? v.B : u == 2 ? v.C : v.D;
}

/// <summary>One pass of a split-row thread over a row's statistics: eight 16-byte quads, <see cref="RmsNormKernels.SplitRowBlockThreads"/> quads apart.</summary>
internal struct QuadPass
{
    public Floats4 Q0;
    public Floats4 Q1;
    public Floats4 Q2;
    public Floats4 Q3;
    public Floats4 Q4;
    public Floats4 Q5;
    public Floats4 Q6;
    public Floats4 Q7;
}

/// <summary>
/// The fp16 inputs one RMSNorm writes: 1 to <see cref="MaxCount"/> buffers, each in its linear layer's layout (act-order
/// q/k/v or gate/up share the norm but not the permutation). Buffers and layouts past <see cref="Count"/> are neither
/// written nor read (<see cref="Of"/> fills them with output 0's, so that no slot holds a stale view).
/// </summary>
internal struct NormOutputs
{
    public const int MaxCount = 3;

    public int Count;
    public ArrayView<ushort> Output0;
    public ArrayView<ushort> Output1;
    public ArrayView<ushort> Output2;
    public InputLayoutArgs Layout0;
    public InputLayoutArgs Layout1;
    public InputLayoutArgs Layout2;

    /// <summary>One output (every layer that is not act-order-split).</summary>
    public static NormOutputs One(ArrayView<ushort> output, InputLayoutArgs layout) => Of([output], [layout]);

    /// <summary>Output i into <paramref name="outputs"/>[i] in <paramref name="layouts"/>[i]; the unused slots repeat output 0.</summary>
    public static NormOutputs Of(ReadOnlySpan<ArrayView<ushort>> outputs, ReadOnlySpan<InputLayoutArgs> layouts)
    {
        if (outputs.Length is < 1 or > MaxCount || layouts.Length != outputs.Length)
        {
            throw new ArgumentException($"One norm writes 1 to {MaxCount} layouts, one per output; got {outputs.Length} outputs and {layouts.Length} layouts.", nameof(outputs));
        }

        int second = outputs.Length > 1 ? 1 : 0;
        int third = outputs.Length > 2 ? 2 : 0;
        return new()
        {
            Count = outputs.Length,
            Output0 = outputs[0],
            Layout0 = layouts[0],
            Output1 = outputs[second],
            Layout1 = layouts[second],
            Output2 = outputs[third],
            Layout2 = layouts[third],
        };
    }
}
