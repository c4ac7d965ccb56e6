// Small device-side helpers shared by the CUDA kernels: 16-byte loads and packed-fp16 (half2) arithmetic
// through inline PTX on CUDA, with plain managed equivalents so the same kernels run on ILGPU's CPU
// accelerator in CI (CudaAsm.IsSupported is a per-backend constant, so the other branch is compiled away).
using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace CodeLlamaLsp.Inference.Engine.Cuda;

/// <summary>Four 32-bit words read by one 16-byte load.</summary>
internal struct Words4
{
    public uint X;
    public uint Y;
    public uint Z;
    public uint W;
}

/// <summary>Four fp32 values, read by one 16-byte load from a 16-byte aligned address.</summary>
internal struct Floats4
{
    public float A;
    public float B;
    public float C;
    public float D;
}

/// <summary>Two 32-bit words read by one 8-byte load.</summary>
internal struct Words2
{
    public uint X;
    public uint Y;
}

/// <summary>Loads and fp16 pair arithmetic used inside kernels.</summary>
internal static class DeviceMath
{
    /// <summary>
    /// Reads view[index .. index + 3] as one 16-byte struct. The caller guarantees index % 4 == 0 and a
    /// 16-byte aligned buffer; ILGPU's PTX backend then emits a single vectorized ld.global.v4.u32
    /// (checked by a test that compiles the kernels to PTX).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Words4 Load4(ArrayView<uint> view, long index) => view.Cast<Words4>()[index / 4];

    /// <summary>Returns a + b lane-wise in fp16 (CUDA only): with a magic half2 and -(1024 + zero) it is q - zero, exactly.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Half2Add(uint a, uint b)
    {
        CudaAsm.Emit("add.rn.f16x2 %0, %1, %2;", out uint result, a, b);
        return result;
    }

    /// <summary>acc + lo(a) * lo(b) + hi(a) * hi(b) with both half2 words converted to fp32 (CUDA only).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Half2Dot(uint a, uint b, float acc)
    {
        CudaAsm.Emit(
            "{ .reg .f16 al, ah, bl, bh; .reg .f32 fa, fb, fc, fd, r; mov.b32 {al, ah}, %1; mov.b32 {bl, bh}, %2; cvt.f32.f16 fa, al; cvt.f32.f16 fb, ah; cvt.f32.f16 fc, bl; cvt.f32.f16 fd, bh; fma.rn.f32 r, fa, fc, %3; fma.rn.f32 %0, fb, fd, r; }",
            out float result,
            a,
            b,
            acc);
        return result;
    }

    /// <summary>The tensor-core instruction of the GEMM and the prefill attention (fp16 in, fp32 accumulate), as an asm prefix.</summary>
    public const string MmaF16F32 = "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 ";

    /// <summary>
    /// Shared-window address of the kernel's first static shared allocation, for inline PTX (cp.async, ldmatrix). ILGPU
    /// names it <c>__shared_alloca0</c>; a PTX test fails if that changes. The kernel must have exactly one allocation
    /// and use it from ILGPU code too, or ILGPU drops it. CUDA only.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint SharedBase()
    {
        CudaAsm.Emit("mov.u32 %0, __shared_alloca0;", out uint address);
        return address;
    }

    /// <summary>cp.async of 16 bytes from device address <paramref name="src"/> to shared, bypassing L1; 16 zero bytes when not valid. CUDA only.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void CopyToShared(uint dst, long src, bool valid) =>
        CudaAsm.Emit("cp.async.cg.shared.global [%0], [%1], 16, %2;", dst, src, valid ? 16u : 0u);

    /// <summary>Closes this thread's group of cp.async copies issued since the last commit (the unit the waits count). CUDA only.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void CommitCopies() => CudaAsm.Emit("cp.async.commit_group;");

