// RMSNorm kernels: fp32 statistics, output either fp32 (the generic op) or fp16 written straight into the
// input layout of the next linear layer (the fused decode path), saving one pass and one launch.
using ILGPU;

namespace CodeLlamaLsp.Inference.Engine.Cuda;

/// <summary>
/// Launch geometry: grid (rows), group <see cref="BlockThreads"/>; each block strides over one row of
/// <c>width</c> fp32 values, reduces the sum of squares through shared memory, then writes
/// x * rsqrt(mean(x^2) + eps) * weight. Reads input [rows, width] fp32 and weight [width] fp32.
/// </summary>
internal static class RmsNormKernels
{
    public const int BlockThreads = 256;

    public static void ToFloat(ArrayView<float> input, ArrayView<float> weight, ArrayView<float> output, int width, float eps)
    {
        float inv = InverseRms(input, width, eps);
        long b = (long)Grid.IdxX * width;
        for (int i = Group.IdxX; i < width; i += BlockThreads)
        {
            output[b + i] = input[b + i] * inv * weight[i];
        }
    }

    /// <summary>Same, writing fp16 at <see cref="ActivationLayout.HalfIndex"/> of the consumer (output row stride = width).</summary>
    public static void ToHalf(ArrayView<float> input, ArrayView<float> weight, ArrayView<ushort> output, int width, float eps, InputLayoutArgs layout)
    {
        float inv = InverseRms(input, width, eps);
        long b = (long)Grid.IdxX * width;
        for (int i = Group.IdxX; i < width; i += BlockThreads)
        {
            ActivationLayout.Store(output, Grid.IdxX, width, i, input[b + i] * inv * weight[i], layout);
        }
    }

    private static float InverseRms(ArrayView<float> input, int width, float eps)
    {
        var partial = SharedMemory.Allocate<float>(BlockThreads);
        long b = (long)Grid.IdxX * width;
        float sum = 0f;
        for (int i = Group.IdxX; i < width; i += BlockThreads)
        {
            float v = input[b + i];
            sum += v * v;
        }

        partial[Group.IdxX] = sum;
        Group.Barrier();
        for (int s = BlockThreads / 2; s > 0; s /= 2)
        {
            if (Group.IdxX < s)
            {
                partial[Group.IdxX] += partial[Group.IdxX + s];
            }

            Group.Barrier();
        }

        float mean = partial[0] / width;
        Group.Barrier();
        return 1f / MathF.Sqrt(mean + eps);
    }
}
