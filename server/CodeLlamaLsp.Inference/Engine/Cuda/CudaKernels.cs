// The compiled kernels of one accelerator and the code that picks their launch geometry, so every caller
// (the CUDA session, its attention, the probes, the kernel tests) launches each kernel the same way.
using ILGPU;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace CodeLlamaLsp.Inference.Engine.Cuda;

/// <summary>Kernel delegates plus launch helpers; every launch goes to <see cref="Stream"/>.</summary>
internal sealed class CudaKernels : IDisposable
{
    /// <summary>Widest GPTQ layer (or parts of one launch together, see <see cref="SmallBatch(ReadOnlySpan{GptqGemvArgs}, int)"/>) the small-batch kernel's scratch is sized for; wider layers take the GEMV.</summary>
    public const int MaxSmallBatchColumns = 65536;

    private readonly Accelerator accelerator;
    private readonly Action<AcceleratorStream, KernelConfig, GptqGemvArgs> gemv;
    private readonly Action<AcceleratorStream, KernelConfig, GptqGemvArgs> gemm;
    private readonly Action<AcceleratorStream, KernelConfig, SmallBatchArgs> smallBatch;
    private readonly int smallBatchBlocks;
    private readonly MemoryBuffer1D<float, Stride1D.Dense> smallBatchPartials;
    private readonly MemoryBuffer1D<int, Stride1D.Dense> smallBatchArrivals;
    private readonly Action<AcceleratorStream, KernelConfig, DenseGemvArgs> denseGemv;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, int, float, NormOutputs> rmsNormHalf;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, int, float, NormOutputs> splitRowNormHalf;
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
    private readonly bool patchGridDependencies;
    private readonly HashSet<IntPtr> gridDependent = [];
    private readonly List<Kernel> patchedKernels = []; // loaded outside ILGPU's kernel cache, so disposed here

