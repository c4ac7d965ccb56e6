// Picks the compute backend for a requested device. The CUDA backend plugs in through the partial method
// TryCreateCudaBackend, implemented in Engine/Cuda/ by the CUDA backend, so this file does not change when
// it arrives and builds without it.
using CodeLlamaLsp.Inference.Engine.Cpu;

namespace CodeLlamaLsp.Inference.Engine;

/// <summary>Creates backends and in-process generators.</summary>
public static partial class EngineFactory
{
    /// <summary>
    /// Creates the backend for <paramref name="device"/>. Auto tries CUDA and falls back to the CPU with a
    /// warning through <paramref name="log"/>; Cuda without a usable device throws
    /// <see cref="InvalidOperationException"/> saying why.
    /// </summary>
    public static IComputeBackend CreateBackend(DeviceKind device, Action<string>? log = null)
    {
        log ??= _ => { };
        if (device == DeviceKind.Cpu)
        {
            return new CpuBackend();
        }

        IComputeBackend? cuda = null;
        string? whyNot = null;
        TryCreateCudaBackend(log, ref cuda, ref whyNot);
        if (cuda != null)
        {
            return cuda;
        }

        whyNot ??= "this build has no CUDA backend";
        if (device == DeviceKind.Cuda)
        {
            throw new InvalidOperationException($"--device cuda was requested but CUDA is not available: {whyNot}.");
        }

        log($"warning: CUDA is not available ({whyNot}); running on the CPU, which is much slower.");
        return new CpuBackend();
    }

    /// <summary>
    /// Hook for the CUDA backend (implement it in Engine/Cuda/EngineFactory.Cuda.cs as
    /// <c>static partial void TryCreateCudaBackend(Action&lt;string&gt; log, ref IComputeBackend? backend, ref string? whyNot)</c>):
    /// set <paramref name="backend"/> when a CUDA device can be used, otherwise set <paramref name="whyNot"/> to a
    /// short reason ("no CUDA device found", "driver too old: ..."). Must not throw for a missing device.
    /// </summary>
    static partial void TryCreateCudaBackend(Action<string> log, ref IComputeBackend? backend, ref string? whyNot);
}
