// Times the linear layers of one forward pass alone, for `codellama-lsp bench`: every projection of a CudaModel
// and lm_head over the probe's own zeroed activations, captured as one CUDA graph and replayed, so the numbers show
// what weight reads (GEMV) and tensor-core tiles (GEMM) cost without norms, attention or launch gaps. Generation
// never calls it; it lives beside BandwidthProbe rather than inside the session.
using System.Diagnostics;
using ILGPU;
using ILGPU.Runtime;

namespace CodeLlamaLsp.Inference.Engine.Cuda;

/// <summary>Linear-layer timing on a GPU.</summary>
public static class LinearLayersProbe
{
    /// <summary>Batches of up to this many rows run 4-bit GPTQ layers through the small-batch tensor-core kernel; more take the GEMM.</summary>
    public static int SmallBatchMaxRows => GptqSmallBatchKernels.MaxRows;

    /// <summary>
    /// Seconds per pass of the linear layers over <paramref name="rows"/> rows (as <see cref="CudaLinear.Run"/> picks
    /// the kernel; lm_head of one row included), the mean of <paramref name="repeats"/>
    /// graph replays after one warm-up replay. Needs a CUDA device (graph capture).
    /// </summary>
    public static double SecondsPerPass(CudaModel model, int rows, int repeats)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentOutOfRangeException.ThrowIfLessThan(rows, 1);
        var device = model.Backend.Device;
        if (!device.IsCuda)
        {
            throw new InvalidOperationException("Timing the linear layers needs a CUDA device (it replays a captured graph).");
        }

        var c = model.Config;
        var memory = model.Backend.Memory;
        int qkvWidth = c.HiddenSize + (2 * c.NumKvHeads * c.HeadDim);
        int maxIn = Math.Max(c.HiddenSize, c.IntermediateSize);
        using var input = memory.Allocate<uint>(((long)rows * maxIn) + 4, "probe activations");
        using var qkv = memory.Allocate<float>((long)rows * qkvWidth, "probe activations");
        using var hidden = memory.Allocate<float>((long)rows * c.HiddenSize, "probe activations");
        using var gateUp = memory.Allocate<float>((long)rows * 2 * c.IntermediateSize, "probe activations");
        using var logits = memory.Allocate<float>(c.VocabSize, "probe activations");
        input.MemSetToZero(device.Stream);
        var k = device.Kernels;
        void Launches()
        {
            foreach (var l in model.Layers)
            {
                foreach (var q in l.Qkv)
                {
                    q.Run(k, input.View, qkv.View, rows, qkvWidth, accumulate: false);
                }

                l.O.Run(k, input.View, hidden.View, rows, c.HiddenSize, accumulate: false);
                foreach (var g in l.GateUp)
                {
                    g.Run(k, input.View, gateUp.View, rows, 2 * c.IntermediateSize, accumulate: false);
                }

                l.Down.Run(k, input.View, hidden.View, rows, c.HiddenSize, accumulate: false);
            }

            model.LmHead.Run(k, input.View, logits.View, 1, c.VocabSize, accumulate: false);
        }

        device.Synchronize();
        using var graph = CudaGraph.Capture(device.StreamHandle, Launches, device.Kernels.GridDependentFunctions);
        graph.Launch(device.StreamHandle);
        device.Synchronize();
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < repeats; i++)
        {
            graph.Launch(device.StreamHandle);
        }

        device.Synchronize();
        return sw.Elapsed.TotalSeconds / Math.Max(1, repeats);
    }
}
