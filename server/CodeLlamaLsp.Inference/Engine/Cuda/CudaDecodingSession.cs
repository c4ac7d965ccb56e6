// The mutable half of the CUDA engine, as InferenceSession is on the CPU: one sequence on an immutable CudaModel,
// holding the KV cache (a KvCache, so prompt checks and the prefix cache's rewind are the CPU session's), the
// position, the scratch buffers and the captured graphs, and choosing tokens on the GPU. A decode step is one replay
// of the captured graph (forward, selection, position + 1); the host uploads the token only when it is not the one
// the device just chose and reads back 4 bytes. Sampling with top_k 0 or above SamplingKernels.MaxCandidates cannot
// be reproduced by the device kernel, so for those requests the logits are downloaded and Sampler picks on the host.
// The forward pass and device selection are in CudaDecodingSession.Forward.cs, speculative verification in
// CudaDecodingSession.Verification.cs.
using ILGPU.Runtime;
using CodeLlamaLsp.Inference.Generation;
using CodeLlamaLsp.Inference.Model;
using CodeLlamaLsp.Inference.Sampling;

namespace CodeLlamaLsp.Inference.Engine.Cuda;

/// <summary>One sequence generated on a <see cref="CudaModel"/>. Not thread-safe: one call at a time.</summary>
public sealed partial class CudaDecodingSession : IDecodingSession
{
    private readonly CudaModel model;
    private readonly KvCache cache; // over kv, the session's CUDA storage
    private Generation? current;

    /// <summary>
    /// Allocates a sequence of <paramref name="contextLength"/> positions on <paramref name="model"/>'s device, prompts run
    /// in forward passes of up to <paramref name="maxBatchRows"/> rows. The model is used, not owned: dispose it after
    /// the session.
    /// </summary>
    public CudaDecodingSession(CudaModel model, int contextLength, int maxBatchRows = CudaDecodingSessionDefaults.MaxBatchRows)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentOutOfRangeException.ThrowIfLessThan(contextLength, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBatchRows, 1);
        this.model = model;
        backend = model.Backend;
        c = model.Config;
        maxRows = maxBatchRows;
        Bind();
        var mem = backend.Memory;
        int hd = c.HeadDim;
        qkvWidth = c.HiddenSize + (2 * c.NumKvHeads * hd);

        // KV cache first: it is the session's largest allocation, sized by the configured context.
        kv = backend.AllocateKvCache(c.NumLayers, c.NumKvHeads, hd, contextLength);
        cache = new KvCache(kv);
        rope = RopeTable.Create(mem, c.RopeTheta, hd, contextLength);
        start = mem.Allocate<int>(1, "position");
        attention = new CudaAttention(backend.Device, mem, start.View);
        decodeSplits = CudaAttention.DecodeSplits(backend.Device, c.NumKvHeads, c.NumHeads, contextLength);

        int maxIn = Math.Max(c.HiddenSize, c.IntermediateSize);
        x = mem.Allocate<float>((long)maxRows * c.HiddenSize, "activations");
        // Two fp16 inputs of [maxRows, hidden] (the size of the fp32 rows the act-order path used to convert from).
        splitInputs = mem.Allocate<uint>(2 * ((((long)maxRows * c.HiddenSize) + 1) / 2), "activations");
        linearInput = mem.Allocate<uint>(((long)maxRows * maxIn) + 4, "activations");
        qkv = mem.Allocate<float>((long)maxRows * qkvWidth, "activations");
        gateUp = mem.Allocate<float>((long)maxRows * 2 * c.IntermediateSize, "activations");
        // Every row's logits are kept only for a verification pass; a prompt keeps its last row's (EvaluateAllPositions
        // computes the others a slice at a time).
        logits = mem.Allocate<float>((long)MaxVerificationRows * c.VocabSize, "logits");
        ids = mem.Allocate<int>(maxRows, "token ids");
        sampleScratch = mem.Allocate<float>(c.VocabSize, "sampling scratch");
        candidates = mem.Allocate<float>(2 * SamplingKernels.MaxCandidates, "sampling scratch");
        selectSettings = mem.Allocate<float>(SamplingKernels.SettingsLength, "sampling settings");
        selectState = mem.Allocate<int>(SamplingKernels.StateLength, "sampling settings");

        // Prompt plus answer, and the one id chosen after the last position (never read back).
        history = mem.Allocate<int>(contextLength + 1, "token history");
        SetSelection(DeviceSelection.Greedy, []);
        rowSettings = mem.Allocate<float>((long)MaxVerificationRows * SamplingKernels.SettingsLength, "sampling settings");

