// The compiled kernels of one accelerator and the code that picks their launch geometry, so every caller
// (the CUDA session, its attention, the probes, the kernel tests) launches each kernel the same way.
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace CodeLlamaLsp.Inference.Engine.Cuda;

/// <summary>Kernel delegates plus launch helpers; every launch goes to <see cref="Stream"/>.</summary>
internal sealed class CudaKernels : IDisposable
{
    /// <summary>Widest GPTQ layer the small-batch kernel's scratch is sized for; wider layers take the GEMV.</summary>
    public const int MaxSmallBatchColumns = 65536;

    private readonly Accelerator accelerator;
    private readonly Action<AcceleratorStream, KernelConfig, GptqGemvArgs> gemv;
    private readonly Action<AcceleratorStream, KernelConfig, GptqGemvArgs> gemm;
    private readonly Action<AcceleratorStream, KernelConfig, SmallBatchArgs> smallBatch;
    private readonly int smallBatchBlocks;
    private readonly MemoryBuffer1D<float, Stride1D.Dense> smallBatchPartials;
    private readonly MemoryBuffer1D<int, Stride1D.Dense> smallBatchArrivals;
    private readonly Action<AcceleratorStream, KernelConfig, DenseGemvArgs> denseGemv;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float> rmsNorm;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, int, float, InputLayoutArgs> rmsNormHalf;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float> splitRowNorm;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, int, float, InputLayoutArgs> splitRowNormHalf;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, int, int, int, int, int, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, ArrayView<ushort>> rotateAndStore;
    private readonly Action<AcceleratorStream, KernelConfig, AttentionArgs> attention;
    private readonly Action<AcceleratorStream, KernelConfig, PrefillAttentionArgs> prefillAttention;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int, int, int, ArrayView<float>, ArrayView<ushort>, InputLayoutArgs> combine;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<int>, ArrayView<ushort>, ArrayView<float>, int, int> embed;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<ushort>, int, int, InputLayoutArgs> siluHalf;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<ushort>, int, int, InputLayoutArgs> toHalf;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<int>, int> advance;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<uint>, ArrayView<uint>, long> readBandwidth;
    private readonly Action<AcceleratorStream, KernelConfig, SamplingArgs> sample;
    private readonly Action<AcceleratorStream, KernelConfig, DequantizeArgs> dequantize;
    private readonly Cublas? cublas;
    private readonly MemoryBuffer1D<byte, Stride1D.Dense>? cublasWorkspace;
    private MemoryBuffer1D<uint, Stride1D.Dense>? dequantized;

