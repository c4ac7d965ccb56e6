// The fused CUDA forward pass used for speed: q/k/v and gate/up as one GEMV each, residual adds fused into
// o_proj and down_proj, producers writing fp16 straight into the next GEMV's input layout, token selection
// on the device, and the whole decode step captured as one CUDA graph that reads the token and position
// from device memory. Numerically it is the same ops as CudaBackend (the backend-ops test covers them).
using ILGPU;
using ILGPU.Runtime;
using CodeLlamaLsp.Inference.Model;

namespace CodeLlamaLsp.Inference.Engine.Cuda;

/// <summary>A Llama model resident on one GPU with its KV cache, decoding one sequence.</summary>
public sealed partial class CudaDecoder : IDisposable
{
    private readonly CudaBackend backend;
    private readonly LlamaConfig c;
    private readonly Layer[] layers;
    private readonly CudaEmbedding embedding;
    private readonly CudaBuffer finalNorm;
    private readonly CudaLinear lmHead;
    private readonly CudaKvCache cache; // the storage of sequence
    private readonly KvCache sequence; // the cached tokens; its length is the position
    private readonly RopeTable rope;
    private readonly int maxRows;
    private readonly int qkvWidth;
    private readonly int decodeSplits;
    private readonly MemoryBuffer1D<float, Stride1D.Dense> x; // [maxRows, hidden] residual stream
    private readonly MemoryBuffer1D<uint, Stride1D.Dense> xh; // [maxRows, max(in)] GEMV input: fp32, or fp16 in the first half
    private readonly MemoryBuffer1D<float, Stride1D.Dense> qkv; // [maxRows, q + k + v]
    private readonly MemoryBuffer1D<float, Stride1D.Dense> gateUp; // [maxRows, 2 * intermediate]
    private readonly MemoryBuffer1D<float, Stride1D.Dense> logits; // [maxRows, vocab]
    private readonly MemoryBuffer1D<int, Stride1D.Dense> ids; // [maxRows]; ids[0] doubles as the sampled token
    private readonly MemoryBuffer1D<float, Stride1D.Dense> sampleScratch;
    private readonly MemoryBuffer1D<float, Stride1D.Dense> candidates;
    private readonly MemoryBuffer1D<float, Stride1D.Dense> selectSettings; // SamplingKernels.Settings*
    private readonly MemoryBuffer1D<int, Stride1D.Dense> selectState; // SamplingKernels.State*
    private readonly MemoryBuffer1D<int, Stride1D.Dense> history;
    private readonly MemoryBuffer1D<float, Stride1D.Dense> normed; // [maxRows, hidden] for unfused act-order layers
    private CudaGraph? graph;

