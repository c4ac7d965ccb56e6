// The CUDA engine's IDecodingSession: the fused CudaDecoder with a prefix cache over its KV cache, and
// token selection on the GPU. A decode step is one replay of the captured graph (forward, selection,
// position + 1); the host uploads the token only when it is not the one the device just chose and reads
// back 4 bytes. Sampling with top_k 0 or above SamplingKernels.MaxCandidates cannot be reproduced by the
// device kernel, so for those requests the logits are downloaded and Sampler picks on the host.
// A speculative draft is verified in one forward pass of 1 + draft rows with each row's id chosen on the device
// (1 + draft ids come back, not the logits), with the seeded draws taken in position order as Advance takes
// them; the cache then forgets the rejected rows.
using CodeLlamaLsp.Inference.Generation;
using CodeLlamaLsp.Inference.Model;
using CodeLlamaLsp.Inference.Sampling;

namespace CodeLlamaLsp.Inference.Engine.Cuda;

/// <summary>Generation on one GPU through <see cref="CudaDecoder"/>. Not thread-safe: one call at a time.</summary>
public sealed class CudaDecodingSession : IDecodingSession
{
    private readonly CudaDecoder _decoder;
    private Generation? _current;

    /// <summary>Wraps <paramref name="decoder"/>, which the session owns and disposes.</summary>
    public CudaDecodingSession(CudaDecoder decoder)
    {
        ArgumentNullException.ThrowIfNull(decoder);
        _decoder = decoder;
        _decoder.Reset();
    }

    public CudaDecoder Decoder => _decoder;

    public LlamaConfig Config => _decoder.Config;

    public string DeviceName => _decoder.Device.Name;

    public int ContextLength => _decoder.ContextLength;

    public int Position => _decoder.Position;

    public IReadOnlyList<int> CachedTokens => _decoder.Sequence.Tokens;

    public int LastReusedTokens { get; private set; }

    public int LastProcessedTokens { get; private set; }

    /// <summary>Whether the last generation chose its tokens on the device (false: logits downloaded, host Sampler).</summary>
    public bool LastSelectedOnDevice { get; private set; }

    public float[] Prefill(IReadOnlyList<int> prompt, CancellationToken cancellationToken = default)
    {
        _current = null;
        RunPrompt(prompt, cancellationToken);
        return _decoder.LastLogits();
    }

    public int BeginGeneration(IReadOnlyList<int> prompt, GenerationOptions options, CancellationToken cancellationToken)
    {
        // Sampler validates the options (and is the fallback's selector); its errors are the CPU path's.
        var sampler = new Sampler(options);
        _current = null;
        RunPrompt(prompt, cancellationToken);
        bool onDevice = DeviceSelection.Supports(options);
        _decoder.SetSelection(onDevice ? DeviceSelection.From(options) : DeviceSelection.Greedy, prompt);
        var generation = new Generation(sampler, options, onDevice, [.. prompt]);
        LastSelectedOnDevice = onDevice;
        int first = onDevice ? _decoder.SelectNext(generation.Draw()) : generation.SampleOnHost(_decoder.LastLogits());
        _current = generation;
        return first;
    }

    public int Advance(int token)
    {
        var generation = _current ?? throw new InvalidOperationException("Advance needs a generation begun with BeginGeneration.");
        Bind();
        int chosen = _decoder.Step(token, generation.OnDevice ? generation.Draw() : 0f);
        if (generation.OnDevice)
        {
            return chosen;
        }

        generation.Context.Add(token);
        return generation.SampleOnHost(_decoder.LastLogits());
    }

