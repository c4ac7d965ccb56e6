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

    /// <summary>
    /// One half2 multiply-add of dequantized weights: returns acc + (magic - negZero) * x lane-wise in fp16,
    /// where <paramref name="magic"/> holds two fp16 values 1024 + q (built by or-ing a nibble or byte into
    /// 0x6400) and <paramref name="negZero"/> holds -(1024 + zero) twice, so magic + negZero is q - zero exactly.
    /// Only called on CUDA.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Half2SubFma(uint magic, uint negZero, uint x, uint acc)
    {
        CudaAsm.Emit(
            "{ .reg .b32 t; add.rn.f16x2 t, %1, %2; fma.rn.f16x2 %0, t, %3, %4; }",
            out uint result,
            magic,
            negZero,
            x,
            acc);
        return result;
    }

    /// <summary>Returns a + b lane-wise in fp16 (CUDA only): with a magic half2 and -(1024 + zero) it is q - zero, exactly.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Half2Add(uint a, uint b)
    {
        CudaAsm.Emit("add.rn.f16x2 %0, %1, %2;", out uint result, a, b);
        return result;
    }

    /// <summary>Returns acc + a * b lane-wise in fp16 (CUDA only).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Half2Fma(uint a, uint b, uint acc)
    {
        CudaAsm.Emit("fma.rn.f16x2 %0, %1, %2, %3;", out uint result, a, b, acc);
        return result;
    }

    /// <summary>
    /// acc + lo(q - zero) * xLo + hi(q - zero) * xHi in fp32: the exact fp16 subtraction of the magic-number trick,
    /// then both lanes converted and multiplied in fp32 (the precise accumulation mode; CUDA only).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Half2SubDot(uint magic, uint negZero, float xLo, float xHi, float acc)
    {
        CudaAsm.Emit(
            "{ .reg .b32 t; .reg .f16 lo, hi; .reg .f32 a, b, r; add.rn.f16x2 t, %1, %2; mov.b32 {lo, hi}, t; cvt.f32.f16 a, lo; cvt.f32.f16 b, hi; fma.rn.f32 r, a, %3, %5; fma.rn.f32 %0, b, %4, r; }",
            out float result,
            magic,
            negZero,
            xLo,
            xHi,
            acc);
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

    /// <summary>Returns a * b lane-wise in fp16 (CUDA only). Used instead of an fma with a zero accumulator, which
    /// ILGPU would fold into an immediate operand that f16x2 instructions do not accept.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Half2Mul(uint a, uint b)
    {
        CudaAsm.Emit("mul.rn.f16x2 %0, %1, %2;", out uint result, a, b);
        return result;
    }

    /// <summary>Returns (magic + negZero) * scale lane-wise in fp16: a dequantized weight pair (CUDA only).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Half2SubMul(uint magic, uint negZero, uint scale)
    {
        CudaAsm.Emit(
            "{ .reg .b32 t; add.rn.f16x2 t, %1, %2; mul.rn.f16x2 %0, t, %3; }",
            out uint result,
            magic,
            negZero,
            scale);
        return result;
    }

    /// <summary>Sum of the two fp16 lanes of a half2, in fp32 (CUDA only).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Half2Sum(uint h)
    {
        CudaAsm.Emit(
            "{ .reg .f16 lo, hi; .reg .f32 a, b; mov.b32 {lo, hi}, %1; cvt.f32.f16 a, lo; cvt.f32.f16 b, hi; add.f32 %0, a, b; }",
            out float result,
            h);
        return result;
    }

    /// <summary>a + b lane-wise in fp16 on any backend (the CPU accelerator rounds each lane's fp32 sum to fp16).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Half2AddAny(uint a, uint b)
    {
        if (CudaAsm.IsSupported)
        {
            return Half2Add(a, b);
        }

        return FloatToHalfBits(HalfBitsToFloat(a & 0xFFFFu) + HalfBitsToFloat(b & 0xFFFFu))
            | (FloatToHalfBits(HalfBitsToFloat(a >> 16) + HalfBitsToFloat(b >> 16)) << 16);
    }

    /// <summary>a * b + c lane-wise in fp16 on any backend (exact on the CPU accelerator whenever the result is).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Half2FmaAny(uint a, uint b, uint c)
    {
        if (CudaAsm.IsSupported)
        {
            return Half2Fma(a, b, c);
        }

        return FloatToHalfBits((HalfBitsToFloat(a & 0xFFFFu) * HalfBitsToFloat(b & 0xFFFFu)) + HalfBitsToFloat(c & 0xFFFFu))
            | (FloatToHalfBits((HalfBitsToFloat(a >> 16) * HalfBitsToFloat(b >> 16)) + HalfBitsToFloat(c >> 16)) << 16);
    }

    /// <summary>
    /// a * 1/16 + c lane-wise in fp16 on any backend. The constant lives inside the asm block: ILGPU would pass a
    /// constant operand as an immediate, which f16x2 instructions do not accept (the driver's PTX JIT fails).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Half2FmaSixteenth(uint a, uint c)
    {
        if (CudaAsm.IsSupported)
        {
            CudaAsm.Emit("{ .reg .b32 s; mov.b32 s, 0x2C002C00; fma.rn.f16x2 %0, %1, s, %2; }", out uint result, a, c);
            return result;
        }

        return FloatToHalfBits((HalfBitsToFloat(a & 0xFFFFu) * 0.0625f) + HalfBitsToFloat(c & 0xFFFFu))
            | (FloatToHalfBits((HalfBitsToFloat(a >> 16) * 0.0625f) + HalfBitsToFloat(c >> 16)) << 16);
    }

    /// <summary>
    /// Splits two fp32 values into hi = fp16(x) and lo = fp16(x - hi) half2 words (X = hi, Y = lo; low lane from
    /// <paramref name="lo"/>), so hi + lo keeps about 22 bits of x through fp16 tensor-core inputs.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Words2 SplitHalfPair(float lo, float hi)
    {
        var r = default(Words2);
        if (CudaAsm.IsSupported)
        {
            CudaAsm.Emit("cvt.rn.f16x2.f32 %0, %2, %1;", out uint h, lo, hi);
            CudaAsm.Emit(
                "{ .reg .f16 a, b; .reg .f32 fa, fb, ea, eb; mov.b32 {a, b}, %1; cvt.f32.f16 fa, a; cvt.f32.f16 fb, b; sub.f32 ea, %2, fa; sub.f32 eb, %3, fb; cvt.rn.f16x2.f32 %0, eb, ea; }",
                out uint l,
                h,
                lo,
                hi);
            r.X = h;
            r.Y = l;
            return r;
        }

        uint hLo = FloatToHalfBits(lo);
        uint hHi = FloatToHalfBits(hi);
        r.X = hLo | (hHi << 16);
        r.Y = FloatToHalfBits(lo - HalfBitsToFloat(hLo)) | (FloatToHalfBits(hi - HalfBitsToFloat(hHi)) << 16);
        return r;
    }

    /// <summary>d = a * b + c for one m16n8k16 tile (row-major A in a0..a3, column-major B in b0, b1; fp16 in, fp32 accumulate). CUDA only.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static MmaFragment Mma(MmaFragment c, Words4 x, uint b0, uint b1)
    {
        var d0 = new Ref<float> { Value = c.C0 };
        var d1 = new Ref<float> { Value = c.C1 };
        var d2 = new Ref<float> { Value = c.C2 };
        var d3 = new Ref<float> { Value = c.C3 };
        var x0 = new Input<uint> { Value = x.X };
        var x1 = new Input<uint> { Value = x.Y };
        var x2 = new Input<uint> { Value = x.Z };
        var x3 = new Input<uint> { Value = x.W };
        var y0 = new Input<uint> { Value = b0 };
        var y1 = new Input<uint> { Value = b1 };
        CudaAsm.EmitRef(
            "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};",
            ref d0,
            ref d1,
            ref d2,
            ref d3,
            ref x0,
            ref x1,
            ref x2,
            ref x3,
            ref y0,
            ref y1);
        return new MmaFragment { C0 = d0.Value, C1 = d1.Value, C2 = d2.Value, C3 = d3.Value };
    }

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
