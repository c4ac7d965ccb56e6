// Plugs the CUDA backend into EngineFactory: --device auto/cuda open the first CUDA device through ILGPU.
using CodeLlamaLsp.Inference.Engine.Cuda;

namespace CodeLlamaLsp.Inference.Engine;

public static partial class EngineFactory
{
    static partial void TryCreateCudaBackend(Action<string> log, ref IComputeBackend? backend, ref string? whyNot)
    {
        var device = CudaDevice.TryCreateCuda(out whyNot);
        if (device != null)
        {
            log($"using {device.Name} ({device.TotalMemory / (1024.0 * 1024 * 1024):F1} GiB)");
            backend = new CudaBackend(device);
        }
    }
}
