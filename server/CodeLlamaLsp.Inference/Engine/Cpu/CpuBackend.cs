// The CPU backend: fp32 math with managed SIMD (System.Numerics.Tensors) on all cores. It is the no-GPU
// fallback and the oracle that the CUDA kernels are compared with, so it favours plain, checkable code.
using System.Numerics;
using System.Numerics.Tensors;
using CodeLlamaLsp.Inference.Model;

namespace CodeLlamaLsp.Inference.Engine.Cpu;

/// <summary>Runs the forward-pass ops on the CPU in fp32.</summary>
public sealed class CpuBackend : IComputeBackend
{
    private readonly RopeTables _rope = new();

    public string Name => $"cpu ({Environment.ProcessorCount} threads, {Vector<float>.Count * 32}-bit SIMD)";

    public DeviceBuffer Allocate(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        return new CpuBuffer(new float[length]);
    }

    public void Upload(ReadOnlySpan<float> source, DeviceBuffer destination, int destinationOffset) =>
        source.CopyTo(Buf(destination).AsSpan(destinationOffset, source.Length));

    public void Download(DeviceBuffer source, int sourceOffset, Span<float> destination) =>
        Buf(source).AsSpan(sourceOffset, destination.Length).CopyTo(destination);

    public void Copy(DeviceBuffer source, int sourceOffset, DeviceBuffer destination, int destinationOffset, int count) =>
        Buf(source).AsSpan(sourceOffset, count).CopyTo(Buf(destination).AsSpan(destinationOffset, count));

    public PreparedLinear PrepareLinear(LinearWeights weights) => weights switch
    {
        GptqLinearWeights gptq => CpuGptqLinear.Prepare(gptq),
        DenseLinearWeights dense => CpuDenseLinear.Prepare(dense),
        null => throw new ArgumentNullException(nameof(weights)),
        _ => throw new ArgumentException($"Linear '{weights.Name}' has an unsupported weight type {weights.GetType().Name}.", nameof(weights)),
    };

    public PreparedEmbedding PrepareEmbedding(TensorData table) => CpuEmbedding.Prepare(table);

    public DeviceBuffer PrepareVector(TensorData vector)
    {
        ArgumentNullException.ThrowIfNull(vector);
        if (vector.Shape.Count != 1)
        {
            throw new ArgumentException($"Tensor '{vector.Name}' has shape [{string.Join(", ", vector.Shape)}]; expected a vector.", nameof(vector));
        }

        return new CpuBuffer(vector.ToFloat32());
    }

    public KvCacheStorage AllocateKvCache(int layers, int kvHeads, int headDim, int capacity) =>
        new CpuKvCache(layers, kvHeads, headDim, capacity);

    public void Embed(PreparedEmbedding table, ReadOnlySpan<int> tokenIds, DeviceBuffer output)
    {
        var embedding = table as CpuEmbedding ?? throw new ArgumentException("The embedding was not prepared by the CPU backend.", nameof(table));
        embedding.Lookup(tokenIds, Buf(output));
    }

    public void RmsNorm(DeviceBuffer input, DeviceBuffer weight, DeviceBuffer output, int rows, int width, float eps)
    {
        var x = Buf(input);
        var w = Buf(weight).AsSpan(0, width);
        var y = Buf(output);
        for (int t = 0; t < rows; t++)
        {
            var row = x.AsSpan(t * width, width);
            float meanSquare = TensorPrimitives.SumOfSquares(row) / width;
            float scale = 1f / MathF.Sqrt(meanSquare + eps);
            var dst = y.AsSpan(t * width, width);
            TensorPrimitives.Multiply(row, scale, dst);
            TensorPrimitives.Multiply(dst, w, dst);
        }
    }

