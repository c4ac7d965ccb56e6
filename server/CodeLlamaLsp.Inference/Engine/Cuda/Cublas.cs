// cuBLAS, when the machine has it, for the prefill's matrix products: it is not part of the NVIDIA driver, so it is
// looked up at run time (the system's library path, then CUDA_PATH / CUDA_HOME and /usr/local/cuda) and the engine
// keeps its own GEMM when it is absent or fails. Only libraries in those places are loaded: no setting names a path.
using System.Runtime.InteropServices;

namespace CodeLlamaLsp.Inference.Engine.Cuda;

/// <summary>One cuBLAS handle on the engine's stream (and ILGPU's CUDA context, current on the creating thread).</summary>
internal sealed unsafe class Cublas : IDisposable
{
    private const int OpN = 0; // CUBLAS_OP_N
    private const int R16F = 2; // CUDA_R_16F
    private const int R32F = 0; // CUDA_R_32F
    private const int Compute32F = 68; // CUBLAS_COMPUTE_32F
    private const int GemmDefault = -1; // CUBLAS_GEMM_DEFAULT

    private static readonly string[] LibraryNames = OperatingSystem.IsWindows()
        ? ["cublas64_13.dll", "cublas64_12.dll"]
        : ["libcublas.so.13", "libcublas.so.12"];

    private readonly IntPtr library;
    private readonly delegate* unmanaged<IntPtr, int> destroy;
    private readonly delegate* unmanaged<IntPtr, IntPtr, int> setStream;
    private readonly delegate* unmanaged<IntPtr, long, nuint, int> setWorkspace;
    private readonly delegate* unmanaged<IntPtr, int, int, int, int, int, float*, long, int, int, long, int, int, float*, long, int, int, int, int, int> gemmEx;
    private IntPtr handle;

    /// <summary>
    /// cuBLAS's workspace, given to it up front (32 MiB, NVIDIA's size for Hopper) so that no product allocates: the
    /// linear-layer probe captures them in a CUDA graph.
    /// </summary>
    public const long WorkspaceBytes = 32L << 20;

    private Cublas(IntPtr library, string path)
    {
        this.library = library;
        Path = path;
        var create = (delegate* unmanaged<IntPtr*, int>)NativeLibrary.GetExport(library, "cublasCreate_v2");
        destroy = (delegate* unmanaged<IntPtr, int>)NativeLibrary.GetExport(library, "cublasDestroy_v2");
        setStream = (delegate* unmanaged<IntPtr, IntPtr, int>)NativeLibrary.GetExport(library, "cublasSetStream_v2");
        setWorkspace = (delegate* unmanaged<IntPtr, long, nuint, int>)NativeLibrary.GetExport(library, "cublasSetWorkspace_v2");
        var version = (delegate* unmanaged<IntPtr, int*, int>)NativeLibrary.GetExport(library, "cublasGetVersion_v2");
        // Device pointers pass as 64-bit integers (the engine runs on 64-bit processes only).
        gemmEx = (delegate* unmanaged<IntPtr, int, int, int, int, int, float*, long, int, int, long, int, int, float*, long, int, int, int, int, int>)NativeLibrary.GetExport(library, "cublasGemmEx");
        IntPtr h;
        Check(create(&h), "cublasCreate");
        handle = h;
        int v;
        Check(version(handle, &v), "cublasGetVersion");
        Version = v;
    }

    /// <summary>The library file that was loaded.</summary>
    public string Path { get; }

    /// <summary>cuBLAS's version number (major * 10000 + minor * 100 + patch).</summary>
    public int Version { get; }

    /// <summary>
    /// Loads cuBLAS and creates a handle on <paramref name="stream"/> with <paramref name="workspace"/> (a device address
    /// of <see cref="WorkspaceBytes"/>), or returns null and why not. Call with the CUDA context current (cuBLAS runs in
    /// the context current when its handle is created).
    /// </summary>
    public static Cublas? TryCreate(IntPtr stream, long workspace, out string? whyNot)
    {
        var failures = new List<string>();
        foreach (var candidate in Candidates())
        {
            if (!NativeLibrary.TryLoad(candidate, out var library))
            {
                continue;
            }

            Cublas? cublas = null;
            try
            {
                cublas = new Cublas(library, candidate);
                Check(cublas.setStream(cublas.handle, stream), "cublasSetStream");
                Check(cublas.setWorkspace(cublas.handle, workspace, (nuint)WorkspaceBytes), "cublasSetWorkspace");
                whyNot = null;
                return cublas;
            }
#pragma warning disable CA1031 // A broken or mismatched library surfaces as several exception types; each means "not usable".
            catch (Exception e)
#pragma warning restore CA1031
            {
                if (cublas != null)
                {
                    cublas.Dispose();
                }
                else
                {
                    NativeLibrary.Free(library);
                }

                // A library too new for the driver (cuBLAS 13 on a CUDA 12 driver) fails here: try the next one.
                failures.Add($"{candidate} did not start: {e.Message}");
            }
        }

        whyNot = failures.Count > 0
            ? string.Join("; ", failures)
            : $"cuBLAS not found ({string.Join(", ", LibraryNames)} on the library path, under CUDA_PATH, CUDA_HOME or /usr/local/cuda)";
        return null;
    }

    /// <summary>
    /// C[n, m] (+)= B[n, k] A[k, m] on the engine's stream, every matrix row-major with its leading dimension in
    /// elements: fp16 <paramref name="a"/> and <paramref name="b"/>, fp32 <paramref name="c"/>, fp32 accumulation. Read
    /// column-major, as cuBLAS does, the same memory is C^T = A^T B^T, a product without transposes ("NN").
    /// </summary>
    public void GemmHalfToFloat(int m, int n, int k, long a, int lda, long b, int ldb, long c, int ldc, bool accumulate)
    {
        float alpha = 1f;
        float beta = accumulate ? 1f : 0f;
        Check(gemmEx(handle, OpN, OpN, m, n, k, &alpha, a, R16F, lda, b, R16F, ldb, &beta, c, R32F, ldc, Compute32F, GemmDefault), "cublasGemmEx");
    }

    public void Dispose()
    {
        if (handle != IntPtr.Zero)
        {
            _ = destroy(handle);
            handle = IntPtr.Zero;
            NativeLibrary.Free(library);
        }
    }

    private static IEnumerable<string> Candidates()
    {
        // The library search path first (ld.so.cache, LD_LIBRARY_PATH, PATH on Windows), then the toolkit's own folders.
        foreach (var name in LibraryNames)
        {
            yield return name;
        }

        var roots = new[] { Environment.GetEnvironmentVariable("CUDA_PATH"), Environment.GetEnvironmentVariable("CUDA_HOME"), OperatingSystem.IsWindows() ? null : "/usr/local/cuda" };
        foreach (var root in roots.Where(r => !string.IsNullOrEmpty(r)).Distinct())
        {
            foreach (var folder in OperatingSystem.IsWindows() ? new[] { "bin", System.IO.Path.Combine("bin", "x64") } : ["lib64", System.IO.Path.Combine("targets", "x86_64-linux", "lib")])
            {
                foreach (var name in LibraryNames)
                {
                    var path = System.IO.Path.Combine(root!, folder, name);
                    if (File.Exists(path))
                    {
                        yield return path;
                    }
                }
            }
        }
    }

    private static void Check(int status, string call)
    {
        if (status != 0)
        {
            throw new InvalidOperationException($"{call} failed with cuBLAS status {status}.");
        }
    }
}
