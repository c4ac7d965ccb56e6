// A linear layer resident on the GPU: GPTQ packed words, zeros and scales (never a dequantized copy), or
// fp16 dense weights, plus what producers need to write its input (layout bits and act-order permutation).
using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Runtime;
using CodeLlamaLsp.Inference.Model;

namespace CodeLlamaLsp.Inference.Engine.Cuda;

/// <summary>Device copy of one (possibly fused) linear layer.</summary>
internal sealed class CudaLinear : PreparedLinear
{
    private readonly MemoryBuffer1D<uint, Stride1D.Dense> weight; // GPTQ qweight [in/rpw, out] or dense [out, in/2] half2
    private readonly MemoryBuffer1D<uint, Stride1D.Dense>? qzeros;
    private readonly MemoryBuffer1D<ushort, Stride1D.Dense>? scales;
    private readonly MemoryBuffer1D<ushort, Stride1D.Dense> bias;
    private readonly MemoryBuffer1D<int, Stride1D.Dense> inversePermutation;
    private readonly bool hasBias;
    private readonly bool hasPermutation;
    private readonly int groupSize;
    private readonly int zeroOffset;

    private CudaLinear(string name, int inFeatures, int outFeatures, int bits, MemoryBuffer1D<uint, Stride1D.Dense> weight, MemoryBuffer1D<uint, Stride1D.Dense>? qzeros, MemoryBuffer1D<ushort, Stride1D.Dense>? scales, MemoryBuffer1D<ushort, Stride1D.Dense> bias, bool hasBias, MemoryBuffer1D<int, Stride1D.Dense> inversePermutation, bool hasPermutation, int groupSize, int zeroOffset)
        : base(name, inFeatures, outFeatures)
    {
        Bits = bits;
        this.weight = weight;
        this.qzeros = qzeros;
        this.scales = scales;
        this.bias = bias;
        this.hasBias = hasBias;
        this.inversePermutation = inversePermutation;
        this.hasPermutation = hasPermutation;
        this.groupSize = groupSize;
        this.zeroOffset = zeroOffset;
    }

    /// <summary>
    /// GPTQ launches of up to <see cref="GptqSmallBatchKernels.MaxRows"/> rows take the small-batch tensor-core kernel
    /// where it supports the layer (4 bits); otherwise launches with at least this many rows use cuBLAS on the layer
    /// dequantized to fp16 where cuBLAS is installed (<see cref="CudaKernels.TryCublasGemm"/>), else the tiled GEMM
    /// (dequantize once per 128 rows), and fewer rows, and layers whose group size the GEMM cannot tile, the GEMV,
    /// which reads each weight once per row but needs no row tile to fill.
    /// </summary>
    public const int GemmMinRows = 16;

    /// <summary>4 or 8 for GPTQ, 16 for dense fp16.</summary>
    public int Bits { get; }

    public override long SizeInBytes => weight.LengthInBytes + (qzeros?.LengthInBytes ?? 0) + (scales?.LengthInBytes ?? 0) + bias.LengthInBytes + inversePermutation.LengthInBytes;

    /// <summary>How producers must write this layer's fp16 input (pair order and act-order permutation).</summary>
    public InputLayoutArgs InputLayout => new()
    {
        Bits = Bits,
        HasPermutation = hasPermutation ? 1 : 0,
        InversePermutation = inversePermutation.View,
    };

    /// <summary>Queues any linear layer's upload (see <see cref="StagedUpload"/>): GPTQ in group order, or dense fp16.</summary>
    public static CudaLinear Upload(StagedUpload upload, LinearWeights weights) => weights switch
    {
        GptqLinearWeights g => Upload(upload, GptqHostMatrix.From(g)),
        DenseLinearWeights d => Upload(upload, d),
        _ => throw new ArgumentException($"Unsupported linear layer type {weights?.GetType().Name}.", nameof(weights)),
    };

    public static CudaLinear Upload(StagedUpload upload, GptqHostMatrix m)
    {
        var weight = upload.Add(m.QWeight);
        var zeros = upload.Add(m.QZeros);
        var scales = upload.Add(m.Scales);
        var bias = upload.Add(m.Bias);
        var perm = upload.Add(m.Permutation);
        return new CudaLinear(m.Name, m.InFeatures, m.OutFeatures, m.Bits, weight, zeros, scales, bias, m.HasBias, perm, m.InversePermutation != null, m.GroupSize, m.ZerosAreV2 ? 0 : 1);
    }

    public static CudaLinear Upload(StagedUpload upload, DenseLinearWeights d)
    {
        if (d.InFeatures % 8 != 0)
        {
            throw new NotSupportedException($"{d.Name}: the CUDA dense GEMV needs in_features to be a multiple of 8; got {d.InFeatures}.");
        }

        if (d.Weight.ElementCount != (long)d.InFeatures * d.OutFeatures)
        {
            throw new InvalidDataException($"{d.Name}: weight '{d.Weight.Name}' has {d.Weight.ElementCount} elements; expected [{d.OutFeatures}, {d.InFeatures}].");
        }

        // fp16 pairs as one word each: the row of in halves is in / 2 words.
        var halves = HostTensor.HalfBits(d.Name + ".weight", d.Weight, d.InFeatures);
        var weight = upload.Add(new HostTensor<uint>(halves.Name, halves.Rows, d.InFeatures / 2, (destination, firstRow) =>
            halves.Write(MemoryMarshal.Cast<uint, ushort>(destination), firstRow)));
        var bias = upload.Add(d.Bias != null ? HostTensor.HalfBits(d.Name + ".bias", d.Bias, d.OutFeatures) : HostTensor.Zero<ushort>(d.Name + ".bias"));
        var perm = upload.Add(HostTensor.Zero<int>(d.Name + ".perm"));
        return new CudaLinear(d.Name, d.InFeatures, d.OutFeatures, 16, weight, null, null, bias, d.Bias != null, perm, false, 0, 0);
    }

