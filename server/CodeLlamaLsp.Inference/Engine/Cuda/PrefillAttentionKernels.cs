// Prefill attention on tensor cores, FlashAttention-2 style: a block takes 64 query rows of one head, keeps them
// as mma A fragments in registers, streams the causal keys and values of its KV head through shared memory in
// tiles of 64 (cp.async), computes S = Q K^T and O += P V with mma.sync m16n8k16 (fp16 in, fp32 accumulate) and
// keeps an online softmax per row, so the scores never leave registers. The decode-style kernels in
// AttentionKernels.cs stay for a few rows (decode, speculative verification), where splitting keys across blocks
// is what fills the GPU.
using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime.Cuda;

namespace CodeLlamaLsp.Inference.Engine.Cuda;

/// <summary>Arguments of <see cref="PrefillAttentionKernels.Prefill"/>.</summary>
internal struct PrefillAttentionArgs
{
    /// <summary>[rows, QStride] fp32 rotated queries, head h at columns h * 128 ..</summary>
    public ArrayView<float> Q;

    /// <summary>[1]: position of row 0.</summary>
    public ArrayView<int> Start;

    /// <summary>[rows, heads * 128] fp32 output (when <see cref="HalfOutput"/> is 0).</summary>
    public ArrayView<float> Output;

    /// <summary>fp16 output in the o_proj input layout (when <see cref="HalfOutput"/> is 1).</summary>
    public ArrayView<ushort> OutputHalf;

    public InputLayoutArgs Layout;

    /// <summary>Device byte addresses of one layer's keys and values, [kvHeads, Capacity, 128] fp16 each.</summary>
    public long KAddress;
    public long VAddress;

    public int HalfOutput;
    public int QStride;
    public int Heads;
    public int KvHeads;
    public int Capacity;
    public int Rows;

    /// <summary>1 / sqrt(head_dim) * log2(e): the softmax runs in base 2.</summary>
    public float Scale;
}

/// <summary>
/// Launch geometry: grid (ceil(rows / 64) * heads), group <see cref="BlockThreads"/>; block b serves head b % heads
/// and query rows 64 (b / heads) ..; the heads that share a KV head are neighbouring blocks, so their key and value
/// tiles come from L2. Warp w owns rows 16 w .. 16 w + 15 of the block's 64; head_dim must be 128
/// (<see cref="HeadDim"/>). Shared memory: query, key and value tiles of 64 rows x 256 bytes, 16-byte chunk c of
/// row r stored at chunk c ^ (r % 8) so the 8 rows an ldmatrix reads hit 8 different bank groups; the epilogue
/// reuses it as an fp32 tile. The accumulators live in PTX registers the kernel names (see GptqGemmKernels: ILGPU
/// returns several asm outputs only through local memory, which ptxas keeps in memory next to cp.async).
/// CUDA only: the launcher uses AttentionKernels on other accelerators.
/// </summary>
internal static class PrefillAttentionKernels
{
    public const int BlockThreads = 128;
    public const int TileRows = 64;
    public const int HeadDim = 128;

    /// <summary>Rows from which the launcher prefers this kernel (below it the key-split kernels fill the GPU better).</summary>
    public const int MinRows = 16;

    private const int TileBytes = TileRows * HeadDim * 2;

    /// <summary>Bytes of the one shared allocation: query, key and value tiles (48 KB, the static limit).</summary>
    public const int SharedBytes = 3 * TileBytes;

    /// <summary>Row pitch (floats) of the epilogue's fp32 tile: 128 + 4 so rows gid and gid + 8 use different banks.</summary>
    private const int EpiloguePitch = 132;

    public static void Prefill(PrefillAttentionArgs a)
    {
        var shared = SharedMemory.Allocate<Words4>(SharedBytes / 16);
        if (!CudaAsm.IsSupported)
        {
            return;
        }

        int tid = Group.IdxX;
        int lane = tid & 31;
        int warp = tid >> 5;
        int gid = lane >> 2;
        int tig = lane & 3;
        int head = Grid.IdxX % a.Heads;
        int r0 = (Grid.IdxX / a.Heads) * TileRows;
        int kvh = head / (a.Heads / a.KvHeads);
        int start = a.Start[0];
        uint smem = DeviceMath.SharedBase();
        uint qTile = smem;
        uint kTile = smem + TileBytes;
        uint vTile = smem + (2 * TileBytes);

        // The query tile in fp16, pre-scaled; rows past the batch are zero.
        for (int i = tid; i < TileRows * 16; i += BlockThreads)
        {
            int r = i >> 4;
            int c = i & 15;
            var w = default(Words4);
            if (r0 + r < a.Rows)
            {
                long at = ((long)(r0 + r) * a.QStride) + (head * HeadDim) + (c * 8);
                w.X = Pack(a.Q[at] * a.Scale, a.Q[at + 1] * a.Scale);
                w.Y = Pack(a.Q[at + 2] * a.Scale, a.Q[at + 3] * a.Scale);
                w.Z = Pack(a.Q[at + 4] * a.Scale, a.Q[at + 5] * a.Scale);
                w.W = Pack(a.Q[at + 6] * a.Scale, a.Q[at + 7] * a.Scale);
            }

            shared[(r * 16) + (c ^ (r & 7))] = w;
        }

        Group.Barrier();
        CudaAsm.Emit(DeclareRegisters);
        int qRow = (warp * 16) + (lane & 15);
        int qHalf = lane >> 4;
        CudaAsm.Emit(
            LoadQuery,
            Chunk(qTile, qRow, qHalf),
            Chunk(qTile, qRow, 2 + qHalf),
            Chunk(qTile, qRow, 4 + qHalf),
            Chunk(qTile, qRow, 6 + qHalf),
            Chunk(qTile, qRow, 8 + qHalf),
            Chunk(qTile, qRow, 10 + qHalf),
            Chunk(qTile, qRow, 12 + qHalf),
            Chunk(qTile, qRow, 14 + qHalf));

        // ldmatrix lanes for K (keys as B columns): matrix m = lane / 8 covers keys 8 (m / 2) .. and the k16 step's
        // half m % 2; for V (.trans, keys as B rows): keys 8 (m % 2) .. and dim chunk half m / 2. Key rows are
        // multiples of 8 plus lane % 8, so the swizzle term is lane % 8 for both.
        int m = lane >> 3;
        int kKey = ((m >> 1) * 8) + (lane & 7);
        int vKey = ((m & 1) * 8) + (lane & 7);
        int kHalf = m & 1;
        int vHalf = m >> 1;

        int rowPos = start + r0 + (warp * 16) + gid;
        int keyEnd = start + Math.Min(r0 + TileRows, a.Rows);
        long kvBase = (long)kvh * a.Capacity;
        for (int kt = 0; kt < keyEnd; kt += TileRows)
        {
            // Everyone is done with the previous tiles (and the query tile) before they are overwritten.
            Group.Barrier();
            for (int i = tid; i < TileRows * 16; i += BlockThreads)
            {
                int key = i >> 4;
                int c = i & 15;
                bool valid = kt + key < keyEnd;
                long src = (((kvBase + kt + key) * HeadDim) + (c * 8)) * 2;
                uint dst = (uint)(((key * 16) + (c ^ (key & 7))) * 16);
                DeviceMath.CopyToShared(kTile + dst, a.KAddress + src, valid);
                DeviceMath.CopyToShared(vTile + dst, a.VAddress + src, valid);
            }

            DeviceMath.CommitCopies();
            DeviceMath.WaitForAllCopies();
            Group.Barrier();

            CudaAsm.Emit(
                Scores,
                Chunk(kTile, kKey, kHalf),
                Chunk(kTile, kKey, 2 + kHalf),
                Chunk(kTile, kKey, 4 + kHalf),
                Chunk(kTile, kKey, 6 + kHalf),
                Chunk(kTile, kKey, 8 + kHalf),
                Chunk(kTile, kKey, 10 + kHalf),
                Chunk(kTile, kKey, 12 + kHalf),
                Chunk(kTile, kKey, 14 + kHalf));
            if (kt + TileRows > start + r0)
            {
                CudaAsm.Emit(CausalMask, kt + (2 * tig), rowPos);
            }

            CudaAsm.Emit(OnlineSoftmax);
            CudaAsm.Emit(
                AccumulateValues,
                Chunk(vTile, vKey, vHalf),
                Chunk(vTile, vKey, 2 + vHalf),
                Chunk(vTile, vKey, 4 + vHalf),
                Chunk(vTile, vKey, 6 + vHalf),
                Chunk(vTile, vKey, 8 + vHalf),
                Chunk(vTile, vKey, 10 + vHalf),
                Chunk(vTile, vKey, 12 + vHalf),
                Chunk(vTile, vKey, 14 + vHalf));
        }

        // Epilogue: normalized rows to an fp32 tile in shared memory, then written out coalesced.
        Group.Barrier();
        CudaAsm.Emit(StoreOutput, smem + (uint)(((((warp * 16) + gid) * EpiloguePitch) + (2 * tig)) * 4));
        Group.Barrier();
        var tile = shared.Cast<float>();
        int width = a.Heads * HeadDim;
        for (int e = tid; e < TileRows * HeadDim; e += BlockThreads)
        {
            int r = e >> 7;
            int d = e & (HeadDim - 1);
            int row = r0 + r;
            if (row < a.Rows)
            {
                float v = tile[(r * EpiloguePitch) + d];
                int k = (head * HeadDim) + d;
                if (a.HalfOutput != 0)
                {
                    ActivationLayout.Store(a.OutputHalf, row, width, k, v, a.Layout);
                }
                else
                {
                    a.Output[((long)row * width) + k] = v;
                }
            }
        }
    }

