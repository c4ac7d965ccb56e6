// Compiles every kernel through ILGPU's PTX backend for sm_90 without a GPU, so CI catches a kernel that
// only breaks on CUDA (inline PTX, intrinsics), and checks the GEMV really issues 16-byte vector loads.
using System.Reflection;
using CodeLlamaLsp.Inference.Engine.Cuda;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace CodeLlamaLsp.Inference.Tests.Cuda;

public class PtxCompilationTests
{
    public static IEnumerable<TestCaseData> Kernels()
    {
        foreach (var type in new[] { typeof(GptqGemvKernels), typeof(GptqGemmKernels), typeof(GptqSmallBatchKernels), typeof(GptqDequantizeKernels), typeof(PrefillAttentionKernels), typeof(DenseGemvKernels), typeof(RmsNormKernels), typeof(RopeKernels), typeof(AttentionKernels), typeof(ActivationKernels), typeof(SamplingKernels) })
        {
            foreach (var m in type.GetMethods(BindingFlags.Public | BindingFlags.Static).Where(m => m.ReturnType == typeof(void)))
            {
                yield return new TestCaseData(m).SetArgDisplayNames($"{type.Name}.{m.Name}");
            }
        }
    }

    [TestCaseSource(nameof(Kernels))]
    public void Kernel_compiles_to_ptx(MethodInfo kernel)
    {
        var ptx = Compile(kernel);
        if (Environment.GetEnvironmentVariable("CODELLAMA_DUMP_PTX_DIR") is { Length: > 0 } dir)
        {
            File.WriteAllText(Path.Combine(dir, $"{kernel.DeclaringType!.Name}.{kernel.Name}.ptx"), ptx);
        }

        var patched = GridDependencies.Patch(ptx);
        if (Environment.GetEnvironmentVariable("CODELLAMA_DUMP_PTX_DIR") is { Length: > 0 } patchedDir)
        {
            File.WriteAllText(Path.Combine(patchedDir, $"{kernel.DeclaringType!.Name}.{kernel.Name}.sm90.ptx"), patched);
        }

        Assert.Multiple(() =>
        {
            Assert.That(ptx, Does.Contain(".entry"));

            // f16x2 instructions take registers only; a folded constant operand fails the driver's PTX JIT.
            Assert.That(ptx, Does.Not.Match(@"f16x2[^\n;]*,\s*-?\d+\s*[,;]"), "f16x2 instruction with an immediate operand");

            // On sm_90+ the kernel waits for its predecessor before its first instruction (GridDependencies), or, when it
            // marks where it waits, lets its dependents launch first and waits at each marker.
            Assert.That(patched, Does.Match(@"(?m)^\.target sm_90\s*$"));
            var body = patched[patched.IndexOf('{', patched.IndexOf(".entry", StringComparison.Ordinal))..];
            var firstInstruction = body.Split('\n').Skip(1).Select(l => l.Trim()).First(l => l.Length > 0 && !l.StartsWith('.') && !l.StartsWith("//", StringComparison.Ordinal) && l != "{");
            bool marked = ptx.Contains(GridDependencies.WaitMarker, StringComparison.Ordinal);
            Assert.That(firstInstruction, Is.EqualTo(marked ? "griddepcontrol.launch_dependents;" : "griddepcontrol.wait;"), "the first instruction of the entry");
            Assert.That(patched, Does.Not.Contain(GridDependencies.WaitMarker), "every marker replaced");
            var unpatched = marked
                ? patched.Replace("\tgriddepcontrol.launch_dependents;\n", string.Empty, StringComparison.Ordinal).Replace("griddepcontrol.wait;", GridDependencies.WaitMarker, StringComparison.Ordinal)
                : patched.Replace("\t" + GridDependencies.Prologue + "\n", string.Empty, StringComparison.Ordinal);
            Assert.That(unpatched.Replace(".target sm_90", ".target sm_80", StringComparison.Ordinal), Is.EqualTo(ptx), "nothing else changes");
        });
    }

    /// <summary>The patched PTX reaches the driver through ILGPU's compiled kernel (a pinned ILGPU's backing field).</summary>
    [Test]
    public void A_compiled_kernels_ptx_can_be_replaced()
    {
        using var context = Context.Create(b => b.Optimize(OptimizationLevel.O2).EnableAlgorithms());
        using var backend = new PTXBackend(context, new CudaCapabilityContext(CudaArchitecture.SM_90), CudaArchitecture.SM_90, CudaInstructionSet.ISA_80, null);
        var compiled = (PTXCompiledKernel)backend.Compile(EntryPointDescription.FromExplicitlyGroupedKernel(typeof(ActivationKernels).GetMethod(nameof(ActivationKernels.AdvancePosition))!), KernelSpecialization.Empty);
        var patched = GridDependencies.Patch(compiled.PTXAssembly);
        Assert.That(GridDependencies.TrySetPtx(compiled, patched), Is.True);
        Assert.That(compiled.PTXAssembly, Is.EqualTo(patched));
    }

