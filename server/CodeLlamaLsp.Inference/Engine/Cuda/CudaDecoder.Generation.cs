// The CudaDecoder members that generation (CudaDecodingSession) drives: append prompt chunks without
// downloading logits and choose each next token on the device, either from
// the last prefill row or as part of the captured decode-step graph, so only the chosen id comes back.
using ILGPU;
using ILGPU.Runtime;
using CodeLlamaLsp.Inference.Generation;

namespace CodeLlamaLsp.Inference.Engine.Cuda;

/// <summary>Token-selection settings the decoder keeps on the device (see <see cref="SamplingKernels"/>).</summary>
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

public sealed partial class CudaDecoder
{
    /// <summary>The id ids[0] holds (the last one chosen on the device), or -1 when unknown.</summary>
    private int tokenOnDevice = -1;

    private bool selectionSamples;

    /// <summary>The device the decoder runs on.</summary>
    public CudaDevice Device => backend.Device;

    /// <summary>Most prompt rows one forward call takes.</summary>
    public int MaxBatchRows => maxRows;

    /// <summary>
    /// Runs up to <see cref="MaxBatchRows"/> tokens at the current position; the last row's logits stay on the device
    /// for <see cref="SelectNext"/> or <see cref="LastLogits"/>.
    /// </summary>
    internal void Append(int[] tokens)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        if (tokens.Length == 0 || tokens.Length > maxRows)
        {
            throw new ArgumentException($"Append takes 1..{maxRows} tokens; got {tokens.Length}.", nameof(tokens));
        }

        if (Position + tokens.Length > cache.Capacity)
        {
            throw new ArgumentException($"{Position} cached + {tokens.Length} new tokens exceed the context of {cache.Capacity}.", nameof(tokens));
        }

        CheckIds(tokens);
        ids.View.SubView(0, tokens.Length).CopyFromCPU(backend.Device.Stream, tokens);
        tokenOnDevice = -1;
        backend.SetStart(Position);
        Forward(tokens.Length, logitsForAllRows: false, splits: 1);
        sequence.Append(tokens);
    }

    /// <summary>Downloads the logits [vocab] of the last token run (host sampling, --dump-logits).</summary>
    public float[] LastLogits()
    {
        var result = new float[c.VocabSize];
        logits.View.SubView(0, c.VocabSize).CopyToCPU(backend.Device.Stream, result);
        backend.Device.Synchronize();
        return result;
    }

    /// <summary>
    /// Sets the selection used from now on (by <see cref="SelectNext"/>, <see cref="Step"/> and the graph, which reads
    /// the settings from device memory). <paramref name="history"/> is what the repetition penalty sees (the prompt);
    /// chosen ids are appended to it on the device while the penalty is on.
    /// </summary>
    internal void SetSelection(DeviceSelection selection, IReadOnlyList<int> history)
    {
        ArgumentNullException.ThrowIfNull(history);
        var stream = backend.Device.Stream;
        bool penalised = selection.RepetitionPenalty != 1f;
        int n = penalised ? Math.Min(history.Count, (int)this.history.Length) : 0;
        if (n > 0)
        {
            this.history.View.SubView(0, n).CopyFromCPU(stream, history.Take(n).ToArray());
        }

        selectSettings.View.CopyFromCPU(stream, new[] { selection.Temperature, selection.TopP, selection.RepetitionPenalty, 0f });
        selectState.View.CopyFromCPU(stream, new[] { selection.TopK, n, penalised ? 1 : 0 });
        selectionSamples = selection.Samples;
        this.selection = selection;
    }

    /// <summary>Chooses the next id from the last appended row's logits on the device; <paramref name="draw"/> is the uniform number when sampling.</summary>
    internal int SelectNext(float draw)
    {
        SetDraw(draw);
        LaunchSelection();
        return ReadChosen();
    }

    /// <summary>
    /// Appends <paramref name="token"/> at the current position and chooses the next id: one replay of the captured
    /// decode graph (forward, selection, position + 1) on a GPU, the same launches one by one elsewhere.
    /// </summary>
    internal int Step(int token, float draw)
    {
        if (Position + 1 > cache.Capacity)
        {
            throw new InvalidOperationException($"The context of {cache.Capacity} tokens is full.");
        }

        if (token != tokenOnDevice)
        {
            CheckIds([token]);
            ids.View.SubView(0, 1).CopyFromCPU(backend.Device.Stream, new[] { token });
        }

        backend.SetStart(Position);
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

        sequence.Append([token]);
        return ReadChosen();
    }

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
}