    /// <summary>Shared address of 16-byte chunk <paramref name="c"/> of tile row <paramref name="r"/> (swizzled).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Chunk(uint tile, int r, int c) => tile + (uint)(((r * 16) + (c ^ (r & 7))) * 16);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Pack(float lo, float hi)
    {
        CudaAsm.Emit("cvt.rn.f16x2.f32 %0, %1, %2;", out uint r, hi, lo);
        return r;
    }

    // ---- Inline PTX (generated once, kept as constants: ILGPU needs literal asm strings). ----

    /// <summary>Q fragments qa, scores s, output o, running max m and partial sum l of rows gid (0) and gid + 8 (1).</summary>
    private const string DeclareRegisters =
        ".reg .b32 qa<32>; " +
        ".reg .f32 s<32>; " +
        ".reg .f32 o<64>; " +
        ".reg .f32 m<2>; " +
        ".reg .f32 l<2>; " +
        "mov.f32 m0, 0fFF800000; " +
        "mov.f32 m1, 0fFF800000; " +
        "mov.f32 l0, 0f00000000; " +
        "mov.f32 l1, 0f00000000; " +
        "mov.f32 o0, 0f00000000; mov.f32 o1, 0f00000000; mov.f32 o2, 0f00000000; mov.f32 o3, 0f00000000; mov.f32 o4, 0f00000000; mov.f32 o5, 0f00000000; mov.f32 o6, 0f00000000; mov.f32 o7, 0f00000000; mov.f32 o8, 0f00000000; mov.f32 o9, 0f00000000; mov.f32 o10, 0f00000000; mov.f32 o11, 0f00000000; mov.f32 o12, 0f00000000; mov.f32 o13, 0f00000000; mov.f32 o14, 0f00000000; mov.f32 o15, 0f00000000; " +
        "mov.f32 o16, 0f00000000; mov.f32 o17, 0f00000000; mov.f32 o18, 0f00000000; mov.f32 o19, 0f00000000; mov.f32 o20, 0f00000000; mov.f32 o21, 0f00000000; mov.f32 o22, 0f00000000; mov.f32 o23, 0f00000000; mov.f32 o24, 0f00000000; mov.f32 o25, 0f00000000; mov.f32 o26, 0f00000000; mov.f32 o27, 0f00000000; mov.f32 o28, 0f00000000; mov.f32 o29, 0f00000000; mov.f32 o30, 0f00000000; mov.f32 o31, 0f00000000; " +
        "mov.f32 o32, 0f00000000; mov.f32 o33, 0f00000000; mov.f32 o34, 0f00000000; mov.f32 o35, 0f00000000; mov.f32 o36, 0f00000000; mov.f32 o37, 0f00000000; mov.f32 o38, 0f00000000; mov.f32 o39, 0f00000000; mov.f32 o40, 0f00000000; mov.f32 o41, 0f00000000; mov.f32 o42, 0f00000000; mov.f32 o43, 0f00000000; mov.f32 o44, 0f00000000; mov.f32 o45, 0f00000000; mov.f32 o46, 0f00000000; mov.f32 o47, 0f00000000; " +
        "mov.f32 o48, 0f00000000; mov.f32 o49, 0f00000000; mov.f32 o50, 0f00000000; mov.f32 o51, 0f00000000; mov.f32 o52, 0f00000000; mov.f32 o53, 0f00000000; mov.f32 o54, 0f00000000; mov.f32 o55, 0f00000000; mov.f32 o56, 0f00000000; mov.f32 o57, 0f00000000; mov.f32 o58, 0f00000000; mov.f32 o59, 0f00000000; mov.f32 o60, 0f00000000; mov.f32 o61, 0f00000000; mov.f32 o62, 0f00000000; mov.f32 o63, 0f00000000; ";

    /// <summary>The warp's 16 query rows as A fragments of the 8 k16 steps over head_dim 128 (%0..%7: each step's ldmatrix address).</summary>
    private const string LoadQuery =
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {qa0,qa1,qa2,qa3}, [%0]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {qa4,qa5,qa6,qa7}, [%1]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {qa8,qa9,qa10,qa11}, [%2]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {qa12,qa13,qa14,qa15}, [%3]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {qa16,qa17,qa18,qa19}, [%4]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {qa20,qa21,qa22,qa23}, [%5]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {qa24,qa25,qa26,qa27}, [%6]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {qa28,qa29,qa30,qa31}, [%7]; ";

