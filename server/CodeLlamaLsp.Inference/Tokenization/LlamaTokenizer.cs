// The CodeLlama / Llama 2 SentencePiece tokenizer, reimplemented to match the sentencepiece library id for id.
// Microsoft.ML.Tokenizers is not used: its BPE merge order differs from sentencepiece on repeated characters
// and deep indentation, and reading the model file and decoding ourselves is short and exact.
using System.Text;

namespace CodeLlamaLsp.Inference.Tokenization;

/// <summary>The ids of CodeLlama's fill-in-the-middle pieces (7B/13B vocabularies of 32016 pieces only).</summary>
public sealed record InfillTokens(int PrefixId, int SuffixId, int MiddleId, int EndOfTextId)
{
    public const string PrefixPiece = "\u2581<PRE>";
    public const string SuffixPiece = "\u2581<SUF>";
    public const string MiddlePiece = "\u2581<MID>";
    public const string EndOfTextPiece = "\u2581<EOT>";

    /// <summary>The ids in CodeLlama 7B/13B's tokenizer.model (32007..32010).</summary>
    public const int CodeLlamaPrefixId = 32007;
    public const int CodeLlamaSuffixId = 32008;
    public const int CodeLlamaMiddleId = 32009;
    public const int CodeLlamaEndOfTextId = 32010;
}

/// <summary>The Llama SentencePiece BPE tokenizer (byte fallback, dummy prefix, whitespace kept).</summary>
public sealed class LlamaTokenizer : ITokenizer
{
    private const char SpaceSymbol = '\u2581';

    private readonly string[] _pieces;
    private readonly SentencePieceType[] _types;
    private readonly Dictionary<string, int> _idByPiece;
    private readonly SentencePieceBpeEncoder _encoder;
    private readonly bool _modelAddsDummyPrefix;
    private readonly bool _escapeWhitespaces;

    private LlamaTokenizer(SentencePieceModel model, string source)
    {
        if (!model.IsBpe)
        {
            throw new NotSupportedException($"{source}: sentencepiece model type {model.ModelType} is not BPE (2); only Llama-style BPE models are supported");
        }

        if (model.HasPrecompiledCharsMap || model.RemoveExtraWhitespaces || model.TreatWhitespaceAsSuffix)
        {
            throw new NotSupportedException(
                $"{source}: normalizer '{model.NormalizerName}' (charsmap={model.HasPrecompiledCharsMap}, remove_extra_whitespaces={model.RemoveExtraWhitespaces}, " +
                $"treat_whitespace_as_suffix={model.TreatWhitespaceAsSuffix}) is not supported; Llama tokenizers use the identity normalizer");
        }

        _pieces = [.. model.Pieces];
        _types = [.. model.Types];
        _modelAddsDummyPrefix = model.AddDummyPrefix;
        _escapeWhitespaces = model.EscapeWhitespaces;
        UnknownSurface = model.UnknownSurface;

        _idByPiece = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var id = 0; id < _pieces.Length; id++)
        {
            _idByPiece.TryAdd(_pieces[id], id);
        }

        UnkId = FindPiece(model.UnknownPiece, SentencePieceType.Unknown, source);
        BosId = FindPiece(model.BosPiece, SentencePieceType.Control, source);
        EosId = FindPiece(model.EosPiece, SentencePieceType.Control, source);
        _encoder = new SentencePieceBpeEncoder(model, UnkId);

        if (_idByPiece.TryGetValue(InfillTokens.PrefixPiece, out var pre)
            && _idByPiece.TryGetValue(InfillTokens.SuffixPiece, out var suf)
            && _idByPiece.TryGetValue(InfillTokens.MiddlePiece, out var mid)
            && _idByPiece.TryGetValue(InfillTokens.EndOfTextPiece, out var eot))
        {
            Infill = new InfillTokens(pre, suf, mid, eot);
        }
    }

    public int VocabSize => _pieces.Length;

    public int BosId { get; }

    public int EosId { get; }

    public int UnkId { get; }

    /// <summary>The fill-in-the-middle ids, or null when the vocabulary has none (34B, Python, Llama 2).</summary>
    public InfillTokens? Infill { get; }

    /// <summary>What an &lt;unk&gt; id decodes to.</summary>
    internal string UnknownSurface { get; }

    /// <summary>Whether decoding at the start of text drops the first piece's "▁" (the model's add_dummy_prefix).</summary>
    internal bool StripsDummyPrefix => _modelAddsDummyPrefix;

    /// <summary>Loads a SentencePiece tokenizer.model file.</summary>
    public static LlamaTokenizer Load(string tokenizerModelPath) =>
        new(SentencePieceModel.Load(tokenizerModelPath), tokenizerModelPath);

    /// <summary>Builds a tokenizer from an already parsed model.</summary>
    public static LlamaTokenizer FromModel(SentencePieceModel model) => new(model, "tokenizer model");

    public IReadOnlyList<int> Encode(string text, bool addDummyPrefix = true)
    {
        var ids = new List<int>(text.Length / 3 + 4);
        EncodeTo(text, addDummyPrefix, ids);
        return ids.ToArray();
    }

    /// <summary>Appends the ids of <paramref name="text"/> to <paramref name="output"/> (no BOS/EOS).</summary>
    public void EncodeTo(string text, bool addDummyPrefix, List<int> output)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(output);
        if (text.Length == 0)
        {
            return;
        }

        _encoder.Encode(Normalize(text, addDummyPrefix && _modelAddsDummyPrefix), output);
    }

    public string Decode(IEnumerable<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var text = new StringBuilder();
        var detokenizer = new StreamingDetokenizer(this, isStartOfText: true);
        foreach (var id in ids)
        {
            detokenizer.Push(id, text);
        }

        detokenizer.Finish(text);
        return text.ToString();
    }

    public string IdToPiece(int id) => _pieces[CheckId(id)];

    public SentencePieceType GetPieceType(int id) => _types[CheckId(id)];

    /// <summary>True for pieces that never come from text and decode to nothing or "⁇" (&lt;s&gt;, &lt;/s&gt;, &lt;unk&gt;).</summary>
    public bool IsControlOrUnknown(int id) => GetPieceType(id) is SentencePieceType.Control or SentencePieceType.Unknown;

    /// <summary>
    /// Finds the id of a whole vocabulary piece by its exact text, whatever its type (for example "&lt;s&gt;"
    /// or "▁&lt;PRE&gt;"). Special ids must be appended as ids: Encode never produces control pieces from text.
    /// </summary>
    public bool TryGetSpecialId(string piece, out int id) => _idByPiece.TryGetValue(piece, out id);

    internal int CheckId(int id) =>
        (uint)id < (uint)_pieces.Length ? id : throw new ArgumentOutOfRangeException(nameof(id), id, $"token id outside the vocabulary of {_pieces.Length} pieces");

    private string Normalize(string text, bool addDummyPrefix)
    {
        var builder = new StringBuilder(text.Length + 1);
        if (addDummyPrefix)
        {
            builder.Append(SpaceSymbol);
        }

        builder.Append(text);
        if (_escapeWhitespaces)
        {
            builder.Replace(' ', SpaceSymbol);
        }

        return builder.ToString();
    }

    private int FindPiece(string piece, SentencePieceType expected, string source)
    {
        if (!_idByPiece.TryGetValue(piece, out var id) || _types[id] != expected)
        {
            throw new InvalidDataException($"{source}: expected a {expected} piece '{piece}' in the vocabulary");
        }

        return id;
    }
}
