// How the checkpoint generator fills one tensor: a few bulk patterns (random words, a constant word,
// uniform fp16, a precomputed int table) applied per 1 MiB block with its own xorshift stream, so
// blocks fill in parallel and the output does not depend on how the work is split.
using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace CodeLlamaLsp.Inference.Loading;

/// <summary>What goes into a generated tensor.</summary>
internal abstract record RandomTensorFill
{
    public const int BlockBytes = 1 << 20;

    /// <summary>Fills <paramref name="destination"/>, which starts at byte <paramref name="tensorOffset"/> of the tensor.</summary>
    public abstract void FillBlock(Span<byte> destination, long tensorOffset, ref Xorshift64Star random);

    /// <summary>Uniformly random 32-bit words: every GPTQ-packed qweight word is valid.</summary>
    public sealed record RandomWords : RandomTensorFill
    {
        public override void FillBlock(Span<byte> destination, long tensorOffset, ref Xorshift64Star random)
        {
            var words = MemoryMarshal.Cast<byte, ulong>(destination);
            for (int i = 0; i < words.Length; i++)
            {
                words[i] = random.Next();
            }

            for (int i = words.Length * 8; i < destination.Length; i++)
            {
                destination[i] = (byte)random.Next();
            }
        }
    }

    /// <summary>The same 32-bit word everywhere (symmetric qzeros).</summary>
    public sealed record ConstantWord(uint Word) : RandomTensorFill
    {
        public override void FillBlock(Span<byte> destination, long tensorOffset, ref Xorshift64Star random) =>
            MemoryMarshal.Cast<byte, uint>(destination).Fill(Word);
    }

    /// <summary>fp16 values uniform in [Center - HalfWidth, Center + HalfWidth).</summary>
    public sealed record UniformHalf(float Center, float HalfWidth) : RandomTensorFill
    {
        public override void FillBlock(Span<byte> destination, long tensorOffset, ref Xorshift64Star random)
        {
            var halves = MemoryMarshal.Cast<byte, Half>(destination);
            float scale = 2f * HalfWidth / (1 << 24);
            float start = Center - HalfWidth;
            Span<float> floats = stackalloc float[2048];
            for (int done = 0; done < halves.Length; done += floats.Length)
            {
                var piece = floats[..Math.Min(floats.Length, halves.Length - done)];
                for (int i = 0; i < piece.Length; i += 2)
                {
                    // One 64-bit draw gives two 24-bit uniforms.
                    ulong bits = random.Next();
                    piece[i] = start + (scale * (uint)(bits >> 40));
                    if (i + 1 < piece.Length)
                    {
                        piece[i + 1] = start + (scale * (uint)((bits >> 8) & 0xFFFFFF));
                    }
                }

                // The vectorized conversion is several times faster than a per-element (Half) cast.
                TensorPrimitives.ConvertToHalf(piece, halves.Slice(done, piece.Length));
            }
        }
    }

    /// <summary>Fixed int32 values (g_idx).</summary>
    public sealed record Int32Table(int[] Values) : RandomTensorFill
    {
        public override void FillBlock(Span<byte> destination, long tensorOffset, ref Xorshift64Star random) =>
            MemoryMarshal.AsBytes(Values.AsSpan()).Slice((int)tensorOffset, destination.Length).CopyTo(destination);
    }
}

/// <summary>xorshift64* (Vigna): fast, good enough for random weights; seeded through splitmix64.</summary>
internal struct Xorshift64Star
{
    private ulong state;

    public Xorshift64Star(ulong seed)
    {
        state = SplitMix(seed);
        if (state == 0)
        {
            state = 0x9E3779B97F4A7C15UL;
        }
    }

    public static ulong SplitMix(ulong x)
    {
        x += 0x9E3779B97F4A7C15UL;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
        return x ^ (x >> 31);
    }

    /// <summary>An independent stream for (seed, tensor, block).</summary>
    public static Xorshift64Star For(ulong seed, int tensor, long block) =>
        new(SplitMix(SplitMix(seed) ^ ((ulong)tensor * 0xD1B54A32D192ED03UL)) ^ ((ulong)block * 0xAEF17502108EF2D9UL));

    public ulong Next()
    {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        return state * 0x2545F4914F6CDD1DUL;
    }

    /// <summary>Uniform in [0, bound).</summary>
    public int NextInt(int bound) => (int)((Next() >> 33) % (ulong)bound);
}