    /// <summary>S = Q K^T for the 64 keys of the stage: per k16 step (%0..%7: the step's K ldmatrix address) four ldmatrix of two key tiles each and 8 mmas.</summary>
    private const string Scores =
        "{ .reg .b32 kb<16>; " +
        "mov.f32 s0, 0f00000000; mov.f32 s1, 0f00000000; mov.f32 s2, 0f00000000; mov.f32 s3, 0f00000000; mov.f32 s4, 0f00000000; mov.f32 s5, 0f00000000; mov.f32 s6, 0f00000000; mov.f32 s7, 0f00000000; mov.f32 s8, 0f00000000; mov.f32 s9, 0f00000000; mov.f32 s10, 0f00000000; mov.f32 s11, 0f00000000; mov.f32 s12, 0f00000000; mov.f32 s13, 0f00000000; mov.f32 s14, 0f00000000; mov.f32 s15, 0f00000000; " +
        "mov.f32 s16, 0f00000000; mov.f32 s17, 0f00000000; mov.f32 s18, 0f00000000; mov.f32 s19, 0f00000000; mov.f32 s20, 0f00000000; mov.f32 s21, 0f00000000; mov.f32 s22, 0f00000000; mov.f32 s23, 0f00000000; mov.f32 s24, 0f00000000; mov.f32 s25, 0f00000000; mov.f32 s26, 0f00000000; mov.f32 s27, 0f00000000; mov.f32 s28, 0f00000000; mov.f32 s29, 0f00000000; mov.f32 s30, 0f00000000; mov.f32 s31, 0f00000000; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {kb0,kb1,kb2,kb3}, [%0]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {kb4,kb5,kb6,kb7}, [%0+4096]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {kb8,kb9,kb10,kb11}, [%0+8192]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {kb12,kb13,kb14,kb15}, [%0+12288]; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s0,s1,s2,s3}, {qa0,qa1,qa2,qa3}, {kb0,kb1}, {s0,s1,s2,s3}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s4,s5,s6,s7}, {qa0,qa1,qa2,qa3}, {kb2,kb3}, {s4,s5,s6,s7}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s8,s9,s10,s11}, {qa0,qa1,qa2,qa3}, {kb4,kb5}, {s8,s9,s10,s11}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s12,s13,s14,s15}, {qa0,qa1,qa2,qa3}, {kb6,kb7}, {s12,s13,s14,s15}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s16,s17,s18,s19}, {qa0,qa1,qa2,qa3}, {kb8,kb9}, {s16,s17,s18,s19}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s20,s21,s22,s23}, {qa0,qa1,qa2,qa3}, {kb10,kb11}, {s20,s21,s22,s23}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s24,s25,s26,s27}, {qa0,qa1,qa2,qa3}, {kb12,kb13}, {s24,s25,s26,s27}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s28,s29,s30,s31}, {qa0,qa1,qa2,qa3}, {kb14,kb15}, {s28,s29,s30,s31}; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {kb0,kb1,kb2,kb3}, [%1]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {kb4,kb5,kb6,kb7}, [%1+4096]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {kb8,kb9,kb10,kb11}, [%1+8192]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {kb12,kb13,kb14,kb15}, [%1+12288]; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s0,s1,s2,s3}, {qa4,qa5,qa6,qa7}, {kb0,kb1}, {s0,s1,s2,s3}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s4,s5,s6,s7}, {qa4,qa5,qa6,qa7}, {kb2,kb3}, {s4,s5,s6,s7}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s8,s9,s10,s11}, {qa4,qa5,qa6,qa7}, {kb4,kb5}, {s8,s9,s10,s11}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s12,s13,s14,s15}, {qa4,qa5,qa6,qa7}, {kb6,kb7}, {s12,s13,s14,s15}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s16,s17,s18,s19}, {qa4,qa5,qa6,qa7}, {kb8,kb9}, {s16,s17,s18,s19}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s20,s21,s22,s23}, {qa4,qa5,qa6,qa7}, {kb10,kb11}, {s20,s21,s22,s23}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s24,s25,s26,s27}, {qa4,qa5,qa6,qa7}, {kb12,kb13}, {s24,s25,s26,s27}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s28,s29,s30,s31}, {qa4,qa5,qa6,qa7}, {kb14,kb15}, {s28,s29,s30,s31}; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {kb0,kb1,kb2,kb3}, [%2]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {kb4,kb5,kb6,kb7}, [%2+4096]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {kb8,kb9,kb10,kb11}, [%2+8192]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {kb12,kb13,kb14,kb15}, [%2+12288]; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s0,s1,s2,s3}, {qa8,qa9,qa10,qa11}, {kb0,kb1}, {s0,s1,s2,s3}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s4,s5,s6,s7}, {qa8,qa9,qa10,qa11}, {kb2,kb3}, {s4,s5,s6,s7}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s8,s9,s10,s11}, {qa8,qa9,qa10,qa11}, {kb4,kb5}, {s8,s9,s10,s11}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s12,s13,s14,s15}, {qa8,qa9,qa10,qa11}, {kb6,kb7}, {s12,s13,s14,s15}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s16,s17,s18,s19}, {qa8,qa9,qa10,qa11}, {kb8,kb9}, {s16,s17,s18,s19}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s20,s21,s22,s23}, {qa8,qa9,qa10,qa11}, {kb10,kb11}, {s20,s21,s22,s23}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s24,s25,s26,s27}, {qa8,qa9,qa10,qa11}, {kb12,kb13}, {s24,s25,s26,s27}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s28,s29,s30,s31}, {qa8,qa9,qa10,qa11}, {kb14,kb15}, {s28,s29,s30,s31}; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {kb0,kb1,kb2,kb3}, [%3]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {kb4,kb5,kb6,kb7}, [%3+4096]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {kb8,kb9,kb10,kb11}, [%3+8192]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {kb12,kb13,kb14,kb15}, [%3+12288]; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s0,s1,s2,s3}, {qa12,qa13,qa14,qa15}, {kb0,kb1}, {s0,s1,s2,s3}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s4,s5,s6,s7}, {qa12,qa13,qa14,qa15}, {kb2,kb3}, {s4,s5,s6,s7}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s8,s9,s10,s11}, {qa12,qa13,qa14,qa15}, {kb4,kb5}, {s8,s9,s10,s11}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s12,s13,s14,s15}, {qa12,qa13,qa14,qa15}, {kb6,kb7}, {s12,s13,s14,s15}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s16,s17,s18,s19}, {qa12,qa13,qa14,qa15}, {kb8,kb9}, {s16,s17,s18,s19}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s20,s21,s22,s23}, {qa12,qa13,qa14,qa15}, {kb10,kb11}, {s20,s21,s22,s23}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s24,s25,s26,s27}, {qa12,qa13,qa14,qa15}, {kb12,kb13}, {s24,s25,s26,s27}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s28,s29,s30,s31}, {qa12,qa13,qa14,qa15}, {kb14,kb15}, {s28,s29,s30,s31}; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {kb0,kb1,kb2,kb3}, [%4]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {kb4,kb5,kb6,kb7}, [%4+4096]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {kb8,kb9,kb10,kb11}, [%4+8192]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {kb12,kb13,kb14,kb15}, [%4+12288]; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s0,s1,s2,s3}, {qa16,qa17,qa18,qa19}, {kb0,kb1}, {s0,s1,s2,s3}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s4,s5,s6,s7}, {qa16,qa17,qa18,qa19}, {kb2,kb3}, {s4,s5,s6,s7}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s8,s9,s10,s11}, {qa16,qa17,qa18,qa19}, {kb4,kb5}, {s8,s9,s10,s11}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s12,s13,s14,s15}, {qa16,qa17,qa18,qa19}, {kb6,kb7}, {s12,s13,s14,s15}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s16,s17,s18,s19}, {qa16,qa17,qa18,qa19}, {kb8,kb9}, {s16,s17,s18,s19}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s20,s21,s22,s23}, {qa16,qa17,qa18,qa19}, {kb10,kb11}, {s20,s21,s22,s23}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s24,s25,s26,s27}, {qa16,qa17,qa18,qa19}, {kb12,kb13}, {s24,s25,s26,s27}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s28,s29,s30,s31}, {qa16,qa17,qa18,qa19}, {kb14,kb15}, {s28,s29,s30,s31}; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {kb0,kb1,kb2,kb3}, [%5]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {kb4,kb5,kb6,kb7}, [%5+4096]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {kb8,kb9,kb10,kb11}, [%5+8192]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {kb12,kb13,kb14,kb15}, [%5+12288]; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s0,s1,s2,s3}, {qa20,qa21,qa22,qa23}, {kb0,kb1}, {s0,s1,s2,s3}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s4,s5,s6,s7}, {qa20,qa21,qa22,qa23}, {kb2,kb3}, {s4,s5,s6,s7}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s8,s9,s10,s11}, {qa20,qa21,qa22,qa23}, {kb4,kb5}, {s8,s9,s10,s11}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s12,s13,s14,s15}, {qa20,qa21,qa22,qa23}, {kb6,kb7}, {s12,s13,s14,s15}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s16,s17,s18,s19}, {qa20,qa21,qa22,qa23}, {kb8,kb9}, {s16,s17,s18,s19}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s20,s21,s22,s23}, {qa20,qa21,qa22,qa23}, {kb10,kb11}, {s20,s21,s22,s23}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s24,s25,s26,s27}, {qa20,qa21,qa22,qa23}, {kb12,kb13}, {s24,s25,s26,s27}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s28,s29,s30,s31}, {qa20,qa21,qa22,qa23}, {kb14,kb15}, {s28,s29,s30,s31}; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {kb0,kb1,kb2,kb3}, [%6]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {kb4,kb5,kb6,kb7}, [%6+4096]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {kb8,kb9,kb10,kb11}, [%6+8192]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {kb12,kb13,kb14,kb15}, [%6+12288]; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s0,s1,s2,s3}, {qa24,qa25,qa26,qa27}, {kb0,kb1}, {s0,s1,s2,s3}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s4,s5,s6,s7}, {qa24,qa25,qa26,qa27}, {kb2,kb3}, {s4,s5,s6,s7}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s8,s9,s10,s11}, {qa24,qa25,qa26,qa27}, {kb4,kb5}, {s8,s9,s10,s11}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s12,s13,s14,s15}, {qa24,qa25,qa26,qa27}, {kb6,kb7}, {s12,s13,s14,s15}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s16,s17,s18,s19}, {qa24,qa25,qa26,qa27}, {kb8,kb9}, {s16,s17,s18,s19}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s20,s21,s22,s23}, {qa24,qa25,qa26,qa27}, {kb10,kb11}, {s20,s21,s22,s23}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s24,s25,s26,s27}, {qa24,qa25,qa26,qa27}, {kb12,kb13}, {s24,s25,s26,s27}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s28,s29,s30,s31}, {qa24,qa25,qa26,qa27}, {kb14,kb15}, {s28,s29,s30,s31}; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {kb0,kb1,kb2,kb3}, [%7]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {kb4,kb5,kb6,kb7}, [%7+4096]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {kb8,kb9,kb10,kb11}, [%7+8192]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {kb12,kb13,kb14,kb15}, [%7+12288]; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s0,s1,s2,s3}, {qa28,qa29,qa30,qa31}, {kb0,kb1}, {s0,s1,s2,s3}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s4,s5,s6,s7}, {qa28,qa29,qa30,qa31}, {kb2,kb3}, {s4,s5,s6,s7}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s8,s9,s10,s11}, {qa28,qa29,qa30,qa31}, {kb4,kb5}, {s8,s9,s10,s11}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s12,s13,s14,s15}, {qa28,qa29,qa30,qa31}, {kb6,kb7}, {s12,s13,s14,s15}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s16,s17,s18,s19}, {qa28,qa29,qa30,qa31}, {kb8,kb9}, {s16,s17,s18,s19}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s20,s21,s22,s23}, {qa28,qa29,qa30,qa31}, {kb10,kb11}, {s20,s21,s22,s23}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s24,s25,s26,s27}, {qa28,qa29,qa30,qa31}, {kb12,kb13}, {s24,s25,s26,s27}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {s28,s29,s30,s31}, {qa28,qa29,qa30,qa31}, {kb14,kb15}, {s28,s29,s30,s31}; " +
        "} ";

