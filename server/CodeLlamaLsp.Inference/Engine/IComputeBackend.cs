// The op interface of the CPU engine: LlamaForward (the forward pass, written once like llama2.c's forward())
// calls these ops and CpuBackend implements them. The CUDA engine does not go through it: its forward pass is
// fused and graph-captured (Cuda/CudaDecodingSession.Forward.cs), and BackendOpsTests checks each kernel that pass
// launches against the op here computing the same math, with the CPU backend as the oracle.
using CodeLlamaLsp.Inference.Model;

namespace CodeLlamaLsp.Inference.Engine;

/// <summary>
/// A compute device that holds prepared weights, activation buffers and the KV cache, and runs the ops of
/// a Llama forward pass on them.
/// </summary>
/// <remarks>
/// <para>
/// Conventions shared by every op:
/// - Activations are logically fp32 row-major matrices <c>[rows, width]</c> in a <see cref="DeviceBuffer"/>;
///   a backend may store them in another precision (for example fp16) as long as
///   <see cref="Upload"/>/<see cref="Download"/> speak fp32. Buffers are allocated once for the largest batch and
///   ops receive the number of rows actually used, so a buffer is usually longer than the data in it.
/// - A batch of <c>rows</c> tokens is always one run of consecutive positions of one sequence:
///   row t is at position <c>startPosition + t</c> (prefill: rows = prompt chunk; decode: rows = 1).
/// - Ops run in call order. They may be asynchronous on the device; <see cref="Download"/> waits for all
///   earlier ops to finish. A backend is used by one thread at a time (the engine serialises generations).
/// - Handles (<see cref="DeviceBuffer"/>, <see cref="PreparedLinear"/>, <see cref="PreparedEmbedding"/>,
///   <see cref="KvCacheStorage"/>) are created by one backend and passed back only to it; a backend casts them
///   to its own subclasses and throws <see cref="ArgumentException"/> for a foreign handle.
/// - Bad shapes or sizes throw <see cref="ArgumentException"/> naming what was expected.
/// </para>
/// <para>
/// One decoder layer, as LlamaForward calls it (x: [T, hidden]):
/// <code>
/// RmsNorm(x, inputNorm, xn)                 Linear(q_proj, xn, q); Linear(k_proj, xn, k); Linear(v_proj, xn, v)
/// Rope(q, heads); Rope(k, kvHeads)          StoreKv(cache, layer, k, v, pos); Attention(q, cache, layer, att, pos)
/// Linear(o_proj, att, tmp); Add(x, tmp)     RmsNorm(x, postNorm, xn)
/// Linear(gate, xn, g); Linear(up, xn, u)    SiluMultiply(g, u); Linear(down, g, tmp); Add(x, tmp)
/// </code>
/// then RmsNorm(final), Linear(lm_head) into a logits buffer [T, vocab] (or only the last row, after Copy)
/// and Download.
/// </para>
/// </remarks>
public interface IComputeBackend : IDisposable
{
    /// <summary>Human-readable description for logs, for example "cpu (16 threads, AVX2)".</summary>
    string Name { get; }

    // ---------------------------------------------------------------- buffers

    /// <summary>Allocates an activation buffer of <paramref name="length"/> fp32 elements, zero-filled.</summary>
    DeviceBuffer Allocate(int length);

    /// <summary>Copies fp32 values from the host into <paramref name="destination"/> starting at element <paramref name="destinationOffset"/>.</summary>
    void Upload(ReadOnlySpan<float> source, DeviceBuffer destination, int destinationOffset);

    /// <summary>
    /// Waits for earlier ops, then copies <c>destination.Length</c> elements starting at element
    /// <paramref name="sourceOffset"/> of <paramref name="source"/> to the host. This is how logits are read.
    /// </summary>
    void Download(DeviceBuffer source, int sourceOffset, Span<float> destination);

    /// <summary>Copies <paramref name="count"/> elements between (or within non-overlapping parts of) device buffers.</summary>
    void Copy(DeviceBuffer source, int sourceOffset, DeviceBuffer destination, int destinationOffset, int count);

    // ---------------------------------------------------------------- load time

    /// <summary>
    /// Converts and uploads one linear layer once, at load time, into whatever layout the backend's kernels
    /// read fastest (for example GPTQ rows sorted by group for act-order checkpoints, dense weights transposed
    /// or converted). Accepts <see cref="GptqLinearWeights"/> (4 or 8 bits, any group size, g_idx act-order or
    /// none, v1 or v2 zeros, optional fp16 bias) and <see cref="DenseLinearWeights"/> (F16, BF16 or F32 [out, in]).
    /// The source tensors may be memory-mapped; the handle must not need them after this returns unless the
    /// backend documents that it keeps reading them (the CPU backend does for large packed models).
    /// </summary>
    PreparedLinear PrepareLinear(LinearWeights weights);

    /// <summary>Prepares the token embedding table [vocab, hidden] (F16, BF16 or F32).</summary>
    PreparedEmbedding PrepareEmbedding(TensorData table);

    /// <summary>Uploads a 1-D weight vector (an RMSNorm weight, F16/BF16/F32) as a buffer.</summary>
    DeviceBuffer PrepareVector(TensorData vector);

    /// <summary>
    /// Allocates the KV cache for <paramref name="layers"/> layers of <paramref name="kvHeads"/> heads of width
    /// <paramref name="headDim"/> and <paramref name="capacity"/> positions (the configured context length).
    /// Storage precision is the backend's choice (fp32 on the CPU).
    /// </summary>
    KvCacheStorage AllocateKvCache(int layers, int kvHeads, int headDim, int capacity);