    public CudaDecoder(CudaBackend backend, LlamaWeights weights, int contextLength, int maxBatchRows = 256, Action<double>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(weights);
        this.backend = backend;
        c = weights.Config;
        maxRows = maxBatchRows;
        var mem = backend.Memory;
        int hd = c.HeadDim;
        int kvDim = c.NumKvHeads * hd;
        qkvWidth = c.HiddenSize + (2 * kvDim);

        // KV cache first: it is sized by the configured context, and running out here is the clearest message.
        cache = (CudaKvCache)backend.AllocateKvCache(c.NumLayers, c.NumKvHeads, hd, contextLength);
        sequence = new KvCache(cache);

        // The weights go through one pipeline: this thread allocates and describes, workers stage and copy (StagedUpload).
        // Progress counts layers handed over, which run at most the staging slots' bytes ahead of the copies.
        using (var upload = new StagedUpload(backend.Device, mem))
        {
            layers = new Layer[c.NumLayers];
            for (int i = 0; i < c.NumLayers; i++)
            {
                var l = weights.Layers[i];
                layers[i] = new Layer(
                    CudaBuffer.Upload(upload, l.InputNorm),
                    Fused(upload, l.QProj.Name.Replace("q_proj", "qkv_proj", StringComparison.Ordinal), [l.QProj, l.KProj, l.VProj]),
                    CudaLinear.Upload(upload, l.OProj),
                    CudaBuffer.Upload(upload, l.PostAttentionNorm),
                    Fused(upload, l.GateProj.Name.Replace("gate_proj", "gate_up_proj", StringComparison.Ordinal), [l.GateProj, l.UpProj]),
                    CudaLinear.Upload(upload, l.DownProj));
                progress?.Invoke((i + 1.0) / (c.NumLayers + 1));
            }

            embedding = CudaEmbedding.Upload(upload, weights.Embedding);
            finalNorm = CudaBuffer.Upload(upload, weights.FinalNorm);
            lmHead = CudaLinear.UploadDense(upload, weights.LmHead.Name, weights.LmHead, c.HiddenSize, c.VocabSize);
            LoadTimes = upload.Finish();
        }

        rope = RopeTable.Create(mem, c.RopeTheta, hd, contextLength);
        decodeSplits = backend.DecodeSplits(c.NumKvHeads, c.NumHeads, contextLength);

        int maxIn = Math.Max(c.HiddenSize, c.IntermediateSize);
        x = mem.Allocate<float>((long)maxRows * c.HiddenSize, "activations");
        normed = mem.Allocate<float>((long)maxRows * c.HiddenSize, "activations");
        xh = mem.Allocate<uint>(((long)maxRows * maxIn) + 4, "activations");
        qkv = mem.Allocate<float>((long)maxRows * qkvWidth, "activations");
        gateUp = mem.Allocate<float>((long)maxRows * 2 * c.IntermediateSize, "activations");
        logits = mem.Allocate<float>((long)maxRows * c.VocabSize, "logits");
        ids = mem.Allocate<int>(maxRows, "token ids");
        sampleScratch = mem.Allocate<float>(c.VocabSize, "sampling scratch");
        candidates = mem.Allocate<float>(2 * SamplingKernels.MaxCandidates, "sampling scratch");
        selectSettings = mem.Allocate<float>(SamplingKernels.SettingsLength, "sampling settings");
        selectState = mem.Allocate<int>(SamplingKernels.StateLength, "sampling settings");

        // Prompt plus answer, and the one id chosen after the last position (never read back).
        history = mem.Allocate<int>(contextLength + 1, "token history");
        SetSelection(new DeviceSelection(0f, 0, 1f, 1f), []);
        rowSettings = mem.Allocate<float>((long)MaxVerificationRows * SamplingKernels.SettingsLength, "sampling settings");

        // Attention partials for a prefill chunk (one split) and for the widest verification pass (the decode step's splits).
        backend.ReserveAttention(Math.Max(maxRows, (long)MaxVerificationRows * decodeSplits), c.NumHeads, hd);
        progress?.Invoke(1.0);
    }

    public LlamaConfig Config => c;

    /// <summary>Where the weight upload's time went (bench and the load log show it).</summary>
    public WeightUploadTimes LoadTimes { get; }

    /// <summary>Positions the KV cache holds.</summary>
    public int ContextLength => cache.Capacity;

    /// <summary>Tokens in the KV cache.</summary>
    public int Position => sequence.Length;

    /// <summary>The cached tokens, which the session's prefix cache rewinds (<see cref="KvCache.RewindToSharedPrefix"/>).</summary>
    internal KvCache Sequence => sequence;

    /// <summary>Device bytes read per decoded token by the linear layers (weights, scales, zeros) and lm_head.</summary>
    public long WeightBytesPerToken => lmHead.SizeInBytes + layers.Sum(l => l.Bytes);

    /// <summary>KV-cache bytes read per decoded token at context length <paramref name="tokens"/>.</summary>
    public long KvBytesPerToken(int tokens) => (long)c.NumLayers * c.NumKvHeads * c.HeadDim * 2 * 2 * tokens;

    /// <summary>Batches of at least this many rows (prefill chunks) run the GPTQ layers as a tiled tensor-core GEMM.</summary>
    public static int GemmMinRows => CudaLinear.GemmMinRows;

    /// <summary>Kernel launches in one captured decode step.</summary>
    public long LaunchesPerDecodeStep { get; private set; }