    public CudaKernels(Accelerator accelerator, AcceleratorStream stream)
    {
        this.accelerator = accelerator;
        Stream = stream;
        gemv = accelerator.LoadKernel<GptqGemvArgs>(GptqGemvKernels.Gemv);
        gemm = accelerator.LoadKernel<GptqGemvArgs>(GptqGemmKernels.Gemm);
        smallBatch = accelerator.LoadKernel<SmallBatchArgs>(GptqSmallBatchKernels.Run);

        // The small-batch kernel splits a layer over every block the GPU holds at once (stream-K): one wave, no tail.
        int blocksPerMultiprocessor = Math.Clamp(accelerator.EstimateMaxActiveGroupsPerMultiprocessor(smallBatch.GetKernel(), GptqSmallBatchKernels.BlockThreads, 0), 1, 16);
        smallBatchBlocks = Math.Min(GptqSmallBatchKernels.MaxBlocks, accelerator.NumMultiprocessors * blocksPerMultiprocessor);
        int maxColumnBlocks = GptqSmallBatchKernels.ColumnBlocks(MaxSmallBatchColumns);
        smallBatchPartials = accelerator.Allocate1D<float>(GptqSmallBatchKernels.Slots(smallBatchBlocks, maxColumnBlocks) * (GptqSmallBatchKernels.SlotBytes / 4));
        smallBatchArrivals = accelerator.Allocate1D<int>(maxColumnBlocks);
        smallBatchArrivals.MemSetToZero(stream);
        denseGemv = accelerator.LoadKernel<DenseGemvArgs>(DenseGemvKernels.Gemv);
        rmsNorm = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float>(RmsNormKernels.ToFloat);
        rmsNormHalf = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<ushort>, int, float, InputLayoutArgs>(RmsNormKernels.ToHalf);
        splitRowNorm = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float>(RmsNormKernels.SplitRowToFloat);
        splitRowNormHalf = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<ushort>, int, float, InputLayoutArgs>(RmsNormKernels.SplitRowToHalf);
        rotateAndStore = accelerator.LoadKernel<ArrayView<float>, int, int, int, int, int, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<ushort>, ArrayView<ushort>>(RopeKernels.RotateAndStore);
        attention = accelerator.LoadKernel<AttentionArgs>(AttentionKernels.Partial, AttentionKernels.PartialSpecialization);
        prefillAttention = accelerator.LoadKernel<PrefillAttentionArgs>(PrefillAttentionKernels.Prefill);
        combine = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int, int, int, ArrayView<float>, ArrayView<ushort>, InputLayoutArgs>(AttentionKernels.Combine);
        embed = accelerator.LoadKernel<ArrayView<int>, ArrayView<ushort>, ArrayView<float>, int, int>(ActivationKernels.Embed);
        siluHalf = accelerator.LoadKernel<ArrayView<float>, ArrayView<ushort>, int, int, InputLayoutArgs>(ActivationKernels.SiluMultiplyToHalf);
        toHalf = accelerator.LoadKernel<ArrayView<float>, ArrayView<ushort>, int, int, InputLayoutArgs>(ActivationKernels.ToHalfLayout);
        advance = accelerator.LoadKernel<ArrayView<int>, int>(ActivationKernels.AdvancePosition);
        readBandwidth = accelerator.LoadKernel<ArrayView<uint>, ArrayView<uint>, long>(ActivationKernels.ReadBandwidth);
        sample = accelerator.LoadKernel<SamplingArgs>(SamplingKernels.Select);
        dequantize = accelerator.LoadKernel<DequantizeArgs>(GptqDequantizeKernels.ToHalf);
        if (stream is CudaStream cudaStream)
        {
            accelerator.Bind();
            cublasWorkspace = accelerator.Allocate1D<byte>(Cublas.WorkspaceBytes);
            cublas = Cublas.TryCreate(cudaStream.StreamPtr, DeviceAddress<byte>(cublasWorkspace.View), out var whyNot);
            if (cublas == null)
            {
                cublasWorkspace.Dispose();
                cublasWorkspace = null;
            }

            CublasStatus = cublas != null ? $"cuBLAS {cublas.Version / 10000}.{cublas.Version / 100 % 100}.{cublas.Version % 100} ({cublas.Path})" : whyNot!;
        }
        else
        {
            CublasStatus = "not on a CUDA device";
        }

        UseCublas = cublas != null;
    }

    /// <summary>
    /// fp16 elements of the scratch that GPTQ layers are dequantized into for cuBLAS (192 MiB): a layer wider than that
    /// runs in column slices. Large enough that a slice of the widest 34B layers still gives a 1,024-row GEMM more
    /// 128 x 256 output tiles than the H200 has multiprocessors.
    /// </summary>
    public const long MaxDequantizedHalves = 96L << 20;

    /// <summary>What <see cref="TryCublasGemm"/> runs on: the cuBLAS library and version, or why there is none.</summary>
    public string CublasStatus { get; }

    /// <summary>Whether cuBLAS was found and started.</summary>
    public bool HasCublas => cublas != null;

    /// <summary>
    /// Whether GPTQ launches of more than <see cref="GptqSmallBatchKernels.MaxRows"/> rows go to cuBLAS (when it is
    /// there); false runs the built-in GEMM, as on a machine with the driver only (the bench measures both).
    /// </summary>
    public bool UseCublas { get; set; }

