// Where CUDA tests run: "sim" is ILGPU's CPU accelerator (CI, small sizes), "gpu" a real CUDA device
// (skipped with the reason where there is none). One device of each kind is shared by a test run.
using CodeLlamaLsp.Inference.Engine.Cuda;

namespace CodeLlamaLsp.Inference.Tests.Cuda;

internal static class TestDevices
{
    private static readonly Lazy<CudaDevice> Simulator = new(CudaDevice.CreateCpuSimulator);
    private static readonly Lazy<(CudaDevice? Device, string? WhyNot)> Gpu = new(() =>
    {
        var d = CudaDevice.TryCreateCuda(out var why);
        return (d, why);
    });

    /// <summary>
    /// The device for a test case: "sim", or "gpu" and "gpu-builtin" (the same GPU; the test turns cuBLAS off for the
    /// latter); Assert.Ignore when there is no GPU.
    /// </summary>
    public static CudaDevice Get(string kind)
    {
        if (kind == "sim")
        {
            return Simulator.Value;
        }

        var (device, whyNot) = Gpu.Value;
        if (device == null)
        {
            Assert.Ignore($"No CUDA device: {whyNot}");
        }

        return device!;
    }
}