    /// <summary>Forgets the cached sequence.</summary>
    public void Reset() => sequence.Truncate(0);

    /// <summary>
    /// Benchmarks only: the linear layers of one forward pass over <paramref name="rows"/> rows (every GEMV, or GEMM
    /// from <see cref="CudaLinear.GemmMinRows"/> rows; lm_head of one row included) captured as one graph, replayed
    /// <paramref name="repeats"/> times; returns seconds per pass. Shows what the linear layers alone cost.
    /// </summary>
    public double TimeLinearsOnly(int repeats, int rows = 1)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(rows, maxRows);
        var k = backend.Device.Kernels;
        void Launches()
        {
            foreach (var l in layers)
            {
                foreach (var q in l.Qkv)
                {
                    q.Run(k, xh.View, qkv.View, rows, qkvWidth, accumulate: false);
                }

                l.O.Run(k, xh.View, x.View, rows, c.HiddenSize, accumulate: false);
                foreach (var g in l.GateUp)
                {
                    g.Run(k, xh.View, gateUp.View, rows, 2 * c.IntermediateSize, accumulate: false);
                }

                l.Down.Run(k, xh.View, x.View, rows, c.HiddenSize, accumulate: false);
            }

            lmHead.Run(k, xh.View, logits.View, 1, c.VocabSize, accumulate: false);
        }

        backend.Device.Synchronize();
        if (!backend.Device.IsCuda)
        {
            var sw0 = System.Diagnostics.Stopwatch.StartNew();
            Launches();
            backend.Device.Synchronize();
            return sw0.Elapsed.TotalSeconds;
        }

        using var g = CudaGraph.Capture(backend.Device.StreamHandle, Launches, 0);
        g.Launch(backend.Device.StreamHandle);
        backend.Device.Synchronize();
        var sw = System.Diagnostics.Stopwatch.StartNew();
        for (int i = 0; i < repeats; i++)
        {
            g.Launch(backend.Device.StreamHandle);
        }

