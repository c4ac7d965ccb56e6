// A dense (unquantized) linear on the CPU, used for lm_head: weight [out, in] in the HF layout, so each
// output is one dot product of contiguous rows; outputs are split across threads.
using System.Numerics.Tensors;
using CodeLlamaLsp.Inference.Model;

namespace CodeLlamaLsp.Inference.Engine.Cpu;

/// <summary>y = x W^T (+ bias) with W [out, in] converted to fp32 at load (or per row when too big to convert).</summary>
internal sealed class CpuDenseLinear : PreparedLinear
{
    /// <summary>Above this many elements the weight stays in its file dtype and rows are converted on the fly.</summary>
    private const long ConvertAtLoadLimit = 1L << 27;

    private const int OutputsPerWorkItem = 64;

    private readonly float[]? _weight; // [out, in] when converted at load
    private readonly TensorData _source; // [out, in]
    private readonly float[]? _bias; // [out]

    private CpuDenseLinear(DenseLinearWeights weights, float[]? weight, float[]? bias)
        : base(weights.Name, weights.InFeatures, weights.OutFeatures)
    {
        _source = weights.Weight;
        _weight = weight;
        _bias = bias;
    }

    public override long SizeInBytes => _weight != null ? _weight.LongLength * 4 : _source.Data.Length;

    public static CpuDenseLinear Prepare(DenseLinearWeights weights)
    {
        var w = weights.Weight;
        if (w.Shape.Count != 2 || w.Shape[0] != weights.OutFeatures || w.Shape[1] != weights.InFeatures)
        {
            throw new ArgumentException($"Linear '{weights.Name}': weight '{w.Name}' has shape [{string.Join(", ", w.Shape)}]; expected [{weights.OutFeatures}, {weights.InFeatures}].", nameof(weights));
        }

        if (weights.Bias is { } b && b.ElementCount != weights.OutFeatures)
        {
            throw new ArgumentException($"Linear '{weights.Name}': bias '{b.Name}' has {b.ElementCount} elements; expected {weights.OutFeatures}.", nameof(weights));
        }

        float[]? converted = w.ElementCount <= ConvertAtLoadLimit ? w.ToFloat32() : null;
        return new CpuDenseLinear(weights, converted, weights.Bias?.ToFloat32());
    }

    public void Forward(float[] x, float[] y, int rows)
    {
        int inF = InFeatures;
        int outF = OutFeatures;
        int items = (outF + OutputsPerWorkItem - 1) / OutputsPerWorkItem;
        Parallel.For(0, items, item =>
        {
            int first = item * OutputsPerWorkItem;
            int last = Math.Min(outF, first + OutputsPerWorkItem);
            float[]? rowBuffer = _weight == null ? new float[inF] : null;
            for (int n = first; n < last; n++)
            {
                ReadOnlySpan<float> wRow;
                if (_weight != null)
                {
                    wRow = _weight.AsSpan(n * inF, inF);
                }
                else
                {
                    RowConversion.ToFloat32(_source, (long)n * inF, rowBuffer);
                    wRow = rowBuffer;
                }

                float bias = _bias?[n] ?? 0f;
                for (int t = 0; t < rows; t++)
                {
                    y[(t * outF) + n] = TensorPrimitives.Dot(x.AsSpan(t * inF, inF), wRow) + bias;
                }
            }
        });
    }
}
