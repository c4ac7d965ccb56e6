// The KV cache of one session together with the token ids whose keys and values it holds, which is what
// the prefix cache compares a new prompt against.
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
