// The Llama forward pass, written once for every backend: it reads top to bottom like llama2.c's
// forward(), calling backend ops on a batch of T consecutive tokens of one sequence.
namespace CodeLlamaLsp.Inference.Engine;

/// <summary>Activation buffers sized for the largest batch, allocated once per session.</summary>
internal sealed class ForwardBuffers : IDisposable
{
    public ForwardBuffers(IComputeBackend backend, Model.LlamaConfig c, int maxRows)
    {
        MaxRows = maxRows;
        int kvDim = c.NumKvHeads * c.HeadDim;
        X = backend.Allocate(maxRows * c.HiddenSize);
        Normed = backend.Allocate(maxRows * c.HiddenSize);
        Q = backend.Allocate(maxRows * c.HiddenSize);
        K = backend.Allocate(maxRows * kvDim);
        V = backend.Allocate(maxRows * kvDim);
        Attention = backend.Allocate(maxRows * c.HiddenSize);
        Projected = backend.Allocate(maxRows * c.HiddenSize);
        Gate = backend.Allocate(maxRows * c.IntermediateSize);
        Up = backend.Allocate(maxRows * c.IntermediateSize);
        Logits = backend.Allocate(c.VocabSize);
    }

    public int MaxRows { get; }

    public DeviceBuffer X { get; } // [T, hidden]: the residual stream

    public DeviceBuffer Normed { get; } // [T, hidden]

    public DeviceBuffer Q { get; } // [T, heads * head_dim]

    public DeviceBuffer K { get; } // [T, kv_heads * head_dim]

    public DeviceBuffer V { get; } // [T, kv_heads * head_dim]

    public DeviceBuffer Attention { get; } // [T, heads * head_dim]

    public DeviceBuffer Projected { get; } // [T, hidden]: o_proj and down_proj outputs before the residual add

    public DeviceBuffer Gate { get; } // [T, intermediate]

    public DeviceBuffer Up { get; } // [T, intermediate]

    public DeviceBuffer Logits { get; } // [vocab]

    /// <summary>[maxRows, vocab], allocated on first use (only tests and --dump-logits want every position).</summary>
    public DeviceBuffer? AllLogits { get; set; }

    public void Dispose()
    {
        foreach (var b in new[] { X, Normed, Q, K, V, Attention, Projected, Gate, Up, Logits, AllLogits })
        {
            b?.Dispose();
        }
    }
}

/// <summary>The transformer forward pass over backend ops.</summary>
internal static class LlamaForward
{
    /// <summary>
    /// Runs <paramref name="tokens"/> (positions <paramref name="startPosition"/>..) through the model, writing
    /// their keys and values into <paramref name="cache"/>. Writes the last row's logits [vocab] to
    /// <paramref name="logits"/>, or with <paramref name="allRows"/> every row's logits [T, vocab].
    /// </summary>
    public static void Forward(LlamaModel model, ForwardBuffers s, KvCacheStorage cache, ReadOnlySpan<int> tokens, int startPosition, Span<float> logits, bool allRows)
    {
        var b = model.Backend;
        var c = model.Config;
        int T = tokens.Length;
        int hidden = c.HiddenSize;

        // Token embeddings start the residual stream.
        b.Embed(model.Embedding, tokens, s.X);

        for (int layer = 0; layer < c.NumLayers; layer++)
        {
            var w = model.Layers[layer];

            // Attention: h = x + o_proj(Attn(RMSNorm1(x))).
            b.RmsNorm(s.X, w.InputNorm, s.Normed, T, hidden, c.RmsNormEps);
            b.Linear(w.QProj, s.Normed, s.Q, T);
            b.Linear(w.KProj, s.Normed, s.K, T);
            b.Linear(w.VProj, s.Normed, s.V, T);
            b.Rope(s.Q, T, c.NumHeads, c.HeadDim, startPosition, c.RopeTheta);
            b.Rope(s.K, T, c.NumKvHeads, c.HeadDim, startPosition, c.RopeTheta);
            b.StoreKv(cache, layer, s.K, s.V, startPosition, T);
            b.Attention(s.Q, cache, layer, s.Attention, c.NumHeads, startPosition, T);
            b.Linear(w.OProj, s.Attention, s.Projected, T);
            b.Add(s.X, s.Projected, T * hidden);

            // Feed-forward: out = h + down(silu(gate(n)) * up(n)), n = RMSNorm2(h).
            b.RmsNorm(s.X, w.PostAttentionNorm, s.Normed, T, hidden, c.RmsNormEps);
            b.Linear(w.GateProj, s.Normed, s.Gate, T);
            b.Linear(w.UpProj, s.Normed, s.Up, T);
            b.SiluMultiply(s.Gate, s.Up, T * c.IntermediateSize);
            b.Linear(w.DownProj, s.Gate, s.Projected, T);
            b.Add(s.X, s.Projected, T * hidden);
        }

        // Final norm and lm_head, for the last row only unless every position is wanted.
        if (allRows)
        {
            s.AllLogits ??= b.Allocate(s.MaxRows * c.VocabSize);
            b.RmsNorm(s.X, model.FinalNorm, s.Normed, T, hidden, c.RmsNormEps);
            b.Linear(model.LmHead, s.Normed, s.AllLogits, T);
            b.Download(s.AllLogits, 0, logits[..(T * c.VocabSize)]);
        }
        else
        {
            b.Copy(s.X, (T - 1) * hidden, s.Normed, 0, hidden);
            b.RmsNorm(s.Normed, model.FinalNorm, s.Normed, 1, hidden, c.RmsNormEps);
            b.Linear(model.LmHead, s.Normed, s.Logits, 1);
            b.Download(s.Logits, 0, logits[..c.VocabSize]);
        }
    }
}