    /// <summary>
    /// Waits until at most <paramref name="pending"/> (0 to 2) of this thread's newest copy groups are still in flight.
    /// cp.async.wait_group takes an immediate, so <paramref name="pending"/> must be a constant once inlined (a ring's
    /// Stages - 2); ILGPU then keeps only its branch. CUDA only.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void WaitUntilCopyGroupsPending(int pending)
    {
        // The rings have at most three stages; a larger count would wait for every group (correct, only slower).
        switch (pending)
        {
            case 1:
                CudaAsm.Emit("cp.async.wait_group 1;");
                break;
            case 2:
                CudaAsm.Emit("cp.async.wait_group 2;");
                break;
            default:
                CudaAsm.Emit("cp.async.wait_group 0;");
                break;
        }
    }

    /// <summary>Waits for all of this thread's cp.async copies. CUDA only.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void WaitForAllCopies() => CudaAsm.Emit("cp.async.wait_all;");

    /// <summary>Converts an fp16 bit pattern to fp32 on any backend.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float HalfBitsToFloat(uint bits)
    {
        uint sign = (bits & 0x8000u) << 16;
        uint exp = (bits >> 10) & 0x1Fu;
        uint mant = bits & 0x3FFu;
        if (exp == 0)
        {
            // Subnormal or zero: value = mant * 2^-24.
            float v = mant * 5.9604645e-8f;
            return sign != 0 ? -v : v;
        }

        if (exp == 31)
        {
            return Interop.IntAsFloat(sign | 0x7F800000u | (mant << 13));
        }

        return Interop.IntAsFloat(sign | ((exp + 112u) << 23) | (mant << 13));
    }

    /// <summary>Converts fp32 to fp16 bits, round to nearest even (the same rounding as System.Half).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint FloatToHalfBits(float value)
    {
        if (CudaAsm.IsSupported)
        {
            // Packed into a 32-bit register (high half zero): ILGPU has no 16-bit asm operand we can rely on.
            CudaAsm.Emit("{ .reg .f16 h; .reg .b16 z; cvt.rn.f16.f32 h, %1; mov.b16 z, 0; mov.b32 %0, {h, z}; }", out uint bits, value);
            return bits;
        }

        return SoftFloatToHalf(value);
    }

    private static uint SoftFloatToHalf(float value)
    {
        uint f = Interop.FloatAsInt(value);
        uint sign = (f >> 16) & 0x8000u;
        uint absF = f & 0x7FFFFFFFu;
        if (absF >= 0x7F800000u)
        {
            return sign | 0x7C00u | (absF > 0x7F800000u ? 0x200u : 0u);
        }

        if (absF >= 0x477FF000u)
        {
            return sign | 0x7C00u; // Rounds to infinity.
        }

        if (absF < 0x38800000u)
        {
            // Subnormal half: shift the mantissa with round-to-nearest-even.
            if (absF < 0x33000000u)
            {
                return sign;
            }

            uint e = absF >> 23;
            uint m = (absF & 0x7FFFFFu) | 0x800000u;
            int shift = (int)(126 - e);
            uint half = m >> shift;
            uint rem = m & ((1u << shift) - 1);
            uint halfway = 1u << (shift - 1);
            if (rem > halfway || (rem == halfway && (half & 1) != 0))
            {
                half++;
            }

            return sign | half;
        }

        uint rounded = absF + 0xFFFu + ((absF >> 13) & 1u);
        return sign | ((rounded - 0x38000000u) >> 13);
    }

    /// <summary>Low fp16 lane of a half2 word as fp32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Low(uint pair)
    {
        if (CudaAsm.IsSupported)
        {
            CudaAsm.Emit("{ .reg .f16 lo, hi; mov.b32 {lo, hi}, %1; cvt.f32.f16 %0, lo; }", out float r, pair);
            return r;
        }

        return HalfBitsToFloat(pair & 0xFFFFu);
    }

    /// <summary>High fp16 lane of a half2 word as fp32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float High(uint pair)
    {
        if (CudaAsm.IsSupported)
        {
            CudaAsm.Emit("{ .reg .f16 lo, hi; mov.b32 {lo, hi}, %1; cvt.f32.f16 %0, hi; }", out float r, pair);
            return r;
        }

        return HalfBitsToFloat(pair >> 16);
    }
}
