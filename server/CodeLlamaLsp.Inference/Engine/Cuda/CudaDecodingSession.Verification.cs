// Speculative decoding's verification on the CUDA session (AdvanceWithDraft): one forward pass over the token and
// its draft (1 + d rows), the id after each row chosen on the device as a decode step chooses it, with the seeded
// draws taken in position order as Advance takes them, only those 1 + d ids read back, then the rejected rows
// forgotten. Each row count's pass is captured once as a CUDA graph, as the decode step is.
using ILGPU;
using ILGPU.Runtime;

namespace CodeLlamaLsp.Inference.Engine.Cuda;

public sealed partial class CudaDecodingSession
{
    private readonly Dictionary<int, CudaGraph> verificationGraphs = [];
    private readonly MemoryBuffer1D<float, Stride1D.Dense> rowSettings; // [MaxVerificationRows, SamplingKernels.SettingsLength]
    private int verifiedStart = -1;
    private int verifiedRows;

    /// <summary>
    /// Most rows one verification pass takes: the token plus up to <see cref="PromptLookupDrafter.MaxDraftLength"/> draft
    /// tokens, within the batch buffers, and below <see cref="CudaLinear.GemmMinRows"/> (and so below
    /// <see cref="PrefillAttentionKernels.MinRows"/>): the small-batch kernel (the GEMV for 8-bit layers), the split-row
    /// RMSNorm and the decode attention compute each row the same bits alone or in a batch, the GEMM and the prefill
    /// attention do not, and greedy output must not depend on speculation. Longer drafts are cut. Attention partials are reserved for this many rows at the decode step's splits.
    /// </summary>
    public int MaxVerificationRows => VerificationRows(maxRows);

    /// <summary><see cref="MaxVerificationRows"/> of a session with forward passes of up to <paramref name="maxBatchRows"/> rows; also the rows its logits buffer holds.</summary>
    internal static int VerificationRows(int maxBatchRows) => Math.Min(Math.Min(maxBatchRows, PromptLookupDrafter.MaxDraftLength + 1), CudaLinear.GemmMinRows - 1);

    /// <summary>Why verification passes run kernel by kernel on a GPU (their graph capture failed), or null.</summary>
    public string? VerificationGraphFailure { get; private set; }

    /// <summary>
    /// <see cref="IDecodingSession.AdvanceWithDraft"/> in one forward pass of 1 + draft.Length rows
    /// (<see cref="AppendChoosingEach"/>). Row i's id is chosen on the device by the decode step's selection with the
    /// draw Advance would use at that position (draws are peeked and only the kept rows' consumed, so the next step
    /// draws what it would have drawn), or for host sampling by Sampler over the downloaded rows. The pass runs the
    /// kernels of a decode step, which compute each row the same bits alone or in a batch, so the ids are Advance's.
    /// A draft longer than <see cref="MaxVerificationRows"/> - 1 is cut (verifying fewer tokens is still exact).
    /// </summary>
    public IReadOnlyList<int> AdvanceWithDraft(int token, ReadOnlySpan<int> draft)
    {
        var generation = current ?? throw new InvalidOperationException("AdvanceWithDraft needs a generation begun with BeginGeneration.");
        draft = draft[..Math.Min(draft.Length, MaxVerificationRows - 1)];
        if (draft.Length == 0)
        {
            return [Advance(token)];
        }

        int rows = 1 + draft.Length;
        if (Position + rows > ContextLength)
        {
            throw new InvalidOperationException($"{rows} positions from {Position} do not fit the context of {ContextLength} tokens.");
        }

        Bind();
        int[] tokens = [token, .. draft];
        var draws = new float[rows];
        for (int i = 0; i < rows && generation.OnDevice; i++)
        {
            draws[i] = generation.PeekDraw(i);
        }

        var deviceChoices = AppendChoosingEach(tokens, draws);
        List<int> chosen;
        if (generation.OnDevice)
        {
            chosen = DraftAcceptance.KeepAgreeingPrefix(draft, row => deviceChoices[row]);
            generation.ConsumeDraws(chosen.Count);
        }
        else
        {
            var rowLogits = VerificationLogits();
            int vocab = c.VocabSize;
            chosen = DraftAcceptance.KeepAgreeingPrefix(draft, row =>
            {
                generation.Context.Add(tokens[row]);
                return generation.SampleOnHost(rowLogits.AsSpan(row * vocab, vocab));
            });
        }

        // Keep the token and the accepted draft tokens; the rejected rows' keys and values are overwritten later.
        KeepVerified(chosen.Count);
        return chosen;
    }

    /// <summary>
    /// Appends <paramref name="tokens"/> (2..<see cref="MaxVerificationRows"/>) at the current position in one forward
    /// pass and returns, for each row i, the id chosen after tokens[0..i]: the selection of a decode step (same kernels,
    /// attention split as a decode step splits it) applied to row i's logits with <paramref name="draws"/>[i] as its
    /// uniform number. The repetition penalty of row i sees the device history plus the ids chosen at rows 0..i-1, which
    /// is the context at that position exactly while those choices equal tokens[1..i]: the rows a verification keeps.
    /// Every row's logits stay on the device (<see cref="VerificationLogits"/>); <see cref="KeepVerified"/> must follow.
    /// </summary>
    private int[] AppendChoosingEach(int[] tokens, ReadOnlySpan<float> draws)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        int rows = tokens.Length;
        if (rows < 2 || rows > MaxVerificationRows || draws.Length < rows)
        {
            throw new ArgumentException($"A verification takes 2..{MaxVerificationRows} tokens with a draw each; got {rows} tokens, {draws.Length} draws.", nameof(tokens));
        }