    /// <summary>
    /// <see cref="IDecodingSession.AdvanceWithDraft"/> in one forward pass of 1 + draft.Length rows
    /// (<see cref="CudaDecoder.AppendChoosingEach"/>). Row i's id is chosen on the device by the decode step's selection
    /// with the draw Advance would use at that position (draws are peeked and only the kept rows' consumed, so the next
    /// step draws what it would have drawn), or for host sampling by Sampler over the downloaded rows. The pass runs
    /// the kernels of a decode step, which compute each row the same bits alone or in a batch, so the ids are
    /// Advance's. A draft longer than <see cref="CudaDecoder.MaxVerificationRows"/> - 1 is cut (verifying fewer tokens
    /// is still exact).
    /// </summary>
    public IReadOnlyList<int> AdvanceWithDraft(int token, ReadOnlySpan<int> draft)
    {
        var generation = _current ?? throw new InvalidOperationException("AdvanceWithDraft needs a generation begun with BeginGeneration.");
        draft = draft[..Math.Min(draft.Length, _decoder.MaxVerificationRows - 1)];
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
        int[] ids = [token, .. draft];
        var draws = new float[rows];
        for (int i = 0; i < rows && generation.OnDevice; i++)
        {
            draws[i] = generation.PeekDraw(i);
        }

        var deviceChoices = _decoder.AppendChoosingEach(ids, draws);
        List<int> chosen;
        if (generation.OnDevice)
        {
            chosen = DraftAcceptance.KeepAgreeingPrefix(draft, row => deviceChoices[row]);
            generation.ConsumeDraws(chosen.Count);
        }
        else
        {
            var logits = _decoder.VerificationLogits();
            int vocab = Config.VocabSize;
            chosen = DraftAcceptance.KeepAgreeingPrefix(draft, row =>
            {
                generation.Context.Add(ids[row]);
                return generation.SampleOnHost(logits.AsSpan(row * vocab, vocab));
            });
        }

        // Keep the token and the accepted draft tokens; the rejected rows' keys and values are overwritten later.
        _decoder.KeepVerified(chosen.Count);
        return chosen;
    }

    public void Reset()
    {
        _current = null;
        _decoder.Reset();
    }

    public void Dispose()
    {
        Bind();
        _decoder.Dispose();
    }

    /// <summary>Leaves the cache holding exactly <paramref name="prompt"/>, the last row's logits on the device.</summary>
    private void RunPrompt(IReadOnlyList<int> prompt, CancellationToken cancellationToken)
    {
        int common = _decoder.Sequence.RewindToSharedPrefix(prompt, Config.VocabSize);
        Bind();
        LastReusedTokens = common;
        LastProcessedTokens = prompt.Count - common;
        int batch = _decoder.MaxBatchRows;
        for (int start = common; start < prompt.Count; start += batch)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var chunk = new int[Math.Min(batch, prompt.Count - start)];
            for (int i = 0; i < chunk.Length; i++)
            {
                chunk[i] = prompt[start + i];
            }

            _decoder.Append(chunk);
        }
    }

    /// <summary>CUDA contexts are per thread and the generator runs steps on pool threads: make ours current.</summary>
    private void Bind() => _decoder.Device.Accelerator.Bind();

    /// <summary>One generation's selection state: the seeded draws (the same sequence Sampler would use) or the host sampler.</summary>
    private sealed class Generation(Sampler sampler, GenerationOptions options, bool onDevice, List<int> context)
    {
        private readonly Random _random = options.Seed is { } seed ? new Random(seed) : new Random();
        private readonly List<float> _peeked = []; // draws taken for a verification's rows and not yet used

        public bool OnDevice => onDevice;

        public List<int> Context => context;

        /// <summary>The uniform number for the next device draw; Sampler draws exactly once per sampled (non-greedy) token.</summary>
        public float Draw()
        {
            float draw = PeekDraw(0);
            ConsumeDraws(1);
            return draw;
        }

        /// <summary>The draw <paramref name="ahead"/> positions after the next one, without using it up.</summary>
        public float PeekDraw(int ahead)
        {
            if (options.Temperature <= 0f)
            {
                return 0f;
            }

            while (_peeked.Count <= ahead)
            {
                _peeked.Add((float)_random.NextDouble());
            }

            return _peeked[ahead];
        }

        /// <summary>Uses up the next <paramref name="count"/> draws (the positions a verification kept).</summary>
        public void ConsumeDraws(int count) => _peeked.RemoveRange(0, Math.Min(count, _peeked.Count));

        public int SampleOnHost(Span<float> logits) => sampler.Sample(logits, context);
    }
}