    /// <summary>Scores of keys after a row's position to -inf: %0 the key of this thread's first score column, %1 the position of row gid.</summary>
    private const string CausalMask =
        "{ .reg .s32 k, r0, r1; .reg .pred p; " +
        "add.s32 r1, %1, 8; " +
        "add.s32 k, %0, 0; " +
        "setp.gt.s32 p, k, %1; selp.f32 s0, 0fFF800000, s0, p; " +
        "setp.gt.s32 p, k, r1; selp.f32 s2, 0fFF800000, s2, p; " +
        "add.s32 k, %0, 1; " +
        "setp.gt.s32 p, k, %1; selp.f32 s1, 0fFF800000, s1, p; " +
        "setp.gt.s32 p, k, r1; selp.f32 s3, 0fFF800000, s3, p; " +
        "add.s32 k, %0, 8; " +
        "setp.gt.s32 p, k, %1; selp.f32 s4, 0fFF800000, s4, p; " +
        "setp.gt.s32 p, k, r1; selp.f32 s6, 0fFF800000, s6, p; " +
        "add.s32 k, %0, 9; " +
        "setp.gt.s32 p, k, %1; selp.f32 s5, 0fFF800000, s5, p; " +
        "setp.gt.s32 p, k, r1; selp.f32 s7, 0fFF800000, s7, p; " +
        "add.s32 k, %0, 16; " +
        "setp.gt.s32 p, k, %1; selp.f32 s8, 0fFF800000, s8, p; " +
        "setp.gt.s32 p, k, r1; selp.f32 s10, 0fFF800000, s10, p; " +
        "add.s32 k, %0, 17; " +
        "setp.gt.s32 p, k, %1; selp.f32 s9, 0fFF800000, s9, p; " +
        "setp.gt.s32 p, k, r1; selp.f32 s11, 0fFF800000, s11, p; " +
        "add.s32 k, %0, 24; " +
        "setp.gt.s32 p, k, %1; selp.f32 s12, 0fFF800000, s12, p; " +
        "setp.gt.s32 p, k, r1; selp.f32 s14, 0fFF800000, s14, p; " +
        "add.s32 k, %0, 25; " +
        "setp.gt.s32 p, k, %1; selp.f32 s13, 0fFF800000, s13, p; " +
        "setp.gt.s32 p, k, r1; selp.f32 s15, 0fFF800000, s15, p; " +
        "add.s32 k, %0, 32; " +
        "setp.gt.s32 p, k, %1; selp.f32 s16, 0fFF800000, s16, p; " +
        "setp.gt.s32 p, k, r1; selp.f32 s18, 0fFF800000, s18, p; " +
        "add.s32 k, %0, 33; " +
        "setp.gt.s32 p, k, %1; selp.f32 s17, 0fFF800000, s17, p; " +
        "setp.gt.s32 p, k, r1; selp.f32 s19, 0fFF800000, s19, p; " +
        "add.s32 k, %0, 40; " +
        "setp.gt.s32 p, k, %1; selp.f32 s20, 0fFF800000, s20, p; " +
        "setp.gt.s32 p, k, r1; selp.f32 s22, 0fFF800000, s22, p; " +
        "add.s32 k, %0, 41; " +
        "setp.gt.s32 p, k, %1; selp.f32 s21, 0fFF800000, s21, p; " +
        "setp.gt.s32 p, k, r1; selp.f32 s23, 0fFF800000, s23, p; " +
        "add.s32 k, %0, 48; " +
        "setp.gt.s32 p, k, %1; selp.f32 s24, 0fFF800000, s24, p; " +
        "setp.gt.s32 p, k, r1; selp.f32 s26, 0fFF800000, s26, p; " +
        "add.s32 k, %0, 49; " +
        "setp.gt.s32 p, k, %1; selp.f32 s25, 0fFF800000, s25, p; " +
        "setp.gt.s32 p, k, r1; selp.f32 s27, 0fFF800000, s27, p; " +
        "add.s32 k, %0, 56; " +
        "setp.gt.s32 p, k, %1; selp.f32 s28, 0fFF800000, s28, p; " +
        "setp.gt.s32 p, k, r1; selp.f32 s30, 0fFF800000, s30, p; " +
        "add.s32 k, %0, 57; " +
        "setp.gt.s32 p, k, %1; selp.f32 s29, 0fFF800000, s29, p; " +
        "setp.gt.s32 p, k, r1; selp.f32 s31, 0fFF800000, s31, p; " +
        "} ";