    [Test]
    public void Gptq_gemv_uses_16_byte_loads_and_half2_math()
    {
        var ptx = Compile(typeof(GptqGemvKernels).GetMethod(nameof(GptqGemvKernels.Gemv))!);
        if (Environment.GetEnvironmentVariable("CODELLAMA_DUMP_PTX") is { Length: > 0 } dump)
        {
            File.WriteAllText(dump, ptx);
        }

        Assert.Multiple(() =>
        {
            Assert.That(ptx, Does.Match(@"ld\.global(\.nc)?\.v4\.[ub]32"), "vectorized weight loads");
            Assert.That(ptx, Does.Contain("lop3.b32"), "two nibbles into fp16 mantissas per instruction, no int-to-float conversion");
            Assert.That(ptx, Does.Contain("fma.rn.f16x2"), "two products per instruction");
        });
    }

    /// <summary>The split-row RMSNorm reads the row for its statistics in 16-byte loads (every block of a row reads all of it).</summary>
    [TestCase(nameof(RmsNormKernels.SplitRowToHalf))]
    public void Split_row_rms_norm_reads_the_row_in_16_byte_loads(string kernel)
    {
        var ptx = Compile(typeof(RmsNormKernels).GetMethod(kernel)!);
        Assert.That(ptx, Does.Match(@"ld\.global(\.nc)?\.v4\.f32"));
    }

    /// <summary>
    /// Decode attention is compiled for two 256-thread blocks per multiprocessor (the register cap its grid size assumes),
    /// reads K and V rows in 8-byte loads and exchanges scores by shuffles.
    /// </summary>
    [Test]
    public void Decode_attention_is_compiled_for_two_blocks_per_multiprocessor()
    {
        var ptx = Compile(typeof(AttentionKernels).GetMethod(nameof(AttentionKernels.Partial))!);
        Assert.Multiple(() =>
        {
            Assert.That(ptx, Does.Match(@"\.maxntid\s+256,\s*1,\s*1"), "block size");
            Assert.That(ptx, Does.Match($@"\.minnctapersm\s+{AttentionKernels.BlocksPerMultiprocessor}\b"), "blocks per multiprocessor");
            Assert.That(ptx, Does.Match(@"ld\.global(\.nc)?\.v2\.[ub]32"), "8-byte K/V row loads");
            Assert.That(ptx, Does.Contain("shfl.sync.bfly"), "score butterfly");
        });
    }

    [Test]
    public void Gptq_gemm_streams_tiles_with_cp_async_into_tensor_cores()
    {
        var ptx = Compile(typeof(GptqGemmKernels).GetMethod(nameof(GptqGemmKernels.Gemm))!);
        if (Environment.GetEnvironmentVariable("CODELLAMA_DUMP_GEMM_PTX") is { Length: > 0 } dump)
        {
            File.WriteAllText(dump, ptx);
        }

        Assert.Multiple(() =>
        {
            Assert.That(ptx, Does.Contain("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32"), "tensor-core mma");
            Assert.That(ptx, Does.Contain("cp.async.cg.shared.global"), "tiles streamed by cp.async");
            Assert.That(ptx, Does.Contain("ldmatrix.sync.aligned.m8n8.x4.shared.b16"), "activation fragments by ldmatrix");
            AssertOneSharedAllocation(ptx, GptqGemmKernels.SharedBytes);
        });
    }

    [Test]
    public void Small_batch_kernel_streams_weights_with_cp_async_into_tensor_cores()
    {
        var ptx = Compile(typeof(GptqSmallBatchKernels).GetMethod(nameof(GptqSmallBatchKernels.Run))!);
        Assert.Multiple(() =>
        {
            Assert.That(ptx, Does.Contain("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32"), "tensor-core mma");
            Assert.That(ptx, Does.Contain("cp.async.cg.shared.global"), "weights streamed by cp.async");
            Assert.That(ptx, Does.Contain("cp.async.ca.shared.global"), "activations streamed by cp.async");
            Assert.That(ptx, Does.Contain("lop3.b32"), "nibbles into fp16 mantissas");
            Assert.That(ptx, Does.Contain("atom.add.global"), "stream-K arrivals");
            Assert.That(ptx.Split(".reg .f32 scl<4>").Length - 1, Is.EqualTo(1), "named registers declared once (ptxas rejects a second declaration; both row-tile loops share them)");
            AssertOneSharedAllocation(ptx, GptqSmallBatchKernels.SharedBytes);
        });
    }