    public AcceleratorStream Stream { get; }

    /// <summary>RMSNorm block size: a whole row per block, as many threads as the accelerator allows.</summary>
    private int NormThreads => Math.Min(RmsNormKernels.MaxBlockThreads, accelerator.MaxNumThreadsPerGroup);

    /// <summary>Kernel launches issued so far (decode-step accounting in the bench).</summary>
    public long Launches { get; private set; }

    /// <summary>
    /// The GPTQ GEMV, one row per block. The column tile depends on the layer only, never on the row count, so a
    /// row's result is the same bits alone or in a batch (speculative verification must match plain decoding).
    /// A kernel that read each weight once for four rows (11-29) took 24.6 ms for 4 rows' linear layers against
    /// 23.5 ms for this one: it needed 168 registers, one block per multiprocessor.
    /// </summary>
    public void Gemv(GptqGemvArgs args, int rows)
    {
        // The widest column tile that still gives every multiprocessor two blocks: wide tiles read longer contiguous
        // runs per packed word row, narrow ones spread a layer with few columns over the whole GPU.
        int blocksWanted = 2 * accelerator.NumMultiprocessors;
        args.ColumnsPerBlock = args.OutFeatures / 128 >= blocksWanted ? 128 : args.OutFeatures / 64 >= blocksWanted ? 64 : 32;
        args.Rows = rows;
        int tiles = (args.OutFeatures + args.ColumnsPerBlock - 1) / args.ColumnsPerBlock;
        Launch(() => gemv(Stream, new KernelConfig(tiles * rows, GptqGemvKernels.BlockThreads), args));
    }

    /// <summary>Blocks of every small-batch launch: as many as the device holds at once.</summary>
    public int SmallBatchBlocks => smallBatchBlocks;

    /// <summary>Whether <see cref="SmallBatch"/> can run a layer (else the GEMV or the GEMM).</summary>
    public static bool SupportsSmallBatch(int bits, int inFeatures, int outFeatures, int groupSize) =>
        outFeatures <= MaxSmallBatchColumns && GptqSmallBatchKernels.Supports(bits, inFeatures, outFeatures, groupSize);

    /// <summary>
    /// The small-batch tensor-core kernel (1 to 16 rows; see <see cref="GptqSmallBatchKernels"/>); same arguments as
    /// <see cref="Gemv"/>. The grid depends on the device only, so a row's bits do not depend on its batch.
    /// </summary>
    public void SmallBatch(GptqGemvArgs g, int rows)
    {
        g.Rows = rows;
        g.InputAddress = DeviceAddress(g.Input);
        g.QWeightAddress = DeviceAddress(g.QWeight);
        var args = new SmallBatchArgs
        {
            Layer = g,
            QZerosAddress = DeviceAddress(g.QZeros),
            ScalesAddress = DeviceAddress(g.Scales),
            PartialsAddress = DeviceAddress<float>(smallBatchPartials.View),
            Partials = smallBatchPartials.View,
            Arrivals = smallBatchArrivals.View,
            Blocks = smallBatchBlocks,
            KUnits = g.InFeatures / GptqSmallBatchKernels.UnitInputs,
            GroupUnits = g.GroupSize / GptqSmallBatchKernels.UnitInputs,
        };
        Launch(() => smallBatch(Stream, new KernelConfig(smallBatchBlocks, GptqSmallBatchKernels.BlockThreads), args));
    }

    /// <summary>The pipelined tensor-core GEMM (prefill); same arguments as <see cref="Gemv"/>.</summary>
    public void Gemm(GptqGemvArgs args, int rows)
    {
        args.Rows = rows;
        args.InputAddress = DeviceAddress(args.Input);
        args.QWeightAddress = DeviceAddress(args.QWeight);
        int rowTiles = (rows + GptqGemmKernels.TileRows - 1) / GptqGemmKernels.TileRows;
        int colTiles = (args.OutFeatures + GptqGemmKernels.TileColumns - 1) / GptqGemmKernels.TileColumns;
        Launch(() => gemm(Stream, new KernelConfig(rowTiles * colTiles, GptqGemmKernels.BlockThreads), args));
    }