    /// <summary>An fp16 [out, in] matrix (lm_head) from a raw tensor.</summary>
    public static CudaLinear UploadDense(StagedUpload upload, string name, TensorData weight, int inFeatures, int outFeatures) =>
        Upload(upload, new DenseLinearWeights(name, inFeatures, outFeatures, weight, null));

    /// <summary>output[rows, outStride] (+)= input W; the fp16 input written as <see cref="InputLayout"/> says.</summary>
    public void Run(CudaKernels kernels, ArrayView<uint> input, ArrayView<float> output, int rows, int outStride, bool accumulate)
    {
        if (Bits == 16)
        {
            kernels.DenseGemv(
                new DenseGemvArgs
                {
                    Weight = weight.View,
                    Input = input,
                    Output = output,
                    Bias = bias.View,
                    InFeatures = InFeatures,
                    OutFeatures = OutFeatures,
                    HasBias = hasBias ? 1 : 0,
                    Accumulate = accumulate ? 1 : 0,
                    OutputStride = outStride,
                    OutputOffset = 0,
                },
                rows);
            return;
        }

        var args = GptqArgs(input, output, outStride, accumulate);
        if (rows <= GptqSmallBatchKernels.MaxRows && CudaKernels.SupportsSmallBatch(Bits, InFeatures, OutFeatures, groupSize))
        {
            kernels.SmallBatch(args, rows);
        }
        else if (rows >= GemmMinRows && kernels.TryCublasGemm(args, rows))
        {
            // cuBLAS on the layer dequantized to fp16 (prefill), where the machine has it.
        }
        else if (rows >= GemmMinRows && GptqGemmKernels.Supports(groupSize))
        {
            kernels.Gemm(args, rows);
        }
        else
        {
            kernels.Gemv(args, rows);
        }
    }

    /// <summary>
    /// Runs 2 or 3 GPTQ layers that share the rows and in-features (act-order q/k/v or gate/up that could not be fused),
    /// part p from <paramref name="inputs"/>[p] (written in its own <see cref="InputLayout"/>) into the columns after the
    /// previous parts' of <paramref name="output"/> (stride <paramref name="outStride"/>), as one small-batch launch:
    /// one stream-K ramp and tail instead of one per layer. Returns false, having done nothing, unless there are 1 to 16
    /// rows and the parts can share a launch (<see cref="CudaKernels.SupportsSmallBatch(ReadOnlySpan{GptqGemvArgs})"/>);
    /// decode and speculative verification both come here, so a row's bits do not depend on which ran it.
    /// </summary>
    public static bool TryRunSmallBatch(CudaKernels kernels, CudaLinear[] parts, ArrayView<uint>[] inputs, ArrayView<float> output, int rows, int outStride, bool accumulate)
    {
        if (parts.Length < 2 || parts.Length > CudaKernels.MaxSmallBatchParts || rows < 1 || rows > GptqSmallBatchKernels.MaxRows || parts.Any(p => p.Bits == 16))
        {
            return false;
        }

        var args = new GptqGemvArgs[parts.Length];
        long offset = 0;
        for (int p = 0; p < parts.Length; p++)
        {
            args[p] = parts[p].GptqArgs(inputs[p], output.SubView(offset), outStride, accumulate);
            offset += parts[p].OutFeatures;
        }

        if (!CudaKernels.SupportsSmallBatch(args))
        {
            return false;
        }

        kernels.SmallBatch(args, rows);
        return true;
    }

    /// <summary>The GPTQ kernels' launch arguments for this layer (every kernel takes the same).</summary>
    internal GptqGemvArgs GptqArgs(ArrayView<uint> input, ArrayView<float> output, int outStride, bool accumulate)
    {
        if (Bits == 16)
        {
            throw new InvalidOperationException($"{Name} is a dense fp16 layer, not GPTQ.");
        }

        return new GptqGemvArgs
        {
            QWeight = weight.View,
            QZeros = qzeros!.View,
            Scales = scales!.View,
            Bias = bias.View,
            Input = input,
            Output = output,
            InFeatures = InFeatures,
            OutFeatures = OutFeatures,
            Bits = Bits,
            GroupSize = groupSize,
            ZeroOffset = zeroOffset,
            HasBias = hasBias ? 1 : 0,
            Accumulate = accumulate ? 1 : 0,
            OutputStride = outStride,
            OutputOffset = 0,
        };
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            weight.Dispose();
            qzeros?.Dispose();
            scales?.Dispose();
            bias.Dispose();
            inversePermutation.Dispose();
        }

        base.Dispose(disposing);
    }
}
