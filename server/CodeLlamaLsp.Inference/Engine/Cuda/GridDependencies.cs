// Programmatic dependent launch (Hopper, sm_90+): inside a captured CUDA graph, the next kernel's blocks are scheduled
// while the current kernel still runs and wait in `griddepcontrol.wait` until it has finished and its writes are
// visible, so a decode step's ~500 dependent launches stop paying launch latency one after another (TensorRT-LLM and
// vLLM do this for their decode kernels). Two parts: every kernel the engine loads starts with
// `griddepcontrol.wait; griddepcontrol.launch_dependents;` (patched into the PTX ILGPU emits, because ILGPU declares
// `.target sm_80` for kernels that need nothing newer and the instructions require sm_90), and after capture the graph's
// edges between two such kernels become programmatic edges. The wait comes before any memory access, so a kernel never
// reads what its predecessor has not finished writing, nor overwrites what it still reads; the one exception is a
// kernel that marks its wait (WaitMarker) after reading only weights (the small-batch GPTQ kernel starts its first
// weight copies while its predecessor ends). Outside a programmatic edge (plain launches, other GPUs' fallback) the
// instructions do nothing.
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using ILGPU.Backends.PTX;

namespace CodeLlamaLsp.Inference.Engine.Cuda;

/// <summary>PTX patching and graph-edge conversion for programmatic dependent launch.</summary>
internal static partial class GridDependencies
{
    private const string Driver = "libcuda.so.1";
    private const int NodeTypeKernel = 0;
    private const byte PortProgrammatic = 1;
    private const byte DependencyProgrammatic = 1;

    /// <summary>Waits until the previous kernel of a programmatic edge has finished and its writes are visible.</summary>
    private const string Wait = "griddepcontrol.wait;";

    /// <summary>Lets the next kernel of a programmatic edge be scheduled now.</summary>
    private const string LaunchDependents = "griddepcontrol.launch_dependents;";

    /// <summary>The two instructions every patched kernel starts with.</summary>
    public const string Prologue = Wait + "\n\t" + LaunchDependents;

    /// <summary>
    /// A PTX comment a kernel emits (inline asm) where it waits for its predecessor, after reading only what no kernel
    /// writes (weights): <see cref="Patch"/> turns each into <c>griddepcontrol.wait</c> and starts that kernel with
    /// <c>griddepcontrol.launch_dependents</c> alone. Unpatched (before sm_90) it stays a comment, and nothing waits.
    /// Every path of such a kernel that touches memory a kernel writes must pass a marker first.
    /// </summary>
    public const string WaitMarker = "// griddepcontrol.wait (patched in)";

    /// <summary>
    /// The kernel's PTX with <c>.target sm_90</c> and <see cref="Prologue"/> as the entry's first instructions (after its
    /// declarations), or, for a kernel with <see cref="WaitMarker"/>s, <c>griddepcontrol.launch_dependents</c> first and
    /// the wait at each marker. Throws when the text does not have the one entry ILGPU emits per kernel.
    /// </summary>
    public static string Patch(string ptx)
    {
        ArgumentNullException.ThrowIfNull(ptx);
        var target = TargetLine().Match(ptx);
        var entry = EntryLine().Matches(ptx);
        if (!target.Success || entry.Count != 1)
        {
            throw new InvalidOperationException($"Unexpected PTX: {(target.Success ? "one .target" : "no .target")}, {entry.Count} .entry.");
        }

        // The body's first line that is not a declaration, a brace, a comment or blank: the first instruction or label.
        int body = ptx.IndexOf('{', entry[0].Index);
        int at = ptx.IndexOf('\n', body) + 1;
        while (at > 0 && at < ptx.Length)
        {
            int end = ptx.IndexOf('\n', at);
            string line = (end < 0 ? ptx[at..] : ptx[at..end]).Trim();
            if (line.Length > 0 && !line.StartsWith('.') && !line.StartsWith("//", StringComparison.Ordinal) && line != "{")
            {
                break;
            }

            at = end + 1;
        }

        if (at <= 0 || at >= ptx.Length)
        {
            throw new InvalidOperationException("Unexpected PTX: the entry has no instructions.");
        }

        bool waitsLater = ptx.Contains(WaitMarker, StringComparison.Ordinal);
        string patched = waitsLater
            ? ptx.Insert(at, "\t" + LaunchDependents + "\n").Replace(WaitMarker, Wait, StringComparison.Ordinal)
            : ptx.Insert(at, "\t" + Prologue + "\n");
        return patched.Remove(target.Index, target.Length).Insert(target.Index, ".target sm_90");
    }