    [Test]
    public void Prefill_attention_runs_on_tensor_cores_from_its_one_shared_allocation()
    {
        var ptx = Compile(typeof(PrefillAttentionKernels).GetMethod(nameof(PrefillAttentionKernels.Prefill))!);
        Assert.Multiple(() =>
        {
            Assert.That(ptx, Does.Contain("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32"), "tensor-core mma");
            Assert.That(ptx, Does.Contain("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16"), "value fragments by ldmatrix.trans");
            Assert.That(ptx, Does.Contain("cp.async.cg.shared.global"), "key and value tiles streamed by cp.async");
            AssertOneSharedAllocation(ptx, PrefillAttentionKernels.SharedBytes);
        });
    }

    /// <summary>
    /// Inline PTX addresses shared memory by ILGPU's internal name for the kernel's first static allocation
    /// (<see cref="DeviceMath.SharedBase"/>). If ILGPU renames it, re-aligns it or the kernel gains another allocation,
    /// this fails here rather than as a driver JIT error (or silent corruption) on a GPU.
    /// </summary>
    private static void AssertOneSharedAllocation(string ptx, int bytes)
    {
        Assert.That(ptx, Does.Match($@"\.shared \.align 16 \.b8 __shared_alloca0\[{bytes}\];"), "the shared allocation inline PTX names");
        Assert.That(ptx, Does.Not.Contain("__shared_alloca1"), "one shared allocation only");
    }

    /// <summary>
    /// The GEMM as the CUDA accelerator itself compiles it (the backend-only compile above keeps the CPU fallback
    /// branches): still tensor-core mma, and the PTX is written out for ptxas's register and spill report.
    /// </summary>
    [Test]
    [Category("Gpu")]
    public void Gptq_gemm_compiled_by_the_device_uses_tensor_cores()
    {
        var device = TestDevices.Get("gpu");
        var entry = EntryPointDescription.FromExplicitlyGroupedKernel(typeof(GptqGemmKernels).GetMethod(nameof(GptqGemmKernels.Gemm))!);
        var ptx = ((PTXCompiledKernel)device.Accelerator.CompileKernel(entry)).PTXAssembly;
        if (Environment.GetEnvironmentVariable("CODELLAMA_DUMP_DEVICE_GEMM_PTX") is { Length: > 0 } dump)
        {
            File.WriteAllText(dump, ptx);
        }

        Assert.That(ptx, Does.Contain("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32"));
    }

    /// <summary>The decode GEMV as the CUDA accelerator compiles it, written out for ptxas's register and spill report.</summary>
    [Test]
    [Category("Gpu")]
    public void Gptq_gemv_compiled_by_the_device_uses_half2_math()
    {
        var device = TestDevices.Get("gpu");
        var entry = EntryPointDescription.FromExplicitlyGroupedKernel(typeof(GptqGemvKernels).GetMethod(nameof(GptqGemvKernels.Gemv))!);
        var ptx = ((PTXCompiledKernel)device.Accelerator.CompileKernel(entry)).PTXAssembly;
        if (Environment.GetEnvironmentVariable("CODELLAMA_DUMP_DEVICE_GEMV_PTX") is { Length: > 0 } dump)
        {
            File.WriteAllText(dump, ptx);
        }

        Assert.That(ptx, Does.Contain("lop3.b32"));
    }

    private static string Compile(MethodInfo kernel)
    {
        using var context = Context.Create(b => b.Optimize(OptimizationLevel.O2).EnableAlgorithms());
        using var backend = new PTXBackend(context, new CudaCapabilityContext(CudaArchitecture.SM_90), CudaArchitecture.SM_90, CudaInstructionSet.ISA_80, null);
        var entry = EntryPointDescription.FromExplicitlyGroupedKernel(kernel);
        var specialization = kernel == typeof(AttentionKernels).GetMethod(nameof(AttentionKernels.Partial)) ? AttentionKernels.PartialSpecialization : KernelSpecialization.Empty;
        var compiled = (PTXCompiledKernel)backend.Compile(entry, specialization);
        return compiled.PTXAssembly;
    }
}
