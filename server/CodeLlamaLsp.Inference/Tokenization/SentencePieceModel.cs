// Reads a sentencepiece tokenizer.model (a protobuf ModelProto) into pieces, scores, types and the few
// normalizer/trainer settings encoding depends on, with no protobuf library: the format is small and stable.
using System.Buffers.Binary;
using System.Text;

namespace CodeLlamaLsp.Inference.Tokenization;

/// <summary>The type of a vocabulary piece, with sentencepiece's enum values.</summary>
public enum SentencePieceType
{
    /// <summary>An ordinary piece produced by BPE merges.</summary>
    Normal = 1,

    /// <summary>The unknown piece (&lt;unk&gt;).</summary>
    Unknown = 2,

    /// <summary>A control piece such as &lt;s&gt; or &lt;/s&gt;: never produced from text, decodes to nothing.</summary>
    Control = 3,

    /// <summary>A piece matched verbatim in input text and never merged further.</summary>
    UserDefined = 4,

    /// <summary>A piece that merges may pass through but that is split back before output.</summary>
    Unused = 5,

    /// <summary>A byte-fallback piece &lt;0xNN&gt;.</summary>
    Byte = 6,
}

/// <summary>The parsed contents of a sentencepiece model file.</summary>
public sealed class SentencePieceModel
{
    private const int ModelTypeBpe = 2;

    private SentencePieceModel(string[] pieces, float[] scores, SentencePieceType[] types)
    {
        Pieces = pieces;
        Scores = scores;
        Types = types;
    }

    public IReadOnlyList<string> Pieces { get; }

    public IReadOnlyList<float> Scores { get; }

    public IReadOnlyList<SentencePieceType> Types { get; }

    /// <summary>sentencepiece's TrainerSpec.model_type (1 unigram, 2 BPE, 3 word, 4 char).</summary>
    public int ModelType { get; private set; } = 1;

    public bool ByteFallback { get; private set; }

    public bool AddDummyPrefix { get; private set; } = true;

    public bool RemoveExtraWhitespaces { get; private set; } = true;

    public bool EscapeWhitespaces { get; private set; } = true;

    public bool TreatWhitespaceAsSuffix { get; private set; }

    /// <summary>The normalizer rule name ("identity" for Llama).</summary>
    public string NormalizerName { get; private set; } = string.Empty;

    public bool HasPrecompiledCharsMap { get; private set; }

    /// <summary>What an &lt;unk&gt; id decodes to (" ⁇ " unless the model says otherwise).</summary>
    public string UnknownSurface { get; private set; } = " \u2047 ";

    public string UnknownPiece { get; private set; } = "<unk>";

    public string BosPiece { get; private set; } = "<s>";

    public string EosPiece { get; private set; } = "</s>";

    public bool IsBpe => ModelType == ModelTypeBpe;

    /// <summary>Cap on tokenizer.model (Llama's is 500 KB; the largest sentencepiece vocabularies are a few MB).</summary>
    public const int MaxFileBytes = 64 * 1024 * 1024;