    /// <summary>
    /// Sizes the dequantization scratch for layers of up to <paramref name="halves"/> weights (capped at
    /// <see cref="MaxDequantizedHalves"/>); a no-op without cuBLAS. Called once the model's layers are known, before any
    /// forward pass, so the allocation shows in the load's memory report and never happens mid-prefill.
    /// </summary>
    internal void ReserveDequantized(GpuMemory memory, long halves)
    {
        long wanted = Math.Min(halves, MaxDequantizedHalves);
        if (cublas == null || (dequantized?.Length ?? 0) * 2 >= wanted)
        {
            return;
        }

        dequantized?.Dispose();
        dequantized = null;
        dequantized = memory.Allocate<uint>((wanted + 1) / 2, "the fp16 scratch of cuBLAS's prefill products");
    }

    /// <summary>
    /// The prefill's GPTQ product through cuBLAS: slices of the layer's columns are dequantized to fp16 (rows in the
    /// input's storage order) and multiplied by cublasGemmEx with fp32 accumulation, writing (or adding to) the fp32
    /// output like the built-in GEMM. Returns false, having done nothing, when cuBLAS is absent or off, the scratch is
    /// not reserved, the layer has a bias (cuBLAS would need a separate pass; CodeLlama has none) or a shape the
    /// dequantization does not take.
    /// </summary>
    public bool TryCublasGemm(GptqGemvArgs args, int rows)
    {
        if (cublas == null || !UseCublas || dequantized == null || args.HasBias != 0 || !GptqDequantizeKernels.Supports(args.Bits, args.InFeatures, args.OutFeatures, args.GroupSize))
        {
            return false;
        }

        // Equal slices of whole 128-column tiles that fit the scratch; the last one may be narrower.
        long scratchHalves = dequantized.Length * 2;
        int widest = (int)Math.Min(args.OutFeatures, scratchHalves / args.InFeatures / 128 * 128);
        if (widest < 128 && widest < args.OutFeatures)
        {
            return false;
        }

        int slices = (args.OutFeatures + widest - 1) / widest;
        int width = Math.Min(widest, ((((args.OutFeatures + slices - 1) / slices) + 127) / 128) * 128);
        long input = DeviceAddress(args.Input);
        long output = DeviceAddress(args.Output) + (4L * args.OutputOffset);
        long scratch = DeviceAddress<uint>(dequantized.View);
        for (int first = 0; first < args.OutFeatures; first += width)
        {
            int columns = Math.Min(width, args.OutFeatures - first);
            Dequantize(args, dequantized.View, first, columns);
            cublas.GemmHalfToFloat(columns, rows, args.InFeatures, scratch, columns, input, args.InFeatures, output + (4L * first), args.OutputStride, args.Accumulate != 0);
        }

        return true;
    }

    /// <summary>
    /// Columns [<paramref name="first"/>, + <paramref name="columns"/>) of a GPTQ layer as fp16 [in, columns] in
    /// <paramref name="output"/>, rows in its input's storage order (see <see cref="GptqDequantizeKernels"/>).
    /// </summary>
    public void Dequantize(GptqGemvArgs layer, ArrayView<uint> output, int first, int columns)
    {
        var d = new DequantizeArgs
        {
            QWeight = layer.QWeight,
            QZeros = layer.QZeros,
            Scales = layer.Scales,
            Output = output.Cast<ulong>(),
            InFeatures = layer.InFeatures,
            OutFeatures = layer.OutFeatures,
            Bits = layer.Bits,
            GroupSize = layer.GroupSize,
            ZeroOffset = layer.ZeroOffset,
            FirstColumn = first,
            Columns = columns,
        };
        Launch(() => dequantize(Stream, Flat(columns / 4 * (layer.InFeatures / (32 / layer.Bits)), GptqDequantizeKernels.BlockThreads), d));
    }