    public void Rope(DeviceBuffer x, int rows, int heads, int headDim, int startPosition, float theta)
    {
        var data = Buf(x);
        var invFreq = _rope.InverseFrequencies(headDim, theta);
        int half = headDim / 2;
        Span<float> cos = stackalloc float[half];
        Span<float> sin = stackalloc float[half];
        for (int t = 0; t < rows; t++)
        {
            float position = startPosition + t;
            for (int i = 0; i < half; i++)
            {
                // fp32 angle as transformers computes it, so long positions round the same way.
                float angle = position * invFreq[i];
                cos[i] = MathF.Cos(angle);
                sin[i] = MathF.Sin(angle);
            }

            for (int h = 0; h < heads; h++)
            {
                var head = data.AsSpan((t * heads + h) * headDim, headDim);
                for (int i = 0; i < half; i++)
                {
                    float a = head[i];
                    float b = head[i + half];
                    head[i] = (a * cos[i]) - (b * sin[i]);
                    head[i + half] = (b * cos[i]) + (a * sin[i]);
                }
            }
        }
    }

    public void Linear(PreparedLinear weights, DeviceBuffer input, DeviceBuffer output, int rows)
    {
        var x = Buf(input);
        var y = Buf(output);
        if (x.Length < rows * weights.InFeatures || y.Length < rows * weights.OutFeatures)
        {
            throw new ArgumentException($"Linear '{weights.Name}' needs input [{rows}, {weights.InFeatures}] and output [{rows}, {weights.OutFeatures}]; the buffers hold {x.Length} and {y.Length} elements.");
        }

        switch (weights)
        {
            case CpuGptqLinear gptq:
                gptq.Forward(x, y, rows);
                break;
            case CpuDenseLinear dense:
                dense.Forward(x, y, rows);
                break;
            default:
                throw new ArgumentException($"Linear '{weights.Name}' was not prepared by the CPU backend.", nameof(weights));
        }
    }

    public void StoreKv(KvCacheStorage cache, int layer, DeviceBuffer k, DeviceBuffer v, int startPosition, int rows) =>
        Cache(cache).Store(layer, Buf(k), Buf(v), startPosition, rows);

    public void Attention(DeviceBuffer q, KvCacheStorage cache, int layer, DeviceBuffer output, int heads, int startPosition, int rows) =>
        CpuAttention.Run(Buf(q), Cache(cache), layer, Buf(output), heads, startPosition, rows);

    public void SiluMultiply(DeviceBuffer gate, DeviceBuffer up, int count)
    {
        var g = Buf(gate).AsSpan(0, count);
        var u = Buf(up).AsSpan(0, count);
        const int Chunk = 1024;
        Span<float> sigmoid = stackalloc float[Chunk];
        for (int start = 0; start < count; start += Chunk)
        {
            int n = Math.Min(Chunk, count - start);
            var gs = g.Slice(start, n);
            TensorPrimitives.Sigmoid(gs, sigmoid[..n]);
            TensorPrimitives.Multiply(gs, sigmoid[..n], gs);
            TensorPrimitives.Multiply(gs, u.Slice(start, n), gs);
        }
    }

    public void Add(DeviceBuffer accumulator, DeviceBuffer addend, int count)
    {
        var a = Buf(accumulator).AsSpan(0, count);
        TensorPrimitives.Add(a, Buf(addend).AsSpan(0, count), a);
    }

    public void Dispose()
    {
    }

    private static float[] Buf(DeviceBuffer buffer) =>
        (buffer as CpuBuffer ?? throw new ArgumentException("The buffer was not allocated by the CPU backend.", nameof(buffer))).Data;

    private static CpuKvCache Cache(KvCacheStorage cache) =>
        cache as CpuKvCache ?? throw new ArgumentException("The KV cache was not allocated by the CPU backend.", nameof(cache));

    /// <summary>A host array standing in for device memory.</summary>
    private sealed class CpuBuffer(float[] data) : DeviceBuffer(data.Length)
    {
        public float[] Data { get; } = data;
    }

    /// <summary>inv_freq per (head width, theta), computed once.</summary>
    private sealed class RopeTables
    {
        private (int HeadDim, float Theta, float[] InvFreq)? _last;

        public float[] InverseFrequencies(int headDim, float theta)
        {
            if (_last is { } last && last.HeadDim == headDim && last.Theta == theta)
            {
                return last.InvFreq;
            }

            var invFreq = new float[headDim / 2];
            for (int i = 0; i < invFreq.Length; i++)
            {
                float exponent = (2f * i) / headDim;
                invFreq[i] = 1f / MathF.Pow(theta, exponent);
            }

            _last = (headDim, theta, invFreq);
            return invFreq;
        }
    }
}