    // ---------------------------------------------------------------- ops (T = rows)

    /// <summary>output[t, :] = table[tokenIds[t], :] for t &lt; tokenIds.Length. Throws for an id outside the vocabulary.</summary>
    void Embed(PreparedEmbedding table, ReadOnlySpan<int> tokenIds, DeviceBuffer output);

    /// <summary>
    /// output[t, :] = input[t, :] * rsqrt(mean(input[t, :]^2) + eps) * weight, in fp32, for t &lt; rows;
    /// <paramref name="width"/> = weight length. <paramref name="output"/> may be <paramref name="input"/>.
    /// </summary>
    void RmsNorm(DeviceBuffer input, DeviceBuffer weight, DeviceBuffer output, int rows, int width, float eps);

    /// <summary>
    /// In-place rotary embedding, HF rotate_half convention, on x [rows, heads * headDim]: for row t at position
    /// p = startPosition + t, head h and i &lt; headDim/2, with inv_freq[i] = theta^(-2i/headDim) (fp32) and
    /// angle = p * inv_freq[i] (fp32): (a, b) = (x[i], x[i + headDim/2]) becomes (a cos - b sin, b cos + a sin).
    /// </summary>
    void Rope(DeviceBuffer x, int rows, int heads, int headDim, int startPosition, float theta);

    /// <summary>
    /// output[t, :] = input[t, :] W (+ bias) for t &lt; rows; input [rows, InFeatures], output [rows, OutFeatures].
    /// GPTQ: W[k, n] = scales[g_idx[k], n] * (q[k, n] - zero[g_idx[k], n]) (zero = stored + 1 for v1);
    /// dense: W = weight^T (weight is [out, in]). Used for the projections and for lm_head (logits).
    /// </summary>
    void Linear(PreparedLinear weights, DeviceBuffer input, DeviceBuffer output, int rows);

    /// <summary>
    /// Writes k and v [rows, kvHeads * headDim] (k already rotated) into <paramref name="cache"/> at positions
    /// startPosition .. startPosition + rows - 1 of <paramref name="layer"/>, overwriting what was there
    /// (the prefix cache rewinds by writing over old positions).
    /// </summary>
    void StoreKv(KvCacheStorage cache, int layer, DeviceBuffer k, DeviceBuffer v, int startPosition, int rows);

    /// <summary>
    /// Causal grouped-query attention: for row t (position p = startPosition + t) and query head h, with KV head
    /// kh = h / (heads / kvHeads): output[t, h] = softmax_j(q[t, h] . K[kh, j] / sqrt(headDim)) V[kh, j] over cached
    /// positions j = 0 .. p, softmax in fp32. q and output are [rows, heads * headDim]. Covers decode (rows = 1)
    /// and prefill (rows &gt; 1, after <see cref="StoreKv"/> wrote this chunk's keys and values).
    /// </summary>
    void Attention(DeviceBuffer q, KvCacheStorage cache, int layer, DeviceBuffer output, int heads, int startPosition, int rows);

    /// <summary>gate[i] = silu(gate[i]) * up[i] for i &lt; count, silu(x) = x / (1 + exp(-x)).</summary>
    void SiluMultiply(DeviceBuffer gate, DeviceBuffer up, int count);

    /// <summary>accumulator[i] += addend[i] for i &lt; count (the residual connection).</summary>
    void Add(DeviceBuffer accumulator, DeviceBuffer addend, int count);
}

/// <summary>Which device runs the model.</summary>
public enum DeviceKind
{
    /// <summary>CUDA when a usable device exists, else the CPU with a warning.</summary>
    Auto,

    /// <summary>Managed SIMD on all cores, fp32.</summary>
    Cpu,

    /// <summary>An NVIDIA GPU through ILGPU; an error when none is present.</summary>
    Cuda,
}

/// <summary>An activation (or small weight) buffer owned by one backend; <see cref="Length"/> is in elements.</summary>
public abstract class DeviceBuffer : IDisposable
{
    protected DeviceBuffer(int length) => Length = length;

    public int Length { get; }

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
    }
}

/// <summary>A linear layer converted for one backend by <see cref="IComputeBackend.PrepareLinear"/>.</summary>
public abstract class PreparedLinear : IDisposable
{
    protected PreparedLinear(string name, int inFeatures, int outFeatures)
    {
        Name = name;
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
    }

    /// <summary>The checkpoint's tensor prefix, for error messages (for example "model.layers.0.self_attn.q_proj").</summary>
    public string Name { get; }

    public int InFeatures { get; }

    public int OutFeatures { get; }

    /// <summary>Bytes the backend holds for this layer (for load logs and memory budgets).</summary>
    public abstract long SizeInBytes { get; }

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
    }
}

/// <summary>The token embedding table as prepared by one backend.</summary>
public abstract class PreparedEmbedding : IDisposable
{
    protected PreparedEmbedding(int vocabSize, int hiddenSize)
    {
        VocabSize = vocabSize;
        HiddenSize = hiddenSize;
    }

    public int VocabSize { get; }

    public int HiddenSize { get; }

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
    }
}

/// <summary>Keys and values of every layer for up to <see cref="Capacity"/> positions, owned by one backend.</summary>
public abstract class KvCacheStorage : IDisposable
{
    protected KvCacheStorage(int layers, int kvHeads, int headDim, int capacity)
    {
        Layers = layers;
        KvHeads = kvHeads;
        HeadDim = headDim;
        Capacity = capacity;
    }

    public int Layers { get; }

    public int KvHeads { get; }

    public int HeadDim { get; }

    /// <summary>Positions the cache can hold (the context length).</summary>
    public int Capacity { get; }

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
    }
}