    public CudaKernels(Accelerator accelerator, AcceleratorStream stream)
    {
        this.accelerator = accelerator;
        Stream = stream;
        patchGridDependencies = accelerator is CudaAccelerator { Architecture.Major: >= 9 };
        Load(out gemv, GptqGemvKernels.Gemv);
        Load(out gemm, GptqGemmKernels.Gemm);
        Load(out smallBatch, GptqSmallBatchKernels.Run);

        // The small-batch kernel splits a layer over every block the GPU holds at once (stream-K): one wave, no tail.
        int blocksPerMultiprocessor = Math.Clamp(accelerator.EstimateMaxActiveGroupsPerMultiprocessor(smallBatch.GetKernel(), GptqSmallBatchKernels.BlockThreads, 0), 1, 16);
        smallBatchBlocks = Math.Min(GptqSmallBatchKernels.MaxBlocks, accelerator.NumMultiprocessors * blocksPerMultiprocessor);
        int maxColumnBlocks = GptqSmallBatchKernels.ColumnBlocks(MaxSmallBatchColumns);
        smallBatchPartials = accelerator.Allocate1D<float>(GptqSmallBatchKernels.Slots(smallBatchBlocks, maxColumnBlocks) * (GptqSmallBatchKernels.SlotBytes / 4));
        smallBatchArrivals = accelerator.Allocate1D<int>(maxColumnBlocks);
        smallBatchArrivals.MemSetToZero(stream);
        Load(out denseGemv, DenseGemvKernels.Gemv);
        Load(out rmsNormHalf, RmsNormKernels.ToHalf);
        Load(out splitRowNormHalf, RmsNormKernels.SplitRowToHalf);
        Load(out rotateAndStore, RopeKernels.RotateAndStore);
        Load(out attention, AttentionKernels.Partial, AttentionKernels.PartialSpecialization);
        Load(out prefillAttention, PrefillAttentionKernels.Prefill);
        Load(out combine, AttentionKernels.Combine);
        Load(out embed, ActivationKernels.Embed);
        Load(out siluHalf, ActivationKernels.SiluMultiplyToHalf);
        Load(out toHalf, ActivationKernels.ToHalfLayout);
        Load(out advance, ActivationKernels.AdvancePosition);
        Load(out readBandwidth, ActivationKernels.ReadBandwidth);
        Load(out sample, SamplingKernels.Select);
        Load(out dequantize, GptqDequantizeKernels.ToHalf);
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

    /// <summary>
    /// The CUDA functions that start with <see cref="GridDependencies.Prologue"/>: every kernel on an sm_90+ device,
    /// none elsewhere. Captured graphs link consecutive ones by programmatic edges (see <see cref="GridDependencies"/>).
    /// </summary>
    public IReadOnlySet<IntPtr> GridDependentFunctions => gridDependent;

    /// <summary>Loads a kernel; on sm_90+ through <see cref="GridDependencies.Patch"/>, so that graphs can launch it early.</summary>
    private void Load<TLauncher>(out TLauncher launcher, Delegate kernel, KernelSpecialization specialization = default)
        where TLauncher : Delegate
    {
        if (patchGridDependencies && accelerator is CudaAccelerator cuda)
        {
            var compiled = (PTXCompiledKernel)cuda.Backend.Compile(EntryPointDescription.FromExplicitlyGroupedKernel(kernel.Method), specialization);
            if (GridDependencies.TrySetPtx(compiled, GridDependencies.Patch(compiled.PTXAssembly)))
            {
                var loaded = (CudaKernel)accelerator.LoadKernel(compiled);
                patchedKernels.Add(loaded);
                gridDependent.Add(loaded.FunctionPtr);
                launcher = loaded.CreateLauncherDelegate<TLauncher>();
                return;
            }
        }

        launcher = accelerator.LoadKernel<TLauncher>(kernel.Method, specialization);
    }

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
    /// Whether <see cref="SmallBatch(ReadOnlySpan{GptqGemvArgs}, int)"/> can run these layers in one launch: 1 to 3 that
    /// each run through the kernel, share in-features, bits, group size and zero convention, and together stay within
    /// the scratch (<see cref="MaxSmallBatchColumns"/> columns in whole column blocks) and the split's 32-bit arithmetic.
    /// </summary>
    public static bool SupportsSmallBatch(ReadOnlySpan<GptqGemvArgs> parts)
    {
        if (parts.Length < 1 || parts.Length > MaxSmallBatchParts)
        {
            return false;
        }

        long columnBlocks = 0;
        foreach (var p in parts)
        {
            if (!SupportsSmallBatch(p.Bits, p.InFeatures, p.OutFeatures, p.GroupSize) || p.InFeatures != parts[0].InFeatures
                || p.Bits != parts[0].Bits || p.GroupSize != parts[0].GroupSize || p.ZeroOffset != parts[0].ZeroOffset)
            {
                return false;
            }

            columnBlocks += GptqSmallBatchKernels.ColumnBlocks(p.OutFeatures);
        }

        return columnBlocks <= GptqSmallBatchKernels.ColumnBlocks(MaxSmallBatchColumns)
            && columnBlocks * (parts[0].InFeatures / GptqSmallBatchKernels.UnitInputs) <= GptqSmallBatchKernels.MaxUnits;
    }

    /// <summary>Most layers one small-batch launch takes (q, k and v of an act-order checkpoint).</summary>
    public const int MaxSmallBatchParts = 3;

    /// <summary>
    /// The small-batch tensor-core kernel (1 to 16 rows; see <see cref="GptqSmallBatchKernels"/>); same arguments as
    /// <see cref="Gemv"/>. The grid depends on the device only, so a row's bits do not depend on its batch.
    /// </summary>
    public void SmallBatch(GptqGemvArgs g, int rows) => SmallBatch([g], rows);

    /// <summary>
    /// One small-batch launch for 1 to <see cref="MaxSmallBatchParts"/> layers that share their rows and in-features
    /// (<see cref="SupportsSmallBatch(ReadOnlySpan{GptqGemvArgs})"/>), each with its own weights, input and output columns:
    /// their column blocks, part after part, are split over the blocks as one layer's (one ramp and tail instead of one
    /// per layer). A part's bits depend on the parts launched with it (the split does), not on the row count.
    /// </summary>
    public void SmallBatch(ReadOnlySpan<GptqGemvArgs> parts, int rows)
    {
        if (!SupportsSmallBatch(parts))
        {
            throw new ArgumentException($"{parts.Length} layers cannot share one small-batch launch.", nameof(parts));
        }

        var layers = new GptqGemvArgs[MaxSmallBatchParts];
        var zeros = new long[MaxSmallBatchParts];
        var scales = new long[MaxSmallBatchParts];
        var firstBlocks = new int[MaxSmallBatchParts];
        int columnBlocks = 0;
        for (int p = 0; p < MaxSmallBatchParts; p++)
        {
            // An absent part repeats part 0 (valid views, never read: its first block is past the end).
            var g = parts[p < parts.Length ? p : 0];
            g.Rows = rows;
            g.InputAddress = DeviceAddress(g.Input);
            g.QWeightAddress = DeviceAddress(g.QWeight);
            layers[p] = g;
            zeros[p] = DeviceAddress(g.QZeros);
            scales[p] = DeviceAddress(g.Scales);
            firstBlocks[p] = columnBlocks;
            if (p < parts.Length)
            {
                columnBlocks += GptqSmallBatchKernels.ColumnBlocks(g.OutFeatures);
            }
        }

        var args = new SmallBatchArgs
        {
            Layer = layers[0],
            Layer1 = layers[1],
            Layer2 = layers[2],
            QZerosAddress = zeros[0],
            ScalesAddress = scales[0],
            QZerosAddress1 = zeros[1],
            ScalesAddress1 = scales[1],
            QZerosAddress2 = zeros[2],
            ScalesAddress2 = scales[2],
            FirstBlock1 = parts.Length > 1 ? firstBlocks[1] : columnBlocks,
            FirstBlock2 = parts.Length > 2 ? firstBlocks[2] : columnBlocks,
            ColumnBlocks = columnBlocks,
            PartialsAddress = DeviceAddress<float>(smallBatchPartials.View),
            Partials = smallBatchPartials.View,
            Arrivals = smallBatchArrivals.View,
            ArrivalsAddress = DeviceAddress<int>(smallBatchArrivals.View),
            Blocks = smallBatchBlocks,
            KUnits = layers[0].InFeatures / GptqSmallBatchKernels.UnitInputs,
            GroupUnits = layers[0].GroupSize / GptqSmallBatchKernels.UnitInputs,
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

    public void RmsNormToHalf(ArrayView<float> input, ArrayView<float> weight, ArrayView<ushort> output, int rows, int width, float eps, InputLayoutArgs layout) =>
        RmsNormToHalf(input, weight, NormOutputs.One(output, layout), rows, width, eps);

    /// <summary>RMSNorm of <paramref name="rows"/> rows written as fp16 into each of <paramref name="outputs"/>' layouts in one launch.</summary>
    public void RmsNormToHalf(ArrayView<float> input, ArrayView<float> weight, NormOutputs outputs, int rows, int width, float eps)
    {
        if (SplitRowNorm(input, weight, rows, width) is { } split)
        {
            Launch(() => splitRowNormHalf(Stream, split, input, weight, width, eps, outputs));
        }
        else
        {
            Launch(() => rmsNormHalf(Stream, new KernelConfig(rows, NormThreads), input, weight, width, eps, outputs));
        }
    }

    /// <summary>
    /// The split-row RMSNorm's geometry (see <see cref="RmsNormKernels"/>) for a decode step's or a verification's few rows,
    /// or null for the one-block-per-row kernel. The choice depends on the row count only through the
    /// <see cref="RmsNormKernels.SplitRowMaxRows"/> bound, which covers every verification, so a decode row and the same
    /// row in a verification run the same kernel.
    /// </summary>
    private static KernelConfig? SplitRowNorm(ArrayView<float> input, ArrayView<float> weight, int rows, int width)
    {
        // The kernel reads input and weight by 16-byte quads.
        bool quadAligned = width % 4 == 0 && ((IContiguousArrayView)input).IndexInBytes % 16 == 0 && ((IContiguousArrayView)weight).IndexInBytes % 16 == 0;
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
        foreach (var kernel in patchedKernels)
        {
            kernel.Dispose();
        }
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
