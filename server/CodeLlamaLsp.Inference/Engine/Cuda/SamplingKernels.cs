// Token selection on the GPU: greedy argmax, or repetition penalty + temperature + top-k + top-p sampling,
// in one block, so only the chosen id travels back to the host (4 bytes per token).
using ILGPU;

namespace CodeLlamaLsp.Inference.Engine.Cuda;

/// <summary>Arguments of <see cref="SamplingKernels.Select"/>.</summary>
internal struct SamplingArgs
{
    /// <summary>[vocab] fp32 logits of the row to sample.</summary>
    public ArrayView<float> Logits;

    /// <summary>[vocab] scratch for penalised, temperature-scaled logits.</summary>
    public ArrayView<float> Scratch;

    /// <summary>[capacity] token ids the repetition penalty applies to (prompt and answer so far).</summary>
    public ArrayView<int> History;

    /// <summary>[2 * MaxCandidates] scratch: candidate ids then candidate logits.</summary>
    public ArrayView<float> Candidates;

    /// <summary>
    /// [<see cref="SamplingKernels.SettingsLength"/>] per-generation settings read on the device, so one captured
    /// graph serves every request: temperature, top_p, repetition penalty, and this step's uniform draw in [0, 1).
    /// </summary>
    public ArrayView<float> Settings;

    /// <summary>
    /// [<see cref="SamplingKernels.StateLength"/>] top_k, the history length, and whether to append each chosen id to
    /// the history (so the penalty sees the answer as it grows without a host round trip).
    /// </summary>
    public ArrayView<int> State;

    /// <summary>[1] the chosen id is written here (and may feed the next step's embedding directly).</summary>
    public ArrayView<int> Chosen;
    public int Vocab;
}

/// <summary>
/// Launch geometry: grid (1), one group of a power of two up to <see cref="BlockThreads"/> threads (fewer on ILGPU's CPU
/// accelerator in tests). The order is Sampling/Sampler.cs's (HF's): repetition
/// penalty (logit / p when positive, logit * p otherwise, once per distinct id; applied before greedy too), then
/// greedy (temperature &lt;= 0: block argmax, ties to the lowest id, as torch.argmax) or temperature, top-k (k
/// candidates found by k block-argmax passes, ties to the lowest id; k capped at <see cref="MaxCandidates"/>, top_k = 0
/// means that cap, so callers wanting Sampler's exact top_k = 0 select on the host), top-p over the sorted candidates
/// and an inverse-CDF draw with the given uniform number. The same uniform gives the same id as Sampler.
/// </summary>
internal static class SamplingKernels
{
    public const int BlockThreads = 1024;
    public const int MaxCandidates = 64;

    /// <summary>Settings[]: temperature, top_p, repetition penalty, uniform draw.</summary>
    public const int SettingsLength = 4;

    /// <summary>State[]: top_k, history length, append chosen ids to the history (0/1).</summary>
    public const int StateLength = 3;

    public static void Select(SamplingArgs a)
    {
        var bestV = SharedMemory.Allocate<float>(BlockThreads);
        var bestI = SharedMemory.Allocate<int>(BlockThreads);
        int tid = Group.IdxX;
        float temperature = a.Settings[0];
        float topP = a.Settings[1];
        float penalty = a.Settings[2];
        int historyLength = a.State[1];
        if (temperature <= 0f && penalty == 1f)
        {
            int best = BlockArgMax(a.Logits, a.Vocab, bestV, bestI);
            if (tid == 0)
            {
                Choose(a, best);
            }

            return;
        }

        for (int i = tid; i < a.Vocab; i += Group.DimX)
        {
            a.Scratch[i] = a.Logits[i];
        }

        Group.Barrier();
        if (penalty != 1f)
        {
            // Computed from the original logit, so a repeated id is penalised once however often it occurs.
            for (int i = tid; i < historyLength; i += Group.DimX)
            {
                int id = a.History[i];
                if (id >= 0 && id < a.Vocab)
                {
                    float l = a.Logits[id];
                    a.Scratch[id] = l > 0f ? l / penalty : l * penalty;
                }
            }

            Group.Barrier();
        }

        if (temperature <= 0f)
        {
            int best = BlockArgMax(a.Scratch, a.Vocab, bestV, bestI);
            if (tid == 0)
            {
                Choose(a, best);
            }

            return;
        }

        float invT = 1f / temperature;
        int k = a.State[0] <= 0 || a.State[0] > MaxCandidates ? MaxCandidates : a.State[0];
        k = k < a.Vocab ? k : a.Vocab;
        for (int c = 0; c < k; c++)
        {
            int id = BlockArgMax(a.Scratch, a.Vocab, bestV, bestI);
            if (tid == 0)
            {
                a.Candidates[c] = id;
                a.Candidates[MaxCandidates + c] = a.Scratch[id] * invT;
                a.Scratch[id] = float.NegativeInfinity;
            }

            Group.Barrier();
        }

        if (tid == 0)
        {
            float max = a.Candidates[MaxCandidates];
            float total = 0f;
            for (int c = 0; c < k; c++)
            {
                total += MathF.Exp(a.Candidates[MaxCandidates + c] - max);
            }

            // Keep the smallest prefix whose probability mass reaches top_p (at least one token).
            int keep = k;
            if (topP < 1f)
            {
                float kept = 0f;
                for (int c = 0; c < k; c++)
                {
                    kept += MathF.Exp(a.Candidates[MaxCandidates + c] - max);
                    if (kept >= topP * total)
                    {
                        keep = c + 1;
                        break;
                    }
                }
            }

            float keptMass = 0f;
            for (int c = 0; c < keep; c++)
            {
                keptMass += MathF.Exp(a.Candidates[MaxCandidates + c] - max);
            }

            float target = a.Settings[3] * keptMass;
            float run = 0f;
            int chosen = (int)a.Candidates[keep - 1];
            for (int c = 0; c < keep; c++)
            {
                run += MathF.Exp(a.Candidates[MaxCandidates + c] - max);
                if (target < run)
                {
                    chosen = (int)a.Candidates[c];
                    break;
                }
            }

            Choose(a, chosen);
        }
    }

    /// <summary>Thread 0 only: publishes the id and, when asked, appends it to the penalty's history.</summary>
    private static void Choose(SamplingArgs a, int id)
    {
        a.Chosen[0] = id;
        int n = a.State[1];
        if (a.State[2] != 0 && n < a.History.IntLength)
        {
            a.History[n] = id;
            a.State[1] = n + 1;
        }
    }

    private static int BlockArgMax(ArrayView<float> values, int n, ArrayView<float> bestV, ArrayView<int> bestI)
    {
        int tid = Group.IdxX;
        float bv = float.NegativeInfinity;
        int bi = n;
        for (int i = tid; i < n; i += Group.DimX)
        {
            float v = values[i];
            if (v > bv || (v == bv && i < bi))
            {
                bv = v;
                bi = i;
            }
        }

        bestV[tid] = bv;
        bestI[tid] = bi;
        Group.Barrier();
        for (int s = Group.DimX / 2; s > 0; s /= 2)
        {
            if (tid < s)
            {
                float ov = bestV[tid + s];
                int oi = bestI[tid + s];
                if (ov > bestV[tid] || (ov == bestV[tid] && oi < bestI[tid]))
                {
                    bestV[tid] = ov;
                    bestI[tid] = oi;
                }
            }

            Group.Barrier();
        }

        int result = bestI[0];
        Group.Barrier();
        return result < n ? result : 0;
    }
}
