// CUDA graph capture of ILGPU launches through the driver API (libcuda), so a decode step of several
// hundred kernels costs one launch from the host. Capture needs a created stream (the legacy default
// stream fails with error 900) and kernels that read per-step values (position, token) from device memory.
using System.Runtime.InteropServices;

namespace CodeLlamaLsp.Inference.Engine.Cuda;

/// <summary>An instantiated graph captured from one stream.</summary>
internal sealed partial class CudaGraph : IDisposable
{
    private const string Driver = "libcuda.so.1";
    private const int CaptureModeRelaxed = 2;
    private IntPtr graph;
    private IntPtr exec;

    private CudaGraph(IntPtr graph, IntPtr exec)
    {
        this.graph = graph;
        this.exec = exec;
    }

    /// <summary>Programmatic edges in the graph (<see cref="GridDependencies"/>): consecutive kernels that launch early.</summary>
    public int ProgrammaticEdges { get; private init; }

    /// <summary>
    /// Records everything <paramref name="launches"/> issues on <paramref name="stream"/> into a graph, with programmatic
    /// edges between consecutive kernels of <paramref name="gridDependent"/> (kernels that start with
    /// <see cref="GridDependencies.Prologue"/>).
    /// </summary>
    public static CudaGraph Capture(IntPtr stream, Action launches, IReadOnlySet<IntPtr> gridDependent)
    {
        ArgumentNullException.ThrowIfNull(launches);
        Check(cuStreamBeginCapture_v2(stream, CaptureModeRelaxed), "cuStreamBeginCapture");
        try
        {
            launches();
        }
        catch
        {
            _ = cuStreamEndCapture(stream, out var broken);
            if (broken != IntPtr.Zero)
            {
                _ = cuGraphDestroy(broken);
            }

            throw;
        }

        Check(cuStreamEndCapture(stream, out var g), "cuStreamEndCapture");
        int programmatic = 0;
        if (gridDependent.Count > 0)
        {
            try
            {
                programmatic = GridDependencies.ConvertEdges(g, gridDependent);
            }
            catch
            {
                _ = cuGraphDestroy(g);
                throw;
            }
        }

        int rc = cuGraphInstantiateWithFlags(out var e, g, 0);
        if (rc != 0)
        {
            _ = cuGraphDestroy(g);
            Check(rc, "cuGraphInstantiateWithFlags");
        }

        return new CudaGraph(g, e) { ProgrammaticEdges = programmatic };
    }

    /// <summary>Queues one replay on <paramref name="stream"/>.</summary>
    public void Launch(IntPtr stream) => Check(cuGraphLaunch(exec, stream), "cuGraphLaunch");

    public void Dispose()
    {
        if (exec != IntPtr.Zero)
        {
            _ = cuGraphExecDestroy(exec);
            exec = IntPtr.Zero;
        }

        if (graph != IntPtr.Zero)
        {
            _ = cuGraphDestroy(graph);
            graph = IntPtr.Zero;
        }
    }

    private static void Check(int rc, string call)
    {
        if (rc != 0)
        {
            throw new InvalidOperationException($"{call} failed with CUDA driver error {rc}.");
        }
    }

    [LibraryImport(Driver)]
    private static partial int cuStreamBeginCapture_v2(IntPtr stream, int mode);

    [LibraryImport(Driver)]
    private static partial int cuStreamEndCapture(IntPtr stream, out IntPtr graph);

    [LibraryImport(Driver)]
    private static partial int cuGraphInstantiateWithFlags(out IntPtr exec, IntPtr graph, ulong flags);

    [LibraryImport(Driver)]
    private static partial int cuGraphLaunch(IntPtr exec, IntPtr stream);

    [LibraryImport(Driver)]
    private static partial int cuGraphExecDestroy(IntPtr exec);

    [LibraryImport(Driver)]
    private static partial int cuGraphDestroy(IntPtr graph);
}