    /// <summary>Online softmax of the stage's scores (log2 domain: the query carries log2 e): new running max per row over the quad of threads sharing it, P = 2^(S - max), the partial sums and the output rescaled.</summary>
    private const string OnlineSoftmax =
        "{ .reg .f32 mx, t, a, sum; " +
        "max.f32 mx, s0, s1; " +
        "max.f32 mx, mx, s4; " +
        "max.f32 mx, mx, s5; " +
        "max.f32 mx, mx, s8; " +
        "max.f32 mx, mx, s9; " +
        "max.f32 mx, mx, s12; " +
        "max.f32 mx, mx, s13; " +
        "max.f32 mx, mx, s16; " +
        "max.f32 mx, mx, s17; " +
        "max.f32 mx, mx, s20; " +
        "max.f32 mx, mx, s21; " +
        "max.f32 mx, mx, s24; " +
        "max.f32 mx, mx, s25; " +
        "max.f32 mx, mx, s28; " +
        "max.f32 mx, mx, s29; " +
        "shfl.sync.bfly.b32 t, mx, 1, 31, 0xffffffff; max.f32 mx, mx, t; " +
        "shfl.sync.bfly.b32 t, mx, 2, 31, 0xffffffff; max.f32 mx, mx, t; " +
        "max.f32 mx, mx, m0; sub.f32 a, m0, mx; ex2.approx.ftz.f32 a, a; mov.f32 m0, mx; mov.f32 sum, 0f00000000; " +
        "sub.f32 s0, s0, mx; ex2.approx.ftz.f32 s0, s0; add.f32 sum, sum, s0; " +
        "sub.f32 s1, s1, mx; ex2.approx.ftz.f32 s1, s1; add.f32 sum, sum, s1; " +
        "sub.f32 s4, s4, mx; ex2.approx.ftz.f32 s4, s4; add.f32 sum, sum, s4; " +
        "sub.f32 s5, s5, mx; ex2.approx.ftz.f32 s5, s5; add.f32 sum, sum, s5; " +
        "sub.f32 s8, s8, mx; ex2.approx.ftz.f32 s8, s8; add.f32 sum, sum, s8; " +
        "sub.f32 s9, s9, mx; ex2.approx.ftz.f32 s9, s9; add.f32 sum, sum, s9; " +
        "sub.f32 s12, s12, mx; ex2.approx.ftz.f32 s12, s12; add.f32 sum, sum, s12; " +
        "sub.f32 s13, s13, mx; ex2.approx.ftz.f32 s13, s13; add.f32 sum, sum, s13; " +
        "sub.f32 s16, s16, mx; ex2.approx.ftz.f32 s16, s16; add.f32 sum, sum, s16; " +
        "sub.f32 s17, s17, mx; ex2.approx.ftz.f32 s17, s17; add.f32 sum, sum, s17; " +
        "sub.f32 s20, s20, mx; ex2.approx.ftz.f32 s20, s20; add.f32 sum, sum, s20; " +
        "sub.f32 s21, s21, mx; ex2.approx.ftz.f32 s21, s21; add.f32 sum, sum, s21; " +
        "sub.f32 s24, s24, mx; ex2.approx.ftz.f32 s24, s24; add.f32 sum, sum, s24; " +
        "sub.f32 s25, s25, mx; ex2.approx.ftz.f32 s25, s25; add.f32 sum, sum, s25; " +
        "sub.f32 s28, s28, mx; ex2.approx.ftz.f32 s28, s28; add.f32 sum, sum, s28; " +
        "sub.f32 s29, s29, mx; ex2.approx.ftz.f32 s29, s29; add.f32 sum, sum, s29; " +
        "fma.rn.f32 l0, l0, a, sum; " +
        "mul.f32 o0, o0, a; mul.f32 o1, o1, a; mul.f32 o4, o4, a; mul.f32 o5, o5, a; mul.f32 o8, o8, a; mul.f32 o9, o9, a; mul.f32 o12, o12, a; mul.f32 o13, o13, a; mul.f32 o16, o16, a; mul.f32 o17, o17, a; mul.f32 o20, o20, a; mul.f32 o21, o21, a; mul.f32 o24, o24, a; mul.f32 o25, o25, a; mul.f32 o28, o28, a; mul.f32 o29, o29, a; " +
        "mul.f32 o32, o32, a; mul.f32 o33, o33, a; mul.f32 o36, o36, a; mul.f32 o37, o37, a; mul.f32 o40, o40, a; mul.f32 o41, o41, a; mul.f32 o44, o44, a; mul.f32 o45, o45, a; mul.f32 o48, o48, a; mul.f32 o49, o49, a; mul.f32 o52, o52, a; mul.f32 o53, o53, a; mul.f32 o56, o56, a; mul.f32 o57, o57, a; mul.f32 o60, o60, a; mul.f32 o61, o61, a; " +
        "max.f32 mx, s2, s3; " +
        "max.f32 mx, mx, s6; " +
        "max.f32 mx, mx, s7; " +
        "max.f32 mx, mx, s10; " +
        "max.f32 mx, mx, s11; " +
        "max.f32 mx, mx, s14; " +
        "max.f32 mx, mx, s15; " +
        "max.f32 mx, mx, s18; " +
        "max.f32 mx, mx, s19; " +
        "max.f32 mx, mx, s22; " +
        "max.f32 mx, mx, s23; " +
        "max.f32 mx, mx, s26; " +
        "max.f32 mx, mx, s27; " +
        "max.f32 mx, mx, s30; " +
        "max.f32 mx, mx, s31; " +
        "shfl.sync.bfly.b32 t, mx, 1, 31, 0xffffffff; max.f32 mx, mx, t; " +
        "shfl.sync.bfly.b32 t, mx, 2, 31, 0xffffffff; max.f32 mx, mx, t; " +
        "max.f32 mx, mx, m1; sub.f32 a, m1, mx; ex2.approx.ftz.f32 a, a; mov.f32 m1, mx; mov.f32 sum, 0f00000000; " +
        "sub.f32 s2, s2, mx; ex2.approx.ftz.f32 s2, s2; add.f32 sum, sum, s2; " +
        "sub.f32 s3, s3, mx; ex2.approx.ftz.f32 s3, s3; add.f32 sum, sum, s3; " +
        "sub.f32 s6, s6, mx; ex2.approx.ftz.f32 s6, s6; add.f32 sum, sum, s6; " +
        "sub.f32 s7, s7, mx; ex2.approx.ftz.f32 s7, s7; add.f32 sum, sum, s7; " +
        "sub.f32 s10, s10, mx; ex2.approx.ftz.f32 s10, s10; add.f32 sum, sum, s10; " +
        "sub.f32 s11, s11, mx; ex2.approx.ftz.f32 s11, s11; add.f32 sum, sum, s11; " +
        "sub.f32 s14, s14, mx; ex2.approx.ftz.f32 s14, s14; add.f32 sum, sum, s14; " +
        "sub.f32 s15, s15, mx; ex2.approx.ftz.f32 s15, s15; add.f32 sum, sum, s15; " +
        "sub.f32 s18, s18, mx; ex2.approx.ftz.f32 s18, s18; add.f32 sum, sum, s18; " +
        "sub.f32 s19, s19, mx; ex2.approx.ftz.f32 s19, s19; add.f32 sum, sum, s19; " +
        "sub.f32 s22, s22, mx; ex2.approx.ftz.f32 s22, s22; add.f32 sum, sum, s22; " +
        "sub.f32 s23, s23, mx; ex2.approx.ftz.f32 s23, s23; add.f32 sum, sum, s23; " +
        "sub.f32 s26, s26, mx; ex2.approx.ftz.f32 s26, s26; add.f32 sum, sum, s26; " +
        "sub.f32 s27, s27, mx; ex2.approx.ftz.f32 s27, s27; add.f32 sum, sum, s27; " +
        "sub.f32 s30, s30, mx; ex2.approx.ftz.f32 s30, s30; add.f32 sum, sum, s30; " +
        "sub.f32 s31, s31, mx; ex2.approx.ftz.f32 s31, s31; add.f32 sum, sum, s31; " +
        "fma.rn.f32 l1, l1, a, sum; " +
        "mul.f32 o2, o2, a; mul.f32 o3, o3, a; mul.f32 o6, o6, a; mul.f32 o7, o7, a; mul.f32 o10, o10, a; mul.f32 o11, o11, a; mul.f32 o14, o14, a; mul.f32 o15, o15, a; mul.f32 o18, o18, a; mul.f32 o19, o19, a; mul.f32 o22, o22, a; mul.f32 o23, o23, a; mul.f32 o26, o26, a; mul.f32 o27, o27, a; mul.f32 o30, o30, a; mul.f32 o31, o31, a; " +
        "mul.f32 o34, o34, a; mul.f32 o35, o35, a; mul.f32 o38, o38, a; mul.f32 o39, o39, a; mul.f32 o42, o42, a; mul.f32 o43, o43, a; mul.f32 o46, o46, a; mul.f32 o47, o47, a; mul.f32 o50, o50, a; mul.f32 o51, o51, a; mul.f32 o54, o54, a; mul.f32 o55, o55, a; mul.f32 o58, o58, a; mul.f32 o59, o59, a; mul.f32 o62, o62, a; mul.f32 o63, o63, a; " +
        "} ";

