// Measures the device's practical read bandwidth with a large 16-byte-load kernel, so benchmarks can
// state decode speed as a share of the bandwidth floor measured in the same run on the same card.
using System.Diagnostics;
using ILGPU;
using ILGPU.Runtime;

namespace CodeLlamaLsp.Inference.Engine.Cuda;

/// <summary>Read-bandwidth measurement.</summary>
public static class BandwidthProbe
{
    /// <summary>Median bytes per second of reading <paramref name="bytes"/> (non-zero data) over <paramref name="repeats"/> runs after a warm-up.</summary>
    public static double MeasureReadBytesPerSecond(CudaDevice device, long bytes = 4L << 30, int repeats = 9)
    {
        ArgumentNullException.ThrowIfNull(device);
        long words = bytes / 16 * 4;
        using var data = device.Accelerator.Allocate1D<uint>(words);
        using var sink = device.Accelerator.Allocate1D<uint>(1);
        data.View.AsContiguous().MemSet(device.Stream, 0x5A);
        device.Kernels.ReadBandwidth(data.View, sink.View);
        device.Synchronize();
        var times = new List<double>();
        for (int i = 0; i < Math.Max(1, repeats); i++)
        {
            var sw = Stopwatch.StartNew();
            device.Kernels.ReadBandwidth(data.View, sink.View);
            device.Synchronize();
            times.Add(sw.Elapsed.TotalSeconds);
        }

        times.Sort();
        return words * 4 / times[times.Count / 2];
    }
}