    /// <summary>Parses a tokenizer.model file; errors name the file and what was malformed.</summary>
    public static SentencePieceModel Load(string path)
    {
        byte[] bytes;
        try
        {
            bytes = Loading.BoundedFile.ReadAllBytes(path, MaxFileBytes);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidDataException($"cannot read tokenizer model '{path}': {e.Message}", e);
        }

        try
        {
            return Parse(bytes);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"'{path}' is not a valid sentencepiece model: {e.Message}", e);
        }
    }

    /// <summary>Parses the bytes of a tokenizer.model.</summary>
    public static SentencePieceModel Parse(ReadOnlySpan<byte> bytes)
    {
        var pieces = new List<string>();
        var scores = new List<float>();
        var types = new List<SentencePieceType>();
        var trainerSpecs = new List<(int Start, int Length)>();
        var normalizerSpecs = new List<(int Start, int Length)>();

        var reader = new ProtoReader(bytes);
        while (reader.Next(out var field, out var wire))
        {
            switch (field, wire)
            {
                case (1, ProtoReader.WireLengthDelimited):
                    ReadPiece(reader.ReadBytes(), pieces.Count, out var piece, out var score, out var type);
                    pieces.Add(piece);
                    scores.Add(score);
                    types.Add(type);
                    break;
                case (2, ProtoReader.WireLengthDelimited):
                    trainerSpecs.Add(reader.ReadRange());
                    break;
                case (3, ProtoReader.WireLengthDelimited):
                    normalizerSpecs.Add(reader.ReadRange());
                    break;
                default:
                    reader.Skip(wire);
                    break;
            }
        }

        if (pieces.Count == 0)
        {
            throw new InvalidDataException("the model has no pieces");
        }

        // A message field that occurs more than once is merged in order, as protobuf parsers do.
        var model = new SentencePieceModel([.. pieces], [.. scores], [.. types]);
        foreach (var (start, length) in trainerSpecs)
        {
            model.ReadTrainerSpec(bytes.Slice(start, length));
        }

        foreach (var (start, length) in normalizerSpecs)
        {
            model.ReadNormalizerSpec(bytes.Slice(start, length));
        }

        return model;
    }

    private static void ReadPiece(ReadOnlySpan<byte> message, int index, out string piece, out float score, out SentencePieceType type)
    {
        string? text = null;
        score = 0f;
        type = SentencePieceType.Normal;
        var reader = new ProtoReader(message);
        while (reader.Next(out var field, out var wire))
        {
            switch (field, wire)
            {
                case (1, ProtoReader.WireLengthDelimited):
                    text = reader.ReadString();
                    break;
                case (2, ProtoReader.WireFixed32):
                    score = reader.ReadFloat();
                    break;
                case (3, ProtoReader.WireVarint):
                    var raw = reader.ReadVarint();
                    if (raw is < 1 or > 6)
                    {
                        throw new InvalidDataException($"piece {index} has unknown type {raw}");
                    }

                    type = (SentencePieceType)raw;
                    break;
                default:
                    reader.Skip(wire);
                    break;
            }
        }

        piece = string.IsNullOrEmpty(text) ? throw new InvalidDataException($"piece {index} has no text") : text;
    }

    private void ReadTrainerSpec(ReadOnlySpan<byte> message)
    {
        var reader = new ProtoReader(message);
        while (reader.Next(out var field, out var wire))
        {
            switch (field, wire)
            {
                case (3, ProtoReader.WireVarint):
                    ModelType = (int)reader.ReadVarint();
                    break;
                case (24, ProtoReader.WireVarint):
                    TreatWhitespaceAsSuffix = reader.ReadVarint() != 0;
                    break;
                case (35, ProtoReader.WireVarint):
                    ByteFallback = reader.ReadVarint() != 0;
                    break;
                case (44, ProtoReader.WireLengthDelimited):
                    UnknownSurface = reader.ReadString();
                    break;
                case (45, ProtoReader.WireLengthDelimited):
                    UnknownPiece = reader.ReadString();
                    break;
                case (46, ProtoReader.WireLengthDelimited):
                    BosPiece = reader.ReadString();
                    break;
                case (47, ProtoReader.WireLengthDelimited):
                    EosPiece = reader.ReadString();
                    break;
                default:
                    reader.Skip(wire);
                    break;
            }
        }
    }

    private void ReadNormalizerSpec(ReadOnlySpan<byte> message)
    {
        var reader = new ProtoReader(message);
        while (reader.Next(out var field, out var wire))
        {
            switch (field, wire)
            {
                case (1, ProtoReader.WireLengthDelimited):
                    NormalizerName = reader.ReadString();
                    break;
                case (2, ProtoReader.WireLengthDelimited):
                    HasPrecompiledCharsMap = reader.ReadBytes().Length > 0;
                    break;
                case (3, ProtoReader.WireVarint):
                    AddDummyPrefix = reader.ReadVarint() != 0;
                    break;
                case (4, ProtoReader.WireVarint):
                    RemoveExtraWhitespaces = reader.ReadVarint() != 0;
                    break;
                case (5, ProtoReader.WireVarint):
                    EscapeWhitespaces = reader.ReadVarint() != 0;
                    break;
                default:
                    reader.Skip(wire);
                    break;
            }
        }
    }

    /// <summary>A forward-only reader of protobuf wire format over a byte span.</summary>
    private ref struct ProtoReader
    {
        public const int WireVarint = 0;
        public const int WireFixed64 = 1;
        public const int WireLengthDelimited = 2;
        public const int WireFixed32 = 5;

        private readonly ReadOnlySpan<byte> _data;
        private int _pos;

        public ProtoReader(ReadOnlySpan<byte> data)
        {
            _data = data;
            _pos = 0;
        }

        public bool Next(out int field, out int wire)
        {
            if (_pos >= _data.Length)
            {
                field = 0;
                wire = 0;
                return false;
            }

            var key = ReadVarint();
            field = (int)(key >> 3);
            wire = (int)(key & 7);
            if (field == 0)
            {
                throw new InvalidDataException($"field number 0 at byte {_pos}");
            }

            return true;
        }

        public ulong ReadVarint()
        {
            ulong result = 0;
            for (var shift = 0; shift < 64; shift += 7)
            {
                if (_pos >= _data.Length)
                {
                    throw new InvalidDataException("truncated varint");
                }

                var b = _data[_pos++];
                result |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80)
                {
                    return result;
                }
            }

            throw new InvalidDataException($"varint longer than 10 bytes at byte {_pos}");
        }

        public ReadOnlySpan<byte> ReadBytes()
        {
            var length = ReadVarint();
            if (length > (ulong)(_data.Length - _pos))
            {
                throw new InvalidDataException($"length {length} at byte {_pos} runs past the end ({_data.Length} bytes)");
            }

            var slice = _data.Slice(_pos, (int)length);
            _pos += (int)length;
            return slice;
        }

        /// <summary>Reads a length-delimited field and returns where it lies in the data.</summary>
        public (int Start, int Length) ReadRange()
        {
            var slice = ReadBytes();
            return (_pos - slice.Length, slice.Length);
        }

        public string ReadString() => Encoding.UTF8.GetString(ReadBytes());

        public float ReadFloat()
        {
            var bits = BinaryPrimitives.ReadInt32LittleEndian(Take(4));
            return BitConverter.Int32BitsToSingle(bits);
        }

        public void Skip(int wire)
        {
            switch (wire)
            {
                case WireVarint:
                    ReadVarint();
                    break;
                case WireFixed64:
                    Take(8);
                    break;
                case WireLengthDelimited:
                    ReadBytes();
                    break;
                case WireFixed32:
                    Take(4);
                    break;
                default:
                    throw new InvalidDataException($"unsupported protobuf wire type {wire} at byte {_pos}");
            }
        }

        private ReadOnlySpan<byte> Take(int count)
        {
            if (_data.Length - _pos < count)
            {
                throw new InvalidDataException($"truncated field at byte {_pos}");
            }

            var slice = _data.Slice(_pos, count);
            _pos += count;
            return slice;
        }
    }
}
