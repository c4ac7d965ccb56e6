// Counts tokens line by line with the real tokenizer, so budgets are measured without tokenizing a whole
// file. SentencePiece never merges across a newline (it is a byte-fallback token of its own), so the
// tokens of joined lines are the sum of the lines' tokens plus one per newline.
using CodeLlamaLsp.Inference.Tokenization;

namespace CodeLlamaLsp.Prompting;

/// <summary>Memoized per-line token counts for one request.</summary>
internal sealed class LineTokenCounter(ITokenizer tokenizer)
{
    private readonly Dictionary<string, int> _counts = new(StringComparer.Ordinal);

    public ITokenizer Tokenizer => tokenizer;

    /// <summary>Tokens of a line's content, not counting its newline.</summary>
    public int Count(string line)
    {
        if (line.Length == 0)
        {
            return 0;
        }

        if (!_counts.TryGetValue(line, out int count))
        {
            count = tokenizer.Encode(line, addDummyPrefix: false).Count;
            _counts[line] = count;
        }

        return count;
    }

    /// <summary>Tokens of a line plus the newline that joins it to its neighbour.</summary>
    public int CountWithNewline(string line) => Count(line) + 1;

    /// <summary>Tokens of a whole text segment encoded the way the prompt encodes it.</summary>
    public int CountText(string text, bool addDummyPrefix) => text.Length == 0 ? 0 : tokenizer.Encode(text, addDummyPrefix).Count;
}