        // Attention partials for a prefill chunk (one split) and for the widest verification pass (the decode step's splits).
        attention.Reserve(Math.Max(maxRows, (long)MaxVerificationRows * decodeSplits), c.NumHeads, hd);
    }

    public LlamaConfig Config => c;

    public string DeviceName => backend.Device.Name;

    public int ContextLength => cache.Capacity;

    /// <summary>By the prompt products' path: cuBLAS or the built-in GEMM (see <see cref="CudaDecodingSessionDefaults"/>).</summary>
    public int? PromptBudget => backend.Device.UseCublas ? CudaDecodingSessionDefaults.PromptBudgetWithCublas : CudaDecodingSessionDefaults.PromptBudget;

    public int Position => cache.Length;

    public IReadOnlyList<int> CachedTokens => cache.Tokens;

    public int LastReusedTokens { get; private set; }

    public int LastProcessedTokens { get; private set; }

    /// <summary>Whether the last generation chose its tokens on the device (false: logits downloaded, host Sampler).</summary>
    public bool LastSelectedOnDevice { get; private set; }

    public float[] Prefill(IReadOnlyList<int> prompt, CancellationToken cancellationToken = default)
    {
        current = null;
        RunPrompt(prompt, cancellationToken);
        return LastLogits();
    }

    /// <summary>
    /// Evaluates <paramref name="prompt"/> from position 0 (ignoring the prefix cache) and returns the logits at
    /// every position, row-major [prompt.Count, vocab]. For tests.
    /// </summary>
    public float[] EvaluateAllPositions(IReadOnlyList<int> prompt)
    {
        current = null;
        cache.CheckPrompt(prompt, c.VocabSize);
        Bind();
        cache.Truncate(0);
        LastReusedTokens = 0;
        LastProcessedTokens = prompt.Count;
        int vocab = c.VocabSize;
        var result = new float[(long)prompt.Count * vocab];
        for (int done = 0; done < prompt.Count; done += maxRows)
        {
            var chunk = prompt.Skip(done).Take(maxRows).ToArray();
            Append(chunk, logitsForAllRows: false);
            for (int first = 0; first < chunk.Length; first += MaxVerificationRows)
            {
                int rows = Math.Min(MaxVerificationRows, chunk.Length - first);
                RowLogits(first, rows);
                var part = new float[rows * vocab];
                logits.View.SubView(0, part.Length).CopyToCPU(backend.Device.Stream, part);
                backend.Device.Synchronize();
                part.CopyTo(result, (long)(done + first) * vocab);
            }
        }

        return result;
    }

    public int BeginGeneration(IReadOnlyList<int> prompt, GenerationOptions options, CancellationToken cancellationToken)
    {
        // Sampler validates the options (and is the fallback's selector); its errors are the CPU path's.
        var sampler = new Sampler(options);
        current = null;
        RunPrompt(prompt, cancellationToken);
        bool onDevice = DeviceSelection.Supports(options);
        SetSelection(onDevice ? DeviceSelection.From(options) : DeviceSelection.Greedy, prompt);
        var generation = new Generation(sampler, options, onDevice, [.. prompt]);
        LastSelectedOnDevice = onDevice;
        int first = onDevice ? SelectNext(generation.Draw()) : generation.SampleOnHost(LastLogits());
        current = generation;
        return first;
    }

    public int Advance(int token)
    {
        var generation = current ?? throw new InvalidOperationException("Advance needs a generation begun with BeginGeneration.");
        Bind();
        int chosen = Step(token, generation.OnDevice ? generation.Draw() : 0f);
        if (generation.OnDevice)
        {
            return chosen;
        }

        generation.Context.Add(token);
        return generation.SampleOnHost(LastLogits());
    }

    public void Reset()
    {
        current = null;
        cache.Truncate(0);
    }

    public void Dispose()
    {
        Bind();
        graph?.Dispose();
        DisposeVerification();
        cache.Dispose();
        rope.Dispose();
        attention.Dispose();
        start.Dispose();
        foreach (var buffer in new IDisposable[] { x, splitInputs, linearInput, qkv, gateUp, logits, ids, sampleScratch, candidates, selectSettings, selectState, history })
        {
            buffer.Dispose();
        }
    }

    /// <summary>Leaves the cache holding exactly <paramref name="prompt"/>, the last row's logits on the device.</summary>
    private void RunPrompt(IReadOnlyList<int> prompt, CancellationToken cancellationToken)
    {
        int reused = cache.RewindToSharedPrefix(prompt, c.VocabSize);
        Bind();
        LastReusedTokens = reused;
        LastProcessedTokens = prompt.Count - reused;
        for (int done = reused; done < prompt.Count; done += maxRows)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var chunk = new int[Math.Min(maxRows, prompt.Count - done)];
            for (int i = 0; i < chunk.Length; i++)
            {
                chunk[i] = prompt[done + i];
            }

            Append(chunk, logitsForAllRows: false);
        }
    }

    /// <summary>CUDA contexts are per thread and the generator runs steps on pool threads: make ours current.</summary>
    private void Bind() => backend.Device.Accelerator.Bind();

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
