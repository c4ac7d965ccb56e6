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

    /// <summary>[historyLength] previous token ids for the repetition penalty.</summary>
    public ArrayView<int> History;

    /// <summary>[2 * MaxCandidates] scratch: candidate ids then candidate logits.</summary>
    public ArrayView<float> Candidates;

    /// <summary>[1] uniform random number in [0, 1) for this step.</summary>
    public ArrayView<float> Uniform;

    /// <summary>[1] the chosen id is written here (and may feed the next step's embedding directly).</summary>
    public ArrayView<int> Chosen;
    public int Vocab;
    public int HistoryLength;
    public float Temperature;
    public int TopK;
    public float TopP;
    public float RepetitionPenalty;
}

/// <summary>
/// Launch geometry: grid (1), group <see cref="BlockThreads"/>. Greedy (temperature &lt;= 0): block argmax, ties to
/// the lowest id (as torch.argmax). Sampling follows the HF order: repetition penalty (logit / p when positive,
/// logit * p otherwise, once per distinct id), temperature, top-k (k candidates found by k block-argmax passes,
/// k capped at <see cref="MaxCandidates"/>; top_k = 0 means that cap), top-p over the sorted candidates, then an
/// inverse-CDF draw with the given uniform number.
/// </summary>
internal static class SamplingKernels
{
    public const int BlockThreads = 1024;
    public const int MaxCandidates = 64;

    public static void Select(SamplingArgs a)
    {
        var bestV = SharedMemory.Allocate<float>(BlockThreads);
        var bestI = SharedMemory.Allocate<int>(BlockThreads);
        int tid = Group.IdxX;
        if (a.Temperature <= 0f)
        {
            int id = BlockArgMax(a.Logits, a.Vocab, bestV, bestI);
            if (tid == 0)
            {
                a.Chosen[0] = id;
            }

            return;
        }

        float invT = 1f / a.Temperature;
        for (int i = tid; i < a.Vocab; i += BlockThreads)
        {
            a.Scratch[i] = a.Logits[i];
        }

        Group.Barrier();
        if (a.RepetitionPenalty != 1f)
        {
            // Computed from the original logit, so a repeated id is penalised once however often it occurs.
            for (int i = tid; i < a.HistoryLength; i += BlockThreads)
            {
                int id = a.History[i];
                float l = a.Logits[id];
                a.Scratch[id] = l > 0f ? l / a.RepetitionPenalty : l * a.RepetitionPenalty;
            }

            Group.Barrier();
        }

        int k = a.TopK <= 0 || a.TopK > MaxCandidates ? MaxCandidates : a.TopK;
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

            // Keep the smallest prefix whose probability reaches top_p (at least one token).
            int keep = k;
            float cumulative = 0f;
            for (int c = 0; c < k; c++)
            {
                cumulative += MathF.Exp(a.Candidates[MaxCandidates + c] - max) / total;
                if (cumulative >= a.TopP)
                {
                    keep = c + 1;
                    break;
                }
            }

            float kept = 0f;
            for (int c = 0; c < keep; c++)
            {
                kept += MathF.Exp(a.Candidates[MaxCandidates + c] - max);
            }

            float target = a.Uniform[0] * kept;
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

            a.Chosen[0] = chosen;
        }
    }

    private static int BlockArgMax(ArrayView<float> values, int n, ArrayView<float> bestV, ArrayView<int> bestI)
    {
        int tid = Group.IdxX;
        float bv = float.NegativeInfinity;
        int bi = n;
        for (int i = tid; i < n; i += BlockThreads)
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
        for (int s = BlockThreads / 2; s > 0; s /= 2)
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