    public void DenseGemv(DenseGemvArgs args, int rows)
    {
        args.Rows = rows;
        int tiles = (args.OutFeatures + DenseGemvKernels.RowsPerBlock - 1) / DenseGemvKernels.RowsPerBlock;
        int rowGroups = (rows + DenseGemvKernels.InputRowsPerBlock - 1) / DenseGemvKernels.InputRowsPerBlock;
        Launch(() => denseGemv(Stream, new KernelConfig(tiles * rowGroups, DenseGemvKernels.BlockThreads), args));
    }

    public void RmsNorm(ArrayView<float> input, ArrayView<float> weight, ArrayView<float> output, int rows, int width, float eps)
    {
        if (SplitRowNorm(input, rows, width) is { } split)
        {
            Launch(() => splitRowNorm(Stream, split, input, weight, output, width, eps));
        }
        else
        {
            Launch(() => rmsNorm(Stream, new KernelConfig(rows, NormThreads), input, weight, output, width, eps));
        }
    }

    public void RmsNormToHalf(ArrayView<float> input, ArrayView<float> weight, ArrayView<ushort> output, int rows, int width, float eps, InputLayoutArgs layout)
    {
        if (SplitRowNorm(input, rows, width) is { } split)
        {
            Launch(() => splitRowNormHalf(Stream, split, input, weight, output, width, eps, layout));
        }
        else
        {
            Launch(() => rmsNormHalf(Stream, new KernelConfig(rows, NormThreads), input, weight, output, width, eps, layout));
        }
    }

    /// <summary>
    /// The split-row RMSNorm's geometry (see <see cref="RmsNormKernels"/>) for a decode step's or a verification's few rows,
    /// or null for the one-block-per-row kernel. The choice depends on the row count only through the
    /// <see cref="RmsNormKernels.SplitRowMaxRows"/> bound, which covers every verification, so a decode row and the same
    /// row in a verification run the same kernel.
    /// </summary>
    private static KernelConfig? SplitRowNorm(ArrayView<float> input, int rows, int width)
    {
        bool quadAligned = width % 4 == 0 && ((IContiguousArrayView)input).IndexInBytes % 16 == 0;
        if (rows > RmsNormKernels.SplitRowMaxRows || !quadAligned)
        {
            return null;
        }

        int slices = (width + RmsNormKernels.SplitRowSliceWidth - 1) / RmsNormKernels.SplitRowSliceWidth;
        return new KernelConfig(new Index2D(slices, rows), new Index2D(RmsNormKernels.SplitRowBlockThreads, 1));
    }

    /// <summary>RoPE on the q and k heads of qkv rows, k and v stored into one layer's cache.</summary>
    public void RotateAndStore(ArrayView<float> qkv, int rows, int stride, int heads, int kvHeads, int headDim, int capacity, ArrayView<int> start, ArrayView<float> cos, ArrayView<float> sin, ArrayView<ushort> k, ArrayView<ushort> v)
    {
        int pairs = (heads + kvHeads) * (headDim / 2);
        var grid = new Index2D((pairs + RopeKernels.BlockThreads - 1) / RopeKernels.BlockThreads, rows);
        Launch(() => rotateAndStore(Stream, new KernelConfig(grid, new Index2D(RopeKernels.BlockThreads, 1)), qkv, stride, heads, kvHeads, headDim, capacity, start, cos, sin, k, v));
    }

    /// <summary>
    /// Decode attention of <paramref name="rows"/> query rows: one block per work item (split, row, block of heads) up to the
    /// blocks the device holds at once, each taking the items a grid's width apart (see <see cref="AttentionKernels.Partial"/>).
    /// </summary>
    public void Attention(AttentionArgs args, int rows)
    {
        args.Rows = rows;
        int g = args.Heads / args.KvHeads;
        int headBlocks = args.KvHeads * ((g + AttentionKernels.HeadsPerBlock - 1) / AttentionKernels.HeadsPerBlock);
        long items = (long)headBlocks * rows * args.Splits;
        int blocks = (int)Math.Min(items, (long)AttentionKernels.BlocksPerMultiprocessor * accelerator.NumMultiprocessors);
        Launch(() => attention(Stream, new KernelConfig(blocks, AttentionKernels.BlockThreads), args));
    }

