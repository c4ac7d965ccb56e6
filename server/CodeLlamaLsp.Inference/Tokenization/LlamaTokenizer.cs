// The CodeLlama / Llama 2 SentencePiece tokenizer, loaded from tokenizer.model through Microsoft.ML.Tokenizers.
// (First cut: the library's own BPE; Tokenization/ is where the sentencepiece-exact merge order lives.)
using Microsoft.ML.Tokenizers;

namespace CodeLlamaLsp.Inference.Tokenization;

/// <summary>The Llama SentencePiece BPE tokenizer.</summary>
public sealed class LlamaTokenizer : ITokenizer
{
    private readonly Microsoft.ML.Tokenizers.LlamaTokenizer _inner;

    private readonly string[] _pieces;

    private LlamaTokenizer(Microsoft.ML.Tokenizers.LlamaTokenizer inner)
    {
        _inner = inner;
        _pieces = new string[inner.Vocabulary.Count];
        foreach (var (piece, id) in inner.Vocabulary)
        {
            _pieces[id] = piece;
        }
    }

    public int VocabSize => _inner.Vocabulary.Count;

    public int BosId => _inner.BeginningOfSentenceId;

    public int EosId => _inner.EndOfSentenceId;

    /// <summary>Loads a SentencePiece tokenizer.model file.</summary>
    public static LlamaTokenizer Load(string tokenizerModelPath)
    {
        using var stream = File.OpenRead(tokenizerModelPath);
        return new LlamaTokenizer(Microsoft.ML.Tokenizers.LlamaTokenizer.Create(stream, addBeginOfSentence: false, addEndOfSentence: false));
    }

    public IReadOnlyList<int> Encode(string text, bool addDummyPrefix = true)
    {
        var ids = _inner.EncodeToIds(text, addBeginningOfSentence: false, addEndOfSentence: false, considerPreTokenization: true, considerNormalization: true);
        if (!addDummyPrefix && ids.Count > 0 && _pieces[ids[0]] == "\u2581")
        {
            return ids.Skip(1).ToArray();
        }

        return ids;
    }

    public string Decode(IEnumerable<int> ids) => _inner.Decode(ids) ?? string.Empty;

    public string IdToPiece(int id) => _pieces[id];
}
