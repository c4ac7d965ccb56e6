// The CUDA session's forward pass and token selection, fused for speed: q/k/v and gate/up as one GEMV each, residual
// adds fused into o_proj and down_proj, producers writing fp16 straight into the next GEMV's input layout, the next id
// chosen on the device, and the whole decode step captured as one CUDA graph that reads the token and position from
// device memory. Every buffer a pass touches is the session's, sized in its constructor, so capture never allocates
// and two sessions on one model never share a captured address.
using ILGPU;
using ILGPU.Runtime;
using CodeLlamaLsp.Inference.Generation;
using CodeLlamaLsp.Inference.Model;

namespace CodeLlamaLsp.Inference.Engine.Cuda;

public sealed partial class CudaDecodingSession
{
    private readonly CudaBackend backend;
    private readonly LlamaConfig c;
    private readonly CudaKvCache kv; // [layers, kv_heads, capacity, head_dim] x 2, fp16
    private readonly RopeTable rope; // [capacity, head_dim / 2] cos and sin
    private readonly MemoryBuffer1D<int, Stride1D.Dense> start; // [1]: the position of row 0, read by RoPE, the KV store and attention
    private readonly CudaAttention attention;
    private readonly int maxRows;
    private readonly int qkvWidth;
    private readonly int decodeSplits;
    private readonly MemoryBuffer1D<float, Stride1D.Dense> x; // [maxRows, hidden] residual stream
    private readonly MemoryBuffer1D<uint, Stride1D.Dense> linearInput; // [maxRows, max(in)] the next linear layer's fp16 input, in its layout
    private readonly MemoryBuffer1D<float, Stride1D.Dense> qkv; // [maxRows, q + k + v]
    private readonly MemoryBuffer1D<float, Stride1D.Dense> gateUp; // [maxRows, 2 * intermediate]
    private readonly MemoryBuffer1D<float, Stride1D.Dense> logits; // [maxRows, vocab]
    private readonly MemoryBuffer1D<int, Stride1D.Dense> ids; // [maxRows]; ids[0] doubles as the sampled token
    private readonly MemoryBuffer1D<float, Stride1D.Dense> sampleScratch; // [vocab]
    private readonly MemoryBuffer1D<float, Stride1D.Dense> candidates; // [2 * MaxCandidates]
    private readonly MemoryBuffer1D<float, Stride1D.Dense> selectSettings; // SamplingKernels.Settings*
    private readonly MemoryBuffer1D<int, Stride1D.Dense> selectState; // SamplingKernels.State*
    private readonly MemoryBuffer1D<int, Stride1D.Dense> history; // [capacity + 1]: what the repetition penalty sees
    private readonly MemoryBuffer1D<uint, Stride1D.Dense> splitInputs; // [2][maxRows, hidden] fp16: the 2nd and 3rd inputs of unfused act-order layers
    private CudaGraph? graph;
    private DeviceSelection selection = DeviceSelection.Greedy;
    private bool selectionSamples;

    /// <summary>The id ids[0] holds (the last one chosen on the device), or -1 when unknown.</summary>
    private int tokenOnDevice = -1;

    /// <summary>Kernel launches in one captured decode step (0 until the first step on a GPU).</summary>
    public long LaunchesPerDecodeStep { get; private set; }

    /// <summary>Edges of the decode step's graph along which a kernel launches before its predecessor ends (sm_90+).</summary>
    public int ProgrammaticEdgesPerDecodeStep { get; private set; }

    /// <summary>
    /// Runs up to maxRows tokens at the current position and appends them to the cache; the last
    /// row's logits (or every row's) stay on the device for <see cref="SelectNext"/> or <see cref="LastLogits"/>.
    /// </summary>
    private void Append(int[] tokens, bool logitsForAllRows)
    {
        if (tokens.Length == 0 || tokens.Length > maxRows)
        {
            throw new ArgumentException($"A forward pass takes 1..{maxRows} tokens; got {tokens.Length}.", nameof(tokens));
        }

        if (Position + tokens.Length > kv.Capacity)
        {
            throw new ArgumentException($"{Position} cached + {tokens.Length} new tokens exceed the context of {kv.Capacity}.", nameof(tokens));
        }

        ids.View.SubView(0, tokens.Length).CopyFromCPU(backend.Device.Stream, tokens);
        tokenOnDevice = -1;
        SetStart(Position);

        // A chunk of fewer rows than the prefill attention takes (a keystroke's changed tail) splits its keys as a decode
        // step does: with one split a single block per KV head walked the whole context (about 24 us a layer at 1,500 tokens).
        Forward(tokens.Length, logitsForAllRows, splits: tokens.Length < PrefillAttentionKernels.MinRows ? decodeSplits : 1);
        cache.Append(tokens);
    }