    /// <summary>Tensor-core attention of many query rows (CUDA only; see <see cref="PrefillAttentionKernels"/>).</summary>
    public void PrefillAttention(PrefillAttentionArgs args, ArrayView<ushort> k, ArrayView<ushort> v)
    {
        args.KAddress = DeviceAddress(k);
        args.VAddress = DeviceAddress(v);
        int blocks = (args.Rows + PrefillAttentionKernels.TileRows - 1) / PrefillAttentionKernels.TileRows * args.Heads;
        Launch(() => prefillAttention(Stream, new KernelConfig(blocks, PrefillAttentionKernels.BlockThreads), args));
    }

    public void Combine(ArrayView<float> partialO, ArrayView<float> partialMl, ArrayView<int> start, int rows, int splits, int heads, int headDim, ArrayView<float> output, ArrayView<ushort> outputHalf, bool halfOutput, InputLayoutArgs layout) =>
        Launch(() => combine(Stream, new KernelConfig(new Index2D(heads, rows), new Index2D(AttentionKernels.CombineThreads, 1)), partialO, partialMl, start, splits, heads, headDim, halfOutput ? 1 : 0, output, outputHalf, layout));

    public void Embed(ArrayView<int> ids, ArrayView<ushort> table, ArrayView<float> output, int rows, int hidden) =>
        Launch(() => embed(Stream, Flat(rows * hidden), ids, table, output, hidden, rows * hidden));

    public void SiluMultiplyToHalf(ArrayView<float> src, ArrayView<ushort> output, int rows, int width, InputLayoutArgs layout) =>
        Launch(() => siluHalf(Stream, Flat(rows * width), src, output, width, rows * width, layout));

    public void ToHalfLayout(ArrayView<float> input, ArrayView<ushort> output, int rows, int width, InputLayoutArgs layout) =>
        Launch(() => toHalf(Stream, Flat(rows * width), input, output, width, rows * width, layout));

    public void AdvancePosition(ArrayView<int> start, int delta) =>
        Launch(() => advance(Stream, new KernelConfig(1, 32), start, delta));

    public void ReadBandwidth(ArrayView<uint> data, ArrayView<uint> sink) =>
        Launch(() => readBandwidth(Stream, new KernelConfig(accelerator.NumMultiprocessors * 8, 256), data, sink, data.Length));

    public void Sample(SamplingArgs args) =>
        Launch(() => sample(Stream, new KernelConfig(1, Math.Min(SamplingKernels.BlockThreads, accelerator.MaxNumThreadsPerGroup)), args));

    /// <summary>The device byte address of a view's first element, for kernels that address memory from inline PTX.</summary>
    internal static long DeviceAddress<T>(ArrayView<T> view)
        where T : unmanaged =>
        ((IArrayView)view).Buffer.NativePtr.ToInt64() + ((IContiguousArrayView)view).IndexInBytes;

    public void Dispose()
    {
        cublas?.Dispose();
        cublasWorkspace?.Dispose();
        dequantized?.Dispose();
        smallBatchPartials.Dispose();
        smallBatchArrivals.Dispose();
    }

    private KernelConfig Flat(int n, int threads = ActivationKernels.BlockThreads)
    {
        int blocks = (n + threads - 1) / threads;
        int cap = Math.Max(1, accelerator.NumMultiprocessors * 16);
        return new KernelConfig(Math.Max(1, Math.Min(blocks, cap)), threads);
    }

    private void Launch(Action launch)
    {
        launch();
        Launches++;
    }
}
