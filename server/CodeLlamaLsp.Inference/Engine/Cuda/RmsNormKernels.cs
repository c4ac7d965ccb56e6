// RMSNorm kernels: fp32 statistics, fp16 output written straight into the input layouts of the next linear
// layers, saving a pass and a launch per layout: act-order q/k/v (or gate/up) share an input but each has its
// own permutation, so one norm writes up to three layouts. Many rows
// (prefill) take one block per row; the few rows of a decode step or a speculative verification spread each
// row over several blocks, since one block per row left all but one multiprocessor idle at batch 1. A split-row
// block's cost is a latency chain (5.3 us a call at hidden 8192 under Nsight Compute), so everything that does not
// need the row's sum is done while its loads are in flight, and the block sum is written out for its 8 warps.
using System.Runtime.CompilerServices;
using ILGPU;

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
/// wrote it). The reduction's order is fixed by the width alone (thread t sums 16-byte quads t, t + T, ... of the row,
/// then warp shuffles, then the warp sums in warp order), never by the block or the number of rows in the launch: a
/// row's output is the same bits alone or batched, which speculative verification needs to choose what plain decoding
/// chooses. Reads input [rows, width] fp32 and weight [width] fp32.
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

    /// <summary>A split-row thread's share of its block's slice: elements t, t + T, t + 2T, t + 3T.</summary>
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
    /// Slice Grid.IdxX of row Grid.IdxY. The slice's inputs, weights and act-order positions are loaded before the row's
    /// statistics, so their latency hides behind the row's; only the scaling and the stores wait for the sum.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void NormalizeSlice(ArrayView<float> input, ArrayView<float> weight, int width, float eps, NormOutputs outputs)
    {
        int row = Grid.IdxY;
        long b = (long)row * width;
        int first = (Grid.IdxX * SplitRowSliceWidth) + Group.IdxX;
        var x = LoadSlice(input, b, first, width);
        var w = LoadSlice(weight, 0, first, width);

        // All three without a branch on the count (unused outputs repeat output 0's layout), so their act-order loads
        // are in flight together with the row's: behind branches each layout's loads waited for the previous ones.
        var sorted0 = SortedSlice(first, width, outputs.Layout0);
        var sorted1 = SortedSlice(first, width, outputs.Layout1);
        var sorted2 = SortedSlice(first, width, outputs.Layout2);

        // The statistics' first pass is loaded before the output positions are worked out from the act-order positions
        // (which waits for those loads), so all of the block's loads are in flight together.
        var quads = input.Cast<Floats4>();
        var firstPass = LoadPass(quads, b / 4, Group.IdxX, width / 4);
        var at0 = HalfIndices(sorted0, outputs.Layout0.Bits);
        var at1 = HalfIndices(sorted1, outputs.Layout1.Bits);
        var at2 = HalfIndices(sorted2, outputs.Layout2.Bits);

        float inv = SplitRowInverseRms(quads, b, width, eps, firstPass);
        for (int u = 0; u < SliceElementsPerThread; u++)
        {
            int k = first + (u * SplitRowBlockThreads);
            if (k < width)
            {
                ushort half = (ushort)DeviceMath.FloatToHalfBits(Get(x, u) * inv * Get(w, u));
                outputs.Output0[b + Get(at0, u)] = half;
                if (outputs.Count > 1)
                {
                    outputs.Output1[b + Get(at1, u)] = half;
                }

                if (outputs.Count > 2)
                {
                    outputs.Output2[b + Get(at2, u)] = half;
                }
            }
        }
    }

    /// <summary>
    /// The whole row's statistics in the fixed order described on the class; the same in every block of the row. Each
    /// pass's quads are loaded a pass ahead of their use: ILGPU places a load next to its first use and ptxas then keeps
    /// most of them there, so quads loaded and used in the same pass reached memory two or three at a time.
    /// </summary>
    private static float SplitRowInverseRms(ArrayView<Floats4> quads, long rowStart, int width, float eps, QuadPass firstPass)
    {
        long at = rowStart / 4;
        int n = width / 4;
        float sum = 0f;
        var next = firstPass;
        for (int q = Group.IdxX; q < n; q += QuadsInFlight * SplitRowBlockThreads)
        {
            var pass = next;
            next = LoadPass(quads, at, q + (QuadsInFlight * SplitRowBlockThreads), n);

            // Quads past the row are zero, and adding zero leaves the sum's bits as they are.
            sum += Squares(pass.Q0);
            sum += Squares(pass.Q1);
            sum += Squares(pass.Q2);
            sum += Squares(pass.Q3);
            sum += Squares(pass.Q4);
            sum += Squares(pass.Q5);
            sum += Squares(pass.Q6);
            sum += Squares(pass.Q7);
        }

        return 1f / MathF.Sqrt((SplitRowBlockSum(sum) / width) + eps);
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
    private static QuadPass LoadPass(ArrayView<Floats4> quads, long at, int q, int n)
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

    /// <summary>A split-row thread's slice elements of a row (see <see cref="SliceElementsPerThread"/>), zero past its end.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Floats4 LoadSlice(ArrayView<float> row, long b, int first, int width)
    {
        const int T = SplitRowBlockThreads;
        var r = default(Floats4);
        r.A = first < width ? row[b + first] : 0f;
        r.B = first + T < width ? row[b + first + T] : 0f;
        r.C = first + (2 * T) < width ? row[b + first + (2 * T)] : 0f;
        r.D = first + (3 * T) < width ? row[b + first + (3 * T)] : 0f;
        return r;
    }

    /// <summary>The act-order positions (<see cref="ActivationLayout.SortedIndex"/>) of the same elements as <see cref="LoadSlice"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Words4 SortedSlice(int first, int width, InputLayoutArgs layout)
    {
        const int T = SplitRowBlockThreads;
        var r = default(Words4);
        r.X = first < width ? (uint)ActivationLayout.SortedIndex(first, layout) : 0u;
        r.Y = first + T < width ? (uint)ActivationLayout.SortedIndex(first + T, layout) : 0u;
        r.Z = first + (2 * T) < width ? (uint)ActivationLayout.SortedIndex(first + (2 * T), layout) : 0u;
        r.W = first + (3 * T) < width ? (uint)ActivationLayout.SortedIndex(first + (3 * T), layout) : 0u;
        return r;
    }

    /// <summary>
    /// Where in the fp16 output row the elements at act-order positions <paramref name="sorted"/> go
    /// (<see cref="ActivationLayout.HalfIndexOfSorted"/>): integer divisions by the layout's values per word, worked out
    /// while the row's loads are in flight rather than after its statistics.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Words4 HalfIndices(Words4 sorted, int bits)
    {
        sorted.X = (uint)ActivationLayout.HalfIndexOfSorted((int)sorted.X, bits);
        sorted.Y = (uint)ActivationLayout.HalfIndexOfSorted((int)sorted.Y, bits);
        sorted.Z = (uint)ActivationLayout.HalfIndexOfSorted((int)sorted.Z, bits);
        sorted.W = (uint)ActivationLayout.HalfIndexOfSorted((int)sorted.W, bits);
        return sorted;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Get(Floats4 v, int u) => u == 0 ? v.A : u == 1 ? v.B : u == 2 ? v.C : v.D;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Get(Words4 v, int u) => u == 0 ? v.X : u == 1 ? v.Y : u == 2 ? v.Z : v.W;
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
/// q/k/v or gate/up share the norm but not the permutation). Buffers past <see cref="Count"/> are not written, but their
/// layouts must be valid (<see cref="One"/> repeats output 0's): the split-row kernel reads every layout's positions.
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