    /// <summary>
    /// Replaces a compiled kernel's PTX (ILGPU keeps it in a get-only property, set here through its backing field; the
    /// ILGPU version is pinned and <c>PtxCompilationTests</c> checks the field exists). Returns false when it cannot.
    /// </summary>
    public static bool TrySetPtx(PTXCompiledKernel kernel, string ptx)
    {
        var field = typeof(PTXCompiledKernel).GetField("<PTXAssembly>k__BackingField", BindingFlags.Instance | BindingFlags.NonPublic);
        if (field == null)
        {
            return false;
        }

        field.SetValue(kernel, ptx);
        return true;
    }

    /// <summary>
    /// Turns each edge of <paramref name="graph"/> between two kernel nodes whose functions are in
    /// <paramref name="patched"/> into a programmatic edge and returns how many it converted: none, the graph left as
    /// captured, when the driver lacks the calls (CUDA 12.3+). A driver that refuses a programmatic edge gets the plain
    /// one back and the edges after it stay plain. <c>bench</c> prints the count.
    /// </summary>
    public static int ConvertEdges(IntPtr graph, IReadOnlySet<IntPtr> patched)
    {
        try
        {
            nuint count = 0;
            Check(cuGraphGetEdges_v2(graph, null, null, null, ref count), "cuGraphGetEdges_v2");
            var from = new IntPtr[(int)count];
            var to = new IntPtr[(int)count];
            var data = new EdgeData[(int)count];
            Check(cuGraphGetEdges_v2(graph, from, to, data, ref count), "cuGraphGetEdges_v2");
            int converted = 0;
            for (int i = 0; i < (int)count; i++)
            {
                if (data[i].Type != 0 || !IsPatchedKernel(from[i], patched) || !IsPatchedKernel(to[i], patched))
                {
                    continue;
                }

                var programmatic = new EdgeData { FromPort = PortProgrammatic, Type = DependencyProgrammatic };
                Check(cuGraphRemoveDependencies_v2(graph, [from[i]], [to[i]], [data[i]], 1), "cuGraphRemoveDependencies_v2");
                int rc = cuGraphAddDependencies_v2(graph, [from[i]], [to[i]], [programmatic], 1);
                if (rc != 0)
                {
                    // The driver refuses programmatic edges: put the plain edge back and keep the rest as captured.
                    Check(cuGraphAddDependencies_v2(graph, [from[i]], [to[i]], [data[i]], 1), "cuGraphAddDependencies_v2");
                    return converted;
                }

                converted++;
            }

            return converted;
        }
        catch (EntryPointNotFoundException)
        {
            return 0;
        }
    }

    private static bool IsPatchedKernel(IntPtr node, IReadOnlySet<IntPtr> patched)
    {
        Check(cuGraphNodeGetType(node, out int type), "cuGraphNodeGetType");
        if (type != NodeTypeKernel)
        {
            return false;
        }

        // CUDA_KERNEL_NODE_PARAMS_v2 starts with the CUfunction; the buffer is larger than the struct.
        var buffer = new byte[256];
        Check(cuGraphKernelNodeGetParams_v2(node, buffer), "cuGraphKernelNodeGetParams_v2");
        return patched.Contains(new IntPtr(BitConverter.ToInt64(buffer, 0)));
    }

    private static void Check(int rc, string call)
    {
        if (rc != 0)
        {
            throw new InvalidOperationException($"{call} failed with CUDA driver error {rc}.");
        }
    }

    [GeneratedRegex(@"^\.target\s+sm_\d+[^\n]*?(?=\r?$)", RegexOptions.Multiline)]
    private static partial Regex TargetLine();

    [GeneratedRegex(@"^\s*\.visible\s+\.entry\s", RegexOptions.Multiline)]
    private static partial Regex EntryLine();

    /// <summary>CUgraphEdgeData: from_port, to_port, type, 5 reserved bytes.</summary>
    [StructLayout(LayoutKind.Sequential, Size = 8)]
    private struct EdgeData
    {
        public byte FromPort;
        public byte ToPort;
        public byte Type;
    }

    [LibraryImport(Driver)]
    private static partial int cuGraphGetEdges_v2(IntPtr graph, [Out] IntPtr[]? from, [Out] IntPtr[]? to, [Out] EdgeData[]? edgeData, ref nuint numEdges);

    [LibraryImport(Driver)]
    private static partial int cuGraphRemoveDependencies_v2(IntPtr graph, IntPtr[] from, IntPtr[] to, EdgeData[] edgeData, nuint numDependencies);

    [LibraryImport(Driver)]
    private static partial int cuGraphAddDependencies_v2(IntPtr graph, IntPtr[] from, IntPtr[] to, EdgeData[] edgeData, nuint numDependencies);

    [LibraryImport(Driver)]
    private static partial int cuGraphNodeGetType(IntPtr node, out int type);

    [LibraryImport(Driver)]
    private static partial int cuGraphKernelNodeGetParams_v2(IntPtr node, [Out] byte[] nodeParams);
}
