// Checks a GPTQ linear's tensors against the AutoGPTQ layout (FACTS.md) and decodes the small per-group
// tensors (g_idx, scales, zeros, bias) that every backend needs in the same form. Shared by the CPU and
// CUDA backends so both reject a bad checkpoint with the same message.
using CodeLlamaLsp.Inference.Model;

namespace CodeLlamaLsp.Inference.Engine;

/// <summary>The decoded, validated per-group data of one GPTQ linear.</summary>
/// <param name="Groups">Number of quantization groups (rows of scales).</param>
/// <param name="GroupOfRow">[in]: the group of each input row (g_idx, or k / group size without act-order).</param>
/// <param name="Scales">[groups, out] fp32.</param>
/// <param name="Zeros">[groups, out] fp32 true zeros: the stored value plus one for v1 checkpoints.</param>
/// <param name="Bias">[out] fp32, or null when absent or all zero.</param>
internal sealed record GptqLayout(int Groups, int[] GroupOfRow, float[] Scales, float[] Zeros, float[]? Bias)
{
    public static GptqLayout Validate(GptqLinearWeights w)
    {
        ArgumentNullException.ThrowIfNull(w);
        if (w.Bits is not (4 or 8))
        {
            throw new ArgumentException($"GPTQ linear '{w.Name}' has {w.Bits}-bit weights; only 4 and 8 bits are supported.", nameof(w));
        }

        int pack = 32 / w.Bits;
        int inF = w.InFeatures;
        int outF = w.OutFeatures;
        if (inF % pack != 0 || outF % pack != 0)
        {
            throw new ArgumentException($"GPTQ linear '{w.Name}' is [{inF} -> {outF}]; both sizes must be multiples of {pack} for {w.Bits}-bit packing.", nameof(w));
        }

        if (w.GroupSize <= 0)
        {
            throw new ArgumentException($"GPTQ linear '{w.Name}' has group size {w.GroupSize}; expected a positive size (in_features for -1).", nameof(w));
        }

        int groups = (inF + w.GroupSize - 1) / w.GroupSize;
        Expect(w.QWeight, TensorDType.I32, [inF / pack, outF], w.Name);
        Expect(w.QZeros, TensorDType.I32, [groups, outF / pack], w.Name);
        if (w.Scales.DType is not (TensorDType.F16 or TensorDType.BF16 or TensorDType.F32) || !SameShape(w.Scales.Shape, [groups, outF]))
        {
            throw new ArgumentException($"GPTQ tensor '{w.Scales.Name}' is {w.Scales.DType} [{string.Join(", ", w.Scales.Shape)}]; expected F16 [{groups}, {outF}].", nameof(w));
        }

        var groupOfRow = new int[inF];
        if (w.GIdx is { } gIdx)
        {
            Expect(gIdx, TensorDType.I32, [inF], w.Name);
            gIdx.As<int>().CopyTo(groupOfRow);
            for (int k = 0; k < inF; k++)
            {
                if ((uint)groupOfRow[k] >= (uint)groups)
                {
                    throw new ArgumentException($"GPTQ tensor '{gIdx.Name}' maps row {k} to group {groupOfRow[k]}; expected 0..{groups - 1}.", nameof(w));
                }
            }
        }
        else
        {
            for (int k = 0; k < inF; k++)
            {
                groupOfRow[k] = k / w.GroupSize;
            }
        }

        var qzeros = w.QZeros.As<int>();
        var zeros = new float[groups * outF];
        uint mask = (1u << w.Bits) - 1;
        int offset = w.ZerosAreV2 ? 0 : 1;
        for (int g = 0; g < groups; g++)
        {
            for (int n = 0; n < outF; n++)
            {
                uint word = (uint)qzeros[(g * (outF / pack)) + (n / pack)];
                zeros[(g * outF) + n] = ((word >> (w.Bits * (n % pack))) & mask) + offset;
            }
        }

        float[]? bias = null;
        if (w.Bias is { } b)
        {
            if (b.ElementCount != outF)
            {
                throw new ArgumentException($"GPTQ tensor '{b.Name}' has {b.ElementCount} elements; expected {outF}.", nameof(w));
            }

            bias = b.ToFloat32();
            if (Array.TrueForAll(bias, v => v == 0f))
            {
                bias = null;
            }
        }

        return new GptqLayout(groups, groupOfRow, w.Scales.ToFloat32(), zeros, bias);
    }

    private static void Expect(TensorData t, TensorDType dtype, long[] shape, string linear)
    {
        if (t.DType != dtype || !SameShape(t.Shape, shape))
        {
            throw new ArgumentException($"GPTQ tensor '{t.Name}' of '{linear}' is {t.DType} [{string.Join(", ", t.Shape)}]; expected {dtype} [{string.Join(", ", shape)}].");
        }

        if (t.Data.Length != t.ElementCount * 4)
        {
            throw new ArgumentException($"GPTQ tensor '{t.Name}' has {t.Data.Length} bytes; expected {t.ElementCount * 4}.");
        }
    }

    private static bool SameShape(IReadOnlyList<long> actual, long[] expected) => actual.SequenceEqual(expected);
}