    /// <summary>O += P V: P from the scores as fp16 A fragments (4 k16 steps over the 64 keys), per pair of dim tiles (%0..%7: its ldmatrix.trans address) four ldmatrix.trans and 8 mmas.</summary>
    private const string AccumulateValues =
        "{ .reg .b32 pa<16>, vb<4>; " +
        "cvt.rn.f16x2.f32 pa0, s1, s0; " +
        "cvt.rn.f16x2.f32 pa1, s3, s2; " +
        "cvt.rn.f16x2.f32 pa2, s5, s4; " +
        "cvt.rn.f16x2.f32 pa3, s7, s6; " +
        "cvt.rn.f16x2.f32 pa4, s9, s8; " +
        "cvt.rn.f16x2.f32 pa5, s11, s10; " +
        "cvt.rn.f16x2.f32 pa6, s13, s12; " +
        "cvt.rn.f16x2.f32 pa7, s15, s14; " +
        "cvt.rn.f16x2.f32 pa8, s17, s16; " +
        "cvt.rn.f16x2.f32 pa9, s19, s18; " +
        "cvt.rn.f16x2.f32 pa10, s21, s20; " +
        "cvt.rn.f16x2.f32 pa11, s23, s22; " +
        "cvt.rn.f16x2.f32 pa12, s25, s24; " +
        "cvt.rn.f16x2.f32 pa13, s27, s26; " +
        "cvt.rn.f16x2.f32 pa14, s29, s28; " +
        "cvt.rn.f16x2.f32 pa15, s31, s30; " +
        "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {vb0,vb1,vb2,vb3}, [%0]; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o0,o1,o2,o3}, {pa0,pa1,pa2,pa3}, {vb0,vb1}, {o0,o1,o2,o3}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o4,o5,o6,o7}, {pa0,pa1,pa2,pa3}, {vb2,vb3}, {o4,o5,o6,o7}; " +
        "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {vb0,vb1,vb2,vb3}, [%0+4096]; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o0,o1,o2,o3}, {pa4,pa5,pa6,pa7}, {vb0,vb1}, {o0,o1,o2,o3}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o4,o5,o6,o7}, {pa4,pa5,pa6,pa7}, {vb2,vb3}, {o4,o5,o6,o7}; " +
        "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {vb0,vb1,vb2,vb3}, [%0+8192]; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o0,o1,o2,o3}, {pa8,pa9,pa10,pa11}, {vb0,vb1}, {o0,o1,o2,o3}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o4,o5,o6,o7}, {pa8,pa9,pa10,pa11}, {vb2,vb3}, {o4,o5,o6,o7}; " +
        "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {vb0,vb1,vb2,vb3}, [%0+12288]; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o0,o1,o2,o3}, {pa12,pa13,pa14,pa15}, {vb0,vb1}, {o0,o1,o2,o3}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o4,o5,o6,o7}, {pa12,pa13,pa14,pa15}, {vb2,vb3}, {o4,o5,o6,o7}; " +
        "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {vb0,vb1,vb2,vb3}, [%1]; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o8,o9,o10,o11}, {pa0,pa1,pa2,pa3}, {vb0,vb1}, {o8,o9,o10,o11}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o12,o13,o14,o15}, {pa0,pa1,pa2,pa3}, {vb2,vb3}, {o12,o13,o14,o15}; " +
        "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {vb0,vb1,vb2,vb3}, [%1+4096]; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o8,o9,o10,o11}, {pa4,pa5,pa6,pa7}, {vb0,vb1}, {o8,o9,o10,o11}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o12,o13,o14,o15}, {pa4,pa5,pa6,pa7}, {vb2,vb3}, {o12,o13,o14,o15}; " +
        "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {vb0,vb1,vb2,vb3}, [%1+8192]; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o8,o9,o10,o11}, {pa8,pa9,pa10,pa11}, {vb0,vb1}, {o8,o9,o10,o11}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o12,o13,o14,o15}, {pa8,pa9,pa10,pa11}, {vb2,vb3}, {o12,o13,o14,o15}; " +
        "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {vb0,vb1,vb2,vb3}, [%1+12288]; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o8,o9,o10,o11}, {pa12,pa13,pa14,pa15}, {vb0,vb1}, {o8,o9,o10,o11}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o12,o13,o14,o15}, {pa12,pa13,pa14,pa15}, {vb2,vb3}, {o12,o13,o14,o15}; " +
        "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {vb0,vb1,vb2,vb3}, [%2]; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o16,o17,o18,o19}, {pa0,pa1,pa2,pa3}, {vb0,vb1}, {o16,o17,o18,o19}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o20,o21,o22,o23}, {pa0,pa1,pa2,pa3}, {vb2,vb3}, {o20,o21,o22,o23}; " +
        "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {vb0,vb1,vb2,vb3}, [%2+4096]; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o16,o17,o18,o19}, {pa4,pa5,pa6,pa7}, {vb0,vb1}, {o16,o17,o18,o19}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o20,o21,o22,o23}, {pa4,pa5,pa6,pa7}, {vb2,vb3}, {o20,o21,o22,o23}; " +
        "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {vb0,vb1,vb2,vb3}, [%2+8192]; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o16,o17,o18,o19}, {pa8,pa9,pa10,pa11}, {vb0,vb1}, {o16,o17,o18,o19}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o20,o21,o22,o23}, {pa8,pa9,pa10,pa11}, {vb2,vb3}, {o20,o21,o22,o23}; " +
        "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {vb0,vb1,vb2,vb3}, [%2+12288]; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o16,o17,o18,o19}, {pa12,pa13,pa14,pa15}, {vb0,vb1}, {o16,o17,o18,o19}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o20,o21,o22,o23}, {pa12,pa13,pa14,pa15}, {vb2,vb3}, {o20,o21,o22,o23}; " +
        "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {vb0,vb1,vb2,vb3}, [%3]; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o24,o25,o26,o27}, {pa0,pa1,pa2,pa3}, {vb0,vb1}, {o24,o25,o26,o27}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o28,o29,o30,o31}, {pa0,pa1,pa2,pa3}, {vb2,vb3}, {o28,o29,o30,o31}; " +
        "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {vb0,vb1,vb2,vb3}, [%3+4096]; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o24,o25,o26,o27}, {pa4,pa5,pa6,pa7}, {vb0,vb1}, {o24,o25,o26,o27}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o28,o29,o30,o31}, {pa4,pa5,pa6,pa7}, {vb2,vb3}, {o28,o29,o30,o31}; " +
        "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {vb0,vb1,vb2,vb3}, [%3+8192]; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o24,o25,o26,o27}, {pa8,pa9,pa10,pa11}, {vb0,vb1}, {o24,o25,o26,o27}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o28,o29,o30,o31}, {pa8,pa9,pa10,pa11}, {vb2,vb3}, {o28,o29,o30,o31}; " +
        "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {vb0,vb1,vb2,vb3}, [%3+12288]; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o24,o25,o26,o27}, {pa12,pa13,pa14,pa15}, {vb0,vb1}, {o24,o25,o26,o27}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o28,o29,o30,o31}, {pa12,pa13,pa14,pa15}, {vb2,vb3}, {o28,o29,o30,o31}; " +
        "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {vb0,vb1,vb2,vb3}, [%4]; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o32,o33,o34,o35}, {pa0,pa1,pa2,pa3}, {vb0,vb1}, {o32,o33,o34,o35}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o36,o37,o38,o39}, {pa0,pa1,pa2,pa3}, {vb2,vb3}, {o36,o37,o38,o39}; " +
        "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {vb0,vb1,vb2,vb3}, [%4+4096]; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o32,o33,o34,o35}, {pa4,pa5,pa6,pa7}, {vb0,vb1}, {o32,o33,o34,o35}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o36,o37,o38,o39}, {pa4,pa5,pa6,pa7}, {vb2,vb3}, {o36,o37,o38,o39}; " +
        "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {vb0,vb1,vb2,vb3}, [%4+8192]; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o32,o33,o34,o35}, {pa8,pa9,pa10,pa11}, {vb0,vb1}, {o32,o33,o34,o35}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o36,o37,o38,o39}, {pa8,pa9,pa10,pa11}, {vb2,vb3}, {o36,o37,o38,o39}; " +
        "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {vb0,vb1,vb2,vb3}, [%4+12288]; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o32,o33,o34,o35}, {pa12,pa13,pa14,pa15}, {vb0,vb1}, {o32,o33,o34,o35}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o36,o37,o38,o39}, {pa12,pa13,pa14,pa15}, {vb2,vb3}, {o36,o37,o38,o39}; " +
        "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {vb0,vb1,vb2,vb3}, [%5]; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o40,o41,o42,o43}, {pa0,pa1,pa2,pa3}, {vb0,vb1}, {o40,o41,o42,o43}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o44,o45,o46,o47}, {pa0,pa1,pa2,pa3}, {vb2,vb3}, {o44,o45,o46,o47}; " +
        "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {vb0,vb1,vb2,vb3}, [%5+4096]; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o40,o41,o42,o43}, {pa4,pa5,pa6,pa7}, {vb0,vb1}, {o40,o41,o42,o43}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o44,o45,o46,o47}, {pa4,pa5,pa6,pa7}, {vb2,vb3}, {o44,o45,o46,o47}; " +
        "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {vb0,vb1,vb2,vb3}, [%5+8192]; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o40,o41,o42,o43}, {pa8,pa9,pa10,pa11}, {vb0,vb1}, {o40,o41,o42,o43}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o44,o45,o46,o47}, {pa8,pa9,pa10,pa11}, {vb2,vb3}, {o44,o45,o46,o47}; " +
        "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {vb0,vb1,vb2,vb3}, [%5+12288]; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o40,o41,o42,o43}, {pa12,pa13,pa14,pa15}, {vb0,vb1}, {o40,o41,o42,o43}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o44,o45,o46,o47}, {pa12,pa13,pa14,pa15}, {vb2,vb3}, {o44,o45,o46,o47}; " +
        "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {vb0,vb1,vb2,vb3}, [%6]; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o48,o49,o50,o51}, {pa0,pa1,pa2,pa3}, {vb0,vb1}, {o48,o49,o50,o51}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o52,o53,o54,o55}, {pa0,pa1,pa2,pa3}, {vb2,vb3}, {o52,o53,o54,o55}; " +
        "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {vb0,vb1,vb2,vb3}, [%6+4096]; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o48,o49,o50,o51}, {pa4,pa5,pa6,pa7}, {vb0,vb1}, {o48,o49,o50,o51}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o52,o53,o54,o55}, {pa4,pa5,pa6,pa7}, {vb2,vb3}, {o52,o53,o54,o55}; " +
        "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {vb0,vb1,vb2,vb3}, [%6+8192]; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o48,o49,o50,o51}, {pa8,pa9,pa10,pa11}, {vb0,vb1}, {o48,o49,o50,o51}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o52,o53,o54,o55}, {pa8,pa9,pa10,pa11}, {vb2,vb3}, {o52,o53,o54,o55}; " +
        "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {vb0,vb1,vb2,vb3}, [%6+12288]; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o48,o49,o50,o51}, {pa12,pa13,pa14,pa15}, {vb0,vb1}, {o48,o49,o50,o51}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o52,o53,o54,o55}, {pa12,pa13,pa14,pa15}, {vb2,vb3}, {o52,o53,o54,o55}; " +
        "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {vb0,vb1,vb2,vb3}, [%7]; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o56,o57,o58,o59}, {pa0,pa1,pa2,pa3}, {vb0,vb1}, {o56,o57,o58,o59}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o60,o61,o62,o63}, {pa0,pa1,pa2,pa3}, {vb2,vb3}, {o60,o61,o62,o63}; " +
        "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {vb0,vb1,vb2,vb3}, [%7+4096]; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o56,o57,o58,o59}, {pa4,pa5,pa6,pa7}, {vb0,vb1}, {o56,o57,o58,o59}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o60,o61,o62,o63}, {pa4,pa5,pa6,pa7}, {vb2,vb3}, {o60,o61,o62,o63}; " +
        "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {vb0,vb1,vb2,vb3}, [%7+8192]; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o56,o57,o58,o59}, {pa8,pa9,pa10,pa11}, {vb0,vb1}, {o56,o57,o58,o59}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o60,o61,o62,o63}, {pa8,pa9,pa10,pa11}, {vb2,vb3}, {o60,o61,o62,o63}; " +
        "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {vb0,vb1,vb2,vb3}, [%7+12288]; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o56,o57,o58,o59}, {pa12,pa13,pa14,pa15}, {vb0,vb1}, {o56,o57,o58,o59}; " +
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {o60,o61,o62,o63}, {pa12,pa13,pa14,pa15}, {vb2,vb3}, {o60,o61,o62,o63}; " +
        "} ";