        backend.Device.Synchronize();
        return sw.Elapsed.TotalSeconds / repeats;
    }

    /// <summary>
    /// Runs <paramref name="tokens"/> at the current position and returns the logits of the last token, or of
    /// every token when <paramref name="allRows"/> ([T, vocab]).
    /// </summary>
    public float[] Prefill(IReadOnlyList<int> tokens, bool allRows = false)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        if (Position + tokens.Count > cache.Capacity)
        {
            throw new ArgumentException($"{Position} cached + {tokens.Count} new tokens exceed the context of {cache.Capacity}.", nameof(tokens));
        }

        var result = new float[(allRows ? tokens.Count : 1) * c.VocabSize];
        for (int done = 0; done < tokens.Count; done += maxRows)
        {
            int rows = Math.Min(maxRows, tokens.Count - done);
            var chunk = tokens.Skip(done).Take(rows).ToArray();
            CheckIds(chunk);
            ids.View.SubView(0, rows).CopyFromCPU(backend.Device.Stream, chunk);
            tokenOnDevice = -1;
            backend.SetStart(Position);
            Forward(rows, logitsForAllRows: allRows, splits: 1);
            sequence.Append(chunk);
            if (allRows)
            {
                var part = new float[rows * c.VocabSize];
                logits.View.SubView(0, part.Length).CopyToCPU(backend.Device.Stream, part);
                part.CopyTo(result, done * c.VocabSize);
            }
            else if (done + rows == tokens.Count)
            {
                logits.View.SubView(0, c.VocabSize).CopyToCPU(backend.Device.Stream, result);
            }
        }

        backend.Device.Synchronize();
        return result;
    }

    /// <summary>Runs one token and returns its logits (no graph; for tests and the first step).</summary>
    public float[] Decode(int token) => Prefill([token]);

    /// <summary>
    /// Greedy decoding of <paramref name="count"/> tokens after <paramref name="first"/> (the token chosen from the
    /// prefill logits), each step one graph launch with argmax on the device; returns the generated ids.
    /// <paramref name="useGraph"/> false launches the kernels one by one (for comparison).
    /// </summary>
    public int[] GreedyDecode(int first, int count, bool useGraph = true)
    {
        SetSelection(new DeviceSelection(0f, 0, 1f, 1f), []);
        tokenOnDevice = -1;
        var result = new int[count];
        var host = new int[1];
        CheckIds([first]);
        ids.View.SubView(0, 1).CopyFromCPU(backend.Device.Stream, new[] { first });
        backend.SetStart(Position);
        int token = first;
        for (int i = 0; i < count; i++)
        {
            if (Position + 1 > cache.Capacity)
            {
                throw new InvalidOperationException($"The context of {cache.Capacity} tokens is full.");
            }

            if (useGraph && backend.Device.IsCuda)
            {
                graph ??= CaptureDecodeStep();
                graph.Launch(backend.Device.StreamHandle);
            }
            else
            {
                DecodeStepLaunches();
            }

            ids.View.SubView(0, 1).CopyToCPU(backend.Device.Stream, host);
            result[i] = host[0];
            sequence.Append([token]);
            token = host[0];
        }

        return result;
    }

    private CudaGraph CaptureDecodeStep()
    {
        // Every buffer the step touches was sized in the constructor: nothing may allocate or synchronize while capturing.
        var kernels = backend.Device.Kernels;
        backend.Device.Synchronize();
        long before = kernels.Launches;
        var g = CudaGraph.Capture(backend.Device.StreamHandle, DecodeStepLaunches, 0);
        LaunchesPerDecodeStep = kernels.Launches - before;
        return g;
    }

    /// <summary>One decode step: token ids[0] at device position start, argmax into ids[0], position + 1.</summary>
    private void DecodeStepLaunches()
    {
        Forward(1, logitsForAllRows: false, splits: decodeSplits);
        LaunchSelection();
        backend.Device.Kernels.AdvancePosition(backend.StartView, 1);
    }

    /// <summary>Token selection over logits row 0 into ids[0], with the settings held on the device.</summary>
    private void LaunchSelection() => backend.Device.Kernels.Sample(new SamplingArgs
    {
        Logits = logits.View,
        Scratch = sampleScratch.View,
        History = history.View,
        Candidates = candidates.View,
        Settings = selectSettings.View,
        State = selectState.View,
        Chosen = ids.View,
        Vocab = c.VocabSize,
    });

    /// <summary>The forward pass over ids[0..rows) at device position start; logits of the last row (or all rows).</summary>
    private void Forward(int rows, bool logitsForAllRows, int splits)
    {
        var k = backend.Device.Kernels;
        int hidden = c.HiddenSize;
        int hd = c.HeadDim;
        var xv = x.View.AsContiguous();
        var xhalf = xh.View.AsContiguous().Cast<ushort>();
        var qkvv = qkv.View.AsContiguous();

        k.Embed(ids.View, embedding.Table.View, xv, rows, hidden);
        for (int i = 0; i < layers.Length; i++)
        {
            var l = layers[i];

            // Attention block: x += o_proj(attention(rope(qkv(norm(x))))).
            RunShared(l.Qkv, xv, l.InputNorm, qkvv, rows, qkvWidth);
            k.RotateAndStore(qkvv, rows, qkvWidth, c.NumHeads, c.NumKvHeads, hd, cache.Capacity, backend.StartView, rope.Cos.View, rope.Sin.View, cache.LayerK(i), cache.LayerV(i));
            backend.RunAttention(qkvv, qkvWidth, cache, i, c.NumHeads, rows, splits, default, xhalf, halfOutput: true, l.O.InputLayout);
            l.O.Run(k, xh.View, xv, rows, hidden, accumulate: true);

            // Feed-forward block: x += down(silu(gate(n)) * up(n)), n = norm(x).
            RunShared(l.GateUp, xv, l.PostNorm, gateUp.View, rows, 2 * c.IntermediateSize);
            k.SiluMultiplyToHalf(gateUp.View, xhalf, rows, c.IntermediateSize, l.Down.InputLayout);
            l.Down.Run(k, xh.View, xv, rows, hidden, accumulate: true);
        }

        int first = logitsForAllRows ? 0 : rows - 1;
        int outRows = rows - first;
        k.RmsNormToHalf(xv.SubView((long)first * hidden), finalNorm.Buffer.View, xhalf, outRows, hidden, c.RmsNormEps, lmHead.InputLayout);
        lmHead.Run(k, xh.View, logits.View, outRows, c.VocabSize, accumulate: false);
    }

    /// <summary>One GEMV over the concatenated columns when the layers can share an input layout, else one per layer.</summary>
    private static CudaLinear[] Fused(StagedUpload upload, string name, LinearWeights[] parts)
    {
        if (parts.All(p => p is GptqLinearWeights)
            && GptqHostMatrix.TryConcatenate(name, [.. parts.Select(p => GptqHostMatrix.From((GptqLinearWeights)p))]) is { } fused)
        {
            return [CudaLinear.Upload(upload, fused)];
        }

        return [.. parts.Select(p => CudaLinear.Upload(upload, p))];
    }

    /// <summary>
    /// Runs linears that share one input into consecutive column ranges of <paramref name="output"/> (stride
    /// <paramref name="width"/>): a fused one reads the fp16 input straight from the norm; separate ones (act-order
    /// layers with different permutations) each get the normed fp32 rows converted into their own layout.
    /// </summary>
    private void RunShared(CudaLinear[] parts, ArrayView<float> input, CudaBuffer norm, ArrayView<float> output, int rows, int width)
    {
        var k = backend.Device.Kernels;
        var xhalf = xh.View.AsContiguous().Cast<ushort>();
        if (parts.Length == 1)
        {
            k.RmsNormToHalf(input, norm.Buffer.View, xhalf, rows, c.HiddenSize, c.RmsNormEps, parts[0].InputLayout);
            parts[0].Run(k, xh.View, output, rows, width, accumulate: false);
            return;
        }

        k.RmsNorm(input, norm.Buffer.View, normed.View, rows, c.HiddenSize, c.RmsNormEps);
        int offset = 0;
        foreach (var p in parts)
        {
            k.ToHalfLayout(normed.View, xhalf, rows, c.HiddenSize, p.InputLayout);
            p.Run(k, xh.View, output.SubView(offset), rows, width, accumulate: false);
            offset += p.OutFeatures;
        }
    }

    private void CheckIds(IEnumerable<int> tokens)
    {
        foreach (var t in tokens)
        {
            if ((uint)t >= (uint)c.VocabSize)
            {
                throw new ArgumentOutOfRangeException(nameof(tokens), $"Token id {t} is outside the vocabulary (0..{c.VocabSize - 1}).");
            }
        }
    }

    public void Dispose()
    {
        graph?.Dispose();
        DisposeVerification();
        foreach (var l in layers)
        {
            l.Dispose();
        }

        embedding.Dispose();
        finalNorm.Dispose();
        lmHead.Dispose();
        sequence.Dispose();
        rope.Dispose();
        x.Dispose();
        normed.Dispose();
        xh.Dispose();
        qkv.Dispose();
        gateUp.Dispose();
        logits.Dispose();
        ids.Dispose();
        sampleScratch.Dispose();
        candidates.Dispose();
        selectSettings.Dispose();
        selectState.Dispose();
        history.Dispose();
    }

    private sealed record Layer(CudaBuffer InputNorm, CudaLinear[] Qkv, CudaLinear O, CudaBuffer PostNorm, CudaLinear[] GateUp, CudaLinear Down) : IDisposable
    {
        public long Bytes => Qkv.Sum(q => q.SizeInBytes) + O.SizeInBytes + GateUp.Sum(g => g.SizeInBytes) + Down.SizeInBytes;

        public void Dispose()
        {
            InputNorm.Dispose();
            foreach (var q in Qkv)
            {
                q.Dispose();
            }

            O.Dispose();
            PostNorm.Dispose();
            foreach (var g in GateUp)
            {
                g.Dispose();
            }

            Down.Dispose();
        }
    }
}