        if (Position + rows > kv.Capacity)
        {
            throw new InvalidOperationException($"{rows} positions from {Position} do not fit the context of {kv.Capacity} tokens.");
        }

        CheckIds(tokens);
        var stream = backend.Device.Stream;
        ids.View.SubView(0, rows).CopyFromCPU(stream, tokens);
        rowSettings.View.SubView(0, rows * SamplingKernels.SettingsLength).CopyFromCPU(stream, RowSettings(draws[..rows]));
        SetStart(Position);
        if (backend.Device.IsCuda && VerificationGraphFailure == null)
        {
            LaunchVerificationGraph(rows);
        }
        else
        {
            VerificationLaunches(rows);
        }

        verifiedStart = Position;
        verifiedRows = rows;
        cache.Append(tokens);
        var chosen = new int[rows];
        ids.View.SubView(0, rows).CopyToCPU(stream, chosen);
        tokenOnDevice = chosen[0];
        return chosen;
    }

    /// <summary>Downloads the logits [rows, vocab] of the last <see cref="AppendChoosingEach"/> (host sampling).</summary>
    private float[] VerificationLogits()
    {
        var result = new float[verifiedRows * c.VocabSize];
        logits.View.SubView(0, result.Length).CopyToCPU(backend.Device.Stream, result);
        backend.Device.Synchronize();
        return result;
    }

    /// <summary>
    /// Ends a verification: keeps the first <paramref name="kept"/> rows of the last <see cref="AppendChoosingEach"/>
    /// (their cache positions and, for the repetition penalty, their chosen ids) and forgets the others; the rejected
    /// rows' keys and values are overwritten by later steps.
    /// </summary>
    private void KeepVerified(int kept)
    {
        if (verifiedStart < 0)
        {
            throw new InvalidOperationException("KeepVerified follows AppendChoosingEach.");
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(kept, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(kept, verifiedRows);
        cache.Truncate(verifiedStart + kept);
        if (selection.RepetitionPenalty != 1f && kept < verifiedRows)
        {
            // Each row's selection appended its id to the penalty's history (SamplingKernels.Choose): drop the rejected ones'.
            backend.Device.Kernels.AdvancePosition(selectState.View.SubView(1, 1), -(verifiedRows - kept));
        }

        verifiedStart = -1;
    }

    /// <summary>Per row: temperature, top_p, repetition penalty and that row's draw (SamplingKernels.Settings*).</summary>
    private float[] RowSettings(ReadOnlySpan<float> draws)
    {
        var settings = new float[draws.Length * SamplingKernels.SettingsLength];
        for (int i = 0; i < draws.Length; i++)
        {
            int at = i * SamplingKernels.SettingsLength;
            settings[at] = selection.Temperature;
            settings[at + 1] = selection.TopP;
            settings[at + 2] = selection.RepetitionPenalty;
            settings[at + 3] = draws[i];
        }

        return settings;
    }

    /// <summary>
    /// Replays the pass captured for this row count, capturing it on first use. Should a capture fail, passes run kernel
    /// by kernel from then on (correct, only slower) and <see cref="VerificationGraphFailure"/> says why.
    /// </summary>
    private void LaunchVerificationGraph(int rows)
    {
        if (!verificationGraphs.TryGetValue(rows, out var pass))
        {
            // Every buffer the pass touches was sized in the constructor: nothing may allocate or synchronize while capturing.
            backend.Device.Synchronize();
            try
            {
                pass = CudaGraph.Capture(backend.Device.StreamHandle, () => VerificationLaunches(rows), backend.Device.Kernels.GridDependentFunctions);
            }
            catch (Exception e) when (e is InvalidOperationException or AcceleratorException)
            {
                VerificationGraphFailure = e.Message;
                VerificationLaunches(rows);
                return;
            }

            verificationGraphs[rows] = pass;
        }

        pass.Launch(backend.Device.StreamHandle);
    }

    /// <summary>
    /// One verification pass: ids[0..rows) at device position start with every row's logits (attention split as in a
    /// decode step, so each row computes what a one-row step at its position computes), then row i's selection with
    /// row i's settings into ids[i], in row order (each appends to the penalty history as a decode step does).
    /// </summary>
    private void VerificationLaunches(int rows)
    {
        Forward(rows, logitsForAllRows: true, splits: decodeSplits);
        var k = backend.Device.Kernels;
        for (int i = 0; i < rows; i++)
        {
            k.Sample(new SamplingArgs
            {
                Logits = logits.View.SubView((long)i * c.VocabSize, c.VocabSize),
                Scratch = sampleScratch.View,
                History = history.View,
                Candidates = candidates.View,
                Settings = rowSettings.View.SubView(i * SamplingKernels.SettingsLength, SamplingKernels.SettingsLength),
                State = selectState.View,
                Chosen = ids.View.SubView(i, 1),
                Vocab = c.VocabSize,
            });
        }
    }

    private void DisposeVerification()
    {
        foreach (var graph in verificationGraphs.Values)
        {
            graph.Dispose();
        }

        verificationGraphs.Clear();
        rowSettings.Dispose();
    }
}
