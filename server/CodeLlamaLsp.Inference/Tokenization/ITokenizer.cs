// The tokenizer contract that prompt building and the engine share. Budgets are measured with the
// model's own tokenizer, so the prompt builder sees the same ids the model will.
namespace CodeLlamaLsp.Inference.Tokenization;

/// <summary>A SentencePiece-style tokenizer with the Llama special ids.</summary>
public interface ITokenizer
{
    int VocabSize { get; }

    int BosId { get; }

    int EosId { get; }

    /// <summary>
    /// Encodes text exactly as sentencepiece does. <paramref name="addDummyPrefix"/> adds the leading
    /// "▁" that sentencepiece puts before every encode call; pass false for a segment that continues
    /// text (for example the suffix in PSM infilling). BOS is never added here: callers add ids.
    /// </summary>
    IReadOnlyList<int> Encode(string text, bool addDummyPrefix = true);

    /// <summary>Decodes ids to text, dropping special tokens and the dummy-prefix space of the first piece.</summary>
    string Decode(IEnumerable<int> ids);

    /// <summary>The vocabulary piece for an id (for example "▁def" or "&lt;0x0A&gt;").</summary>
    string IdToPiece(int id);
}
