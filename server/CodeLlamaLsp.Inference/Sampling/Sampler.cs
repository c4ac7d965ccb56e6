// Chooses the next token from a logits vector the way transformers' generate() does for the seed's
// settings: repetition penalty, then temperature, top-k and top-p, then a seeded draw; temperature 0 is
// greedy (argmax, lowest id on ties).
using CodeLlamaLsp.Inference.Generation;

namespace CodeLlamaLsp.Inference.Sampling;

/// <summary>Samples token ids under one request's <see cref="GenerationOptions"/>. Not thread-safe.</summary>
public sealed class Sampler
{
    private readonly GenerationOptions _options;
    private readonly Random _random;
    private int[] _order = [];
    private double[] _weights = [];

    public Sampler(GenerationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Temperature < 0 || float.IsNaN(options.Temperature))
        {
            throw new ArgumentOutOfRangeException(nameof(options), $"Temperature {options.Temperature} must be 0 (greedy) or positive.");
        }

        if (!(options.TopP > 0 && options.TopP <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(options), $"top_p {options.TopP} must be in (0, 1].");
        }

        if (options.TopK < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), $"top_k {options.TopK} must be 0 (off) or positive.");
        }

        if (!(options.RepetitionPenalty > 0))
        {
            throw new ArgumentOutOfRangeException(nameof(options), $"Repetition penalty {options.RepetitionPenalty} must be positive (1 = off).");
        }

        _options = options;
        _random = options.Seed is { } seed ? new Random(seed) : new Random();
    }

    /// <summary>True when <see cref="Sample"/> is a pure argmax (temperature 0).</summary>
    public bool IsGreedy => _options.Temperature == 0f;

    /// <summary>
    /// Picks the next id. <paramref name="logits"/> is modified in place (penalty and temperature);
    /// <paramref name="context"/> holds the ids the repetition penalty applies to (prompt and answer so far,
    /// as transformers does).
    /// </summary>
    public int Sample(Span<float> logits, IReadOnlyList<int> context)
    {
        ArgumentNullException.ThrowIfNull(context);
        ApplyRepetitionPenalty(logits, context, _options.RepetitionPenalty);
        if (IsGreedy)
        {
            return Argmax(logits);
        }

        float inverseTemperature = 1f / _options.Temperature;
        for (int i = 0; i < logits.Length; i++)
        {
            logits[i] *= inverseTemperature;
        }

        int candidates = SortedCandidates(logits, _options.TopK);
        double max = logits[_order[0]];
        double total = 0;
        for (int i = 0; i < candidates; i++)
        {
            _weights[i] = Math.Exp(logits[_order[i]] - max);
            total += _weights[i];
        }

        // top-p: keep the most likely ids until their mass reaches top_p (always at least one).
        if (_options.TopP < 1f)
        {
            double kept = 0;
            int keep = 0;
            while (keep < candidates && kept < _options.TopP * total)
            {
                kept += _weights[keep++];
            }

            candidates = Math.Max(1, keep);
            total = kept;
        }

        double draw = _random.NextDouble() * total;
        for (int i = 0; i < candidates; i++)
        {
            draw -= _weights[i];
            if (draw < 0)
            {
                return _order[i];
            }
        }

        return _order[candidates - 1];
    }

    /// <summary>The id of the largest logit; the lowest id among equal maxima.</summary>
    public static int Argmax(ReadOnlySpan<float> logits)
    {
        int best = 0;
        for (int i = 1; i < logits.Length; i++)
        {
            if (logits[i] > logits[best])
            {
                best = i;
            }
        }

        return best;
    }

    /// <summary>transformers' RepetitionPenaltyLogitsProcessor: divide positive logits of seen ids by the penalty, multiply negative ones.</summary>
    public static void ApplyRepetitionPenalty(Span<float> logits, IReadOnlyList<int> context, float penalty)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (penalty == 1f)
        {
            return;
        }

        var seen = new HashSet<int>();
        foreach (var id in context)
        {
            if ((uint)id < (uint)logits.Length && seen.Add(id))
            {
                logits[id] = logits[id] < 0 ? logits[id] * penalty : logits[id] / penalty;
            }
        }
    }

    /// <summary>Fills _order with the ids to consider, largest logit first (the top k, or all); returns how many.</summary>
    private int SortedCandidates(Span<float> logits, int topK)
    {
        int n = logits.Length;
        if (_order.Length != n)
        {
            _order = new int[n];
            _weights = new double[n];
        }

        int count = topK > 0 ? Math.Min(topK, n) : n;
        if (count < n)
        {
            // A min-heap of the k best seen so far: O(n log k) instead of sorting the whole vocabulary.
            var best = new PriorityQueue<int, (float Logit, int NegatedId)>(count + 1);
            for (int i = 0; i < n; i++)
            {
                best.Enqueue(i, (logits[i], -i));
                if (best.Count > count)
                {
                    best.Dequeue();
                }
            }

            for (int i = count - 1; i >= 0; i--)
            {
                _order[i] = best.Dequeue();
            }

            return count;
        }

        for (int i = 0; i < n; i++)
        {
            _order[i] = i;
        }

        var keys = logits.ToArray();
        for (int i = 0; i < n; i++)
        {
            keys[i] = -keys[i];
        }

        // Sorting by negated logit gives descending order; ids are the tiebreak for equal logits.
        Array.Sort(keys, _order);
        SortTiesById(keys, count);
        return count;
    }

    private void SortTiesById(float[] keys, int count)
    {
        int start = 0;
        while (start < count)
        {
            int end = start + 1;
            while (end < keys.Length && keys[end] == keys[start])
            {
                end++;
            }

            if (end - start > 1)
            {
                Array.Sort(_order, start, end - start);
            }

            start = end;
        }
    }
}