    /// <summary>Downloads the logits [vocab] of the last token run (host sampling, Prefill).</summary>
    private float[] LastLogits()
    {
        var result = new float[c.VocabSize];
        logits.View.SubView(0, c.VocabSize).CopyToCPU(backend.Device.Stream, result);
        backend.Device.Synchronize();
        return result;
    }

    /// <summary>
    /// Sets the selection used from now on (by <see cref="SelectNext"/>, <see cref="Step"/> and the graph, which reads
    /// the settings from device memory). <paramref name="prompt"/> is what the repetition penalty sees; chosen ids are
    /// appended to it on the device while the penalty is on.
    /// </summary>
    private void SetSelection(DeviceSelection selection, IReadOnlyList<int> prompt)
    {
        var stream = backend.Device.Stream;
        bool penalised = selection.RepetitionPenalty != 1f;
        int n = penalised ? Math.Min(prompt.Count, (int)history.Length) : 0;
        if (n > 0)
        {
            history.View.SubView(0, n).CopyFromCPU(stream, prompt.Take(n).ToArray());
        }

        selectSettings.View.CopyFromCPU(stream, new[] { selection.Temperature, selection.TopP, selection.RepetitionPenalty, 0f });
        selectState.View.CopyFromCPU(stream, new[] { selection.TopK, n, penalised ? 1 : 0 });
        selectionSamples = selection.Samples;
        this.selection = selection;
    }

    /// <summary>Chooses the next id from the last appended row's logits on the device; <paramref name="draw"/> is the uniform number when sampling.</summary>
    private int SelectNext(float draw)
    {
        SetDraw(draw);
        LaunchSelection();
        return ReadChosen();
    }

    /// <summary>
    /// Appends <paramref name="token"/> at the current position and chooses the next id: one replay of the captured
    /// decode graph (forward, selection, position + 1) on a GPU, the same launches one by one elsewhere.
    /// </summary>
    private int Step(int token, float draw)
    {
        if (Position + 1 > kv.Capacity)
        {
            throw new InvalidOperationException($"The context of {kv.Capacity} tokens is full.");
        }

        if (token != tokenOnDevice)
        {
            CheckIds([token]);
            ids.View.SubView(0, 1).CopyFromCPU(backend.Device.Stream, new[] { token });
        }

        SetStart(Position);
        SetDraw(draw);
        if (backend.Device.IsCuda)
        {
            graph ??= CaptureDecodeStep();
            graph.Launch(backend.Device.StreamHandle);
        }
        else
        {
            DecodeStepLaunches();
        }

        cache.Append([token]);
        return ReadChosen();
    }

    private void SetStart(int position) => start.View.CopyFromCPU(backend.Device.Stream, new[] { position });

    private void SetDraw(float draw)
    {
        if (selectionSamples)
        {
            selectSettings.View.SubView(3, 1).CopyFromCPU(backend.Device.Stream, new[] { draw });
        }
    }

    private int ReadChosen()
    {
        var host = new int[1];
        ids.View.SubView(0, 1).CopyToCPU(backend.Device.Stream, host);
        tokenOnDevice = host[0];
        return host[0];
    }

    private CudaGraph CaptureDecodeStep()
    {
        // Every buffer the step touches was sized in the constructor: nothing may allocate or synchronize while capturing.
        var kernels = backend.Device.Kernels;
        backend.Device.Synchronize();
        long before = kernels.Launches;
        var g = CudaGraph.Capture(backend.Device.StreamHandle, DecodeStepLaunches, kernels.GridDependentFunctions);
        LaunchesPerDecodeStep = kernels.Launches - before;
        ProgrammaticEdgesPerDecodeStep = g.ProgrammaticEdges;
        return g;
    }

    /// <summary>One decode step: token ids[0] at device position start, the next id into ids[0], position + 1.</summary>
    private void DecodeStepLaunches()
    {
        Forward(1, logitsForAllRows: false, splits: decodeSplits);
        LaunchSelection();
        backend.Device.Kernels.AdvancePosition(start.View, 1);
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
        var residualRows = x.View.AsContiguous();
        var linearInputHalves = linearInput.View.AsContiguous().Cast<ushort>();
        var qkvRows = qkv.View.AsContiguous();

        k.Embed(ids.View, model.Embedding.Table.View, residualRows, rows, hidden);
        for (int i = 0; i < model.Layers.Length; i++)
        {
            var l = model.Layers[i];

            // Attention block: x += o_proj(attention(rope(qkv(norm(x))))).
            RunShared(l.Qkv, residualRows, l.InputNorm, qkvRows, rows, qkvWidth);
            k.RotateAndStore(qkvRows, rows, qkvWidth, c.NumHeads, c.NumKvHeads, hd, kv.Capacity, start.View, rope.Cos.View, rope.Sin.View, kv.LayerK(i), kv.LayerV(i));
            attention.Run(qkvRows, qkvWidth, kv, i, c.NumHeads, rows, splits, linearInputHalves, l.O.InputLayout);
            l.O.Run(k, linearInput.View, residualRows, rows, hidden, accumulate: true);

            // Feed-forward block: x += down(silu(gate(n)) * up(n)), n = norm(x).
            RunShared(l.GateUp, residualRows, l.PostNorm, gateUp.View, rows, 2 * c.IntermediateSize);
            k.SiluMultiplyToHalf(gateUp.View, linearInputHalves, rows, c.IntermediateSize, l.Down.InputLayout);
            l.Down.Run(k, linearInput.View, residualRows, rows, hidden, accumulate: true);
        }

        if (logitsForAllRows && rows > MaxVerificationRows)
        {
            throw new ArgumentOutOfRangeException(nameof(rows), $"The logits buffer holds {MaxVerificationRows} rows; got {rows}.");
        }

        int first = logitsForAllRows ? 0 : rows - 1;
        RowLogits(first, rows - first);
    }

