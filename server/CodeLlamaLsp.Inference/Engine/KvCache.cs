// The KV cache of one session together with the token ids whose keys and values it holds, which is what
// the prefix cache compares a new prompt against. Every session (CPU and CUDA) checks prompts and rewinds to
// the shared prefix here, so the prefix-cache rules are written once.
namespace CodeLlamaLsp.Inference.Engine;

/// <summary>Keys and values for positions 0..<see cref="Length"/>-1, and the ids that produced them.</summary>
public sealed class KvCache : IDisposable
{
    private readonly List<int> _tokens = [];

    internal KvCache(KvCacheStorage storage) => Storage = storage;

    /// <summary>Positions the cache can hold: the session's context length.</summary>
    public int Capacity => Storage.Capacity;

    /// <summary>Positions filled so far.</summary>
    public int Length => _tokens.Count;

    /// <summary>The token at each filled position.</summary>
    public IReadOnlyList<int> Tokens => _tokens;

    internal KvCacheStorage Storage { get; } // [layers, kv_heads, capacity, head_dim] x 2 on the backend

    /// <summary>How many leading ids of <paramref name="tokens"/> the cache already holds.</summary>
    public int CommonPrefixLength(IReadOnlyList<int> tokens)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        int n = Math.Min(tokens.Count, _tokens.Count);
        int i = 0;
        while (i < n && tokens[i] == _tokens[i])
        {
            i++;
        }

        return i;
    }

    public void Dispose() => Storage.Dispose();

    /// <summary>
    /// Throws <see cref="ArgumentException"/> unless <paramref name="prompt"/> has 1 to <see cref="Capacity"/> ids,
    /// each below <paramref name="vocabSize"/>.
    /// </summary>
    internal void CheckPrompt(IReadOnlyList<int> prompt, int vocabSize)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        if (prompt.Count == 0)
        {
            throw new ArgumentException("The prompt has no tokens.", nameof(prompt));
        }

        if (prompt.Count > Capacity)
        {
            throw new ArgumentException($"The prompt has {prompt.Count} tokens; the context holds {Capacity}.", nameof(prompt));
        }

        foreach (var id in prompt)
        {
            if ((uint)id >= (uint)vocabSize)
            {
                throw new ArgumentException($"Prompt token id {id} is outside the vocabulary of {vocabSize}.", nameof(prompt));
            }
        }
    }

    /// <summary>
    /// The prefix cache's rewind before a prompt: checks <paramref name="prompt"/> (<see cref="CheckPrompt"/>), keeps
    /// the longest prefix of it the cache holds and forgets the rest. The last prompt token is never kept: its logits
    /// choose the answer's first token, so it is always recomputed. Returns the positions kept; the caller runs
    /// prompt[kept..] and appends it.
    /// </summary>
    internal int RewindToSharedPrefix(IReadOnlyList<int> prompt, int vocabSize)
    {
        CheckPrompt(prompt, vocabSize);
        int kept = Math.Min(CommonPrefixLength(prompt), prompt.Count - 1);
        Truncate(kept);
        return kept;
    }

    /// <summary>Forgets positions from <paramref name="length"/> on; later writes overwrite them.</summary>
    internal void Truncate(int length) => _tokens.RemoveRange(length, _tokens.Count - length);

    internal void Append(ReadOnlySpan<int> tokens)
    {
        foreach (var t in tokens)
        {
            _tokens.Add(t);
        }
    }
}