    /// <summary>Normalizes the rows by their summed exponentials and writes them to the fp32 epilogue tile: %0 is row gid, column 2 tig; tile n is 8 columns on, row gid + 8 is 8 rows (4224 bytes) on.</summary>
    private const string StoreOutput =
        "{ .reg .f32 t, r0, r1; " +
        "shfl.sync.bfly.b32 t, l0, 1, 31, 0xffffffff; add.f32 l0, l0, t; shfl.sync.bfly.b32 t, l0, 2, 31, 0xffffffff; add.f32 l0, l0, t; rcp.rn.f32 r0, l0; " +
        "shfl.sync.bfly.b32 t, l1, 1, 31, 0xffffffff; add.f32 l1, l1, t; shfl.sync.bfly.b32 t, l1, 2, 31, 0xffffffff; add.f32 l1, l1, t; rcp.rn.f32 r1, l1; " +
        "mul.f32 o0, o0, r0; mul.f32 o1, o1, r0; st.shared.v2.f32 [%0], {o0,o1}; " +
        "mul.f32 o2, o2, r1; mul.f32 o3, o3, r1; st.shared.v2.f32 [%0+4224], {o2,o3}; " +
        "mul.f32 o4, o4, r0; mul.f32 o5, o5, r0; st.shared.v2.f32 [%0+32], {o4,o5}; " +
        "mul.f32 o6, o6, r1; mul.f32 o7, o7, r1; st.shared.v2.f32 [%0+4256], {o6,o7}; " +
        "mul.f32 o8, o8, r0; mul.f32 o9, o9, r0; st.shared.v2.f32 [%0+64], {o8,o9}; " +
        "mul.f32 o10, o10, r1; mul.f32 o11, o11, r1; st.shared.v2.f32 [%0+4288], {o10,o11}; " +
        "mul.f32 o12, o12, r0; mul.f32 o13, o13, r0; st.shared.v2.f32 [%0+96], {o12,o13}; " +
        "mul.f32 o14, o14, r1; mul.f32 o15, o15, r1; st.shared.v2.f32 [%0+4320], {o14,o15}; " +
        "mul.f32 o16, o16, r0; mul.f32 o17, o17, r0; st.shared.v2.f32 [%0+128], {o16,o17}; " +
        "mul.f32 o18, o18, r1; mul.f32 o19, o19, r1; st.shared.v2.f32 [%0+4352], {o18,o19}; " +
        "mul.f32 o20, o20, r0; mul.f32 o21, o21, r0; st.shared.v2.f32 [%0+160], {o20,o21}; " +
        "mul.f32 o22, o22, r1; mul.f32 o23, o23, r1; st.shared.v2.f32 [%0+4384], {o22,o23}; " +
        "mul.f32 o24, o24, r0; mul.f32 o25, o25, r0; st.shared.v2.f32 [%0+192], {o24,o25}; " +
        "mul.f32 o26, o26, r1; mul.f32 o27, o27, r1; st.shared.v2.f32 [%0+4416], {o26,o27}; " +
        "mul.f32 o28, o28, r0; mul.f32 o29, o29, r0; st.shared.v2.f32 [%0+224], {o28,o29}; " +
        "mul.f32 o30, o30, r1; mul.f32 o31, o31, r1; st.shared.v2.f32 [%0+4448], {o30,o31}; " +
        "mul.f32 o32, o32, r0; mul.f32 o33, o33, r0; st.shared.v2.f32 [%0+256], {o32,o33}; " +
        "mul.f32 o34, o34, r1; mul.f32 o35, o35, r1; st.shared.v2.f32 [%0+4480], {o34,o35}; " +
        "mul.f32 o36, o36, r0; mul.f32 o37, o37, r0; st.shared.v2.f32 [%0+288], {o36,o37}; " +
        "mul.f32 o38, o38, r1; mul.f32 o39, o39, r1; st.shared.v2.f32 [%0+4512], {o38,o39}; " +
        "mul.f32 o40, o40, r0; mul.f32 o41, o41, r0; st.shared.v2.f32 [%0+320], {o40,o41}; " +
        "mul.f32 o42, o42, r1; mul.f32 o43, o43, r1; st.shared.v2.f32 [%0+4544], {o42,o43}; " +
        "mul.f32 o44, o44, r0; mul.f32 o45, o45, r0; st.shared.v2.f32 [%0+352], {o44,o45}; " +
        "mul.f32 o46, o46, r1; mul.f32 o47, o47, r1; st.shared.v2.f32 [%0+4576], {o46,o47}; " +
        "mul.f32 o48, o48, r0; mul.f32 o49, o49, r0; st.shared.v2.f32 [%0+384], {o48,o49}; " +
        "mul.f32 o50, o50, r1; mul.f32 o51, o51, r1; st.shared.v2.f32 [%0+4608], {o50,o51}; " +
        "mul.f32 o52, o52, r0; mul.f32 o53, o53, r0; st.shared.v2.f32 [%0+416], {o52,o53}; " +
        "mul.f32 o54, o54, r1; mul.f32 o55, o55, r1; st.shared.v2.f32 [%0+4640], {o54,o55}; " +
        "mul.f32 o56, o56, r0; mul.f32 o57, o57, r0; st.shared.v2.f32 [%0+448], {o56,o57}; " +
        "mul.f32 o58, o58, r1; mul.f32 o59, o59, r1; st.shared.v2.f32 [%0+4672], {o58,o59}; " +
        "mul.f32 o60, o60, r0; mul.f32 o61, o61, r0; st.shared.v2.f32 [%0+480], {o60,o61}; " +
        "mul.f32 o62, o62, r1; mul.f32 o63, o63, r1; st.shared.v2.f32 [%0+4704], {o62,o63}; " +
        "} ";
}