    /// <summary>Final norm and lm_head of rows [first, first + rows) of the last forward pass into logits rows [0, rows).</summary>
    private void RowLogits(int first, int rows)
    {
        var k = backend.Device.Kernels;
        int hidden = c.HiddenSize;
        var linearInputHalves = linearInput.View.AsContiguous().Cast<ushort>();
        k.RmsNormToHalf(x.View.AsContiguous().SubView((long)first * hidden, (long)rows * hidden), model.FinalNorm.Buffer.View, linearInputHalves, rows, hidden, c.RmsNormEps, model.LmHead.InputLayout);
        model.LmHead.Run(k, linearInput.View, logits.View, rows, c.VocabSize, accumulate: false);
    }

    /// <summary>
    /// Runs linears that share one input into consecutive column ranges of <paramref name="output"/> (stride
    /// <paramref name="width"/>): one RMSNorm writes the fp16 input of each, a fused layer's into the linear input
    /// buffer, separate ones (act-order layers with different permutations, up to three) each in its own layout and
    /// buffer, so the norm runs once either way; separate parts of up to 16 rows then run as one small-batch launch.
    /// </summary>
    private void RunShared(CudaLinear[] parts, ArrayView<float> input, CudaBuffer norm, ArrayView<float> output, int rows, int width)
    {
        if (parts.Length > NormOutputs.MaxCount)
        {
            throw new NotSupportedException($"{parts.Length} unfused layers share one input; at most {NormOutputs.MaxCount} are supported.");
        }

        var k = backend.Device.Kernels;
        var inputs = new ArrayView<uint>[parts.Length];
        inputs[0] = linearInput.View;
        long splitLength = splitInputs.Length / 2;
        for (int p = 1; p < parts.Length; p++)
        {
            inputs[p] = splitInputs.View.SubView((p - 1) * splitLength, splitLength);
        }

        var outputs = NormOutputs.Of(inputs.Select(i => i.Cast<ushort>()).ToArray(), parts.Select(p => p.InputLayout).ToArray());
        k.RmsNormToHalf(input, norm.Buffer.View, outputs, rows, c.HiddenSize, c.RmsNormEps);

        // Separate parts of up to 16 rows share one small-batch launch (a launch's ramp and tail cost about as much as
        // a narrow layer's weights); otherwise each part runs alone.
        if (parts.Length > 1 && CudaLinear.TryRunSmallBatch(k, parts, inputs, output, rows, width, accumulate: false))
        {
            return;
        }

        int offset = 0;
        for (int p = 0; p < parts.Length; p++)
        {
            parts[p].Run(k, inputs[p], output.SubView(offset), rows, width, accumulate: false);
            offset += parts[p].OutFeatures;
        }
    }

    /// <summary>Ids that reach the device without a prompt check (a step's token, a draft) are checked here.</summary>
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
}

/// <summary>Token-selection settings the session keeps on the device (see <see cref="SamplingKernels"/>).</summary>
/// <param name="Temperature">0: greedy.</param>
/// <param name="TopK">1..<see cref="SamplingKernels.MaxCandidates"/> when sampling.</param>
internal readonly record struct DeviceSelection(float Temperature, int TopK, float TopP, float RepetitionPenalty)
{
    /// <summary>Whether the device kernel reproduces Sampler for these options (top_k 0 or above the cap does not).</summary>
    public static bool Supports(GenerationOptions options) =>
        options.Temperature <= 0f || (options.TopK > 0 && options.TopK <= SamplingKernels.MaxCandidates);

    public static DeviceSelection From(GenerationOptions options) =>
        new(options.Temperature, options.TopK, options.TopP, options.RepetitionPenalty);

    /// <summary>Plain argmax without penalty: what the host-sampling fallback leaves on the device.</summary>
    public static DeviceSelection Greedy => new(0f, 0, 1f, 1f);

    public bool Samples => Temperature > 0f;
}
