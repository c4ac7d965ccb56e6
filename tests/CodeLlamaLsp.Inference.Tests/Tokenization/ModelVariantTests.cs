// Checks tokenizer models that differ from the Llama 2 fixture: a CodeLlama 7B/13B-style vocabulary (32016
// pieces with fill-in-the-middle pieces) and one without byte fallback. Both are the fixture with protobuf
// fields appended (a repeated piece field adds pieces; a repeated trainer_spec field merges into the first).
using System.Text;
using CodeLlamaLsp.Inference.Tokenization;

namespace CodeLlamaLsp.Inference.Tests.Tokenization;

public class ModelVariantTests
{
    private const int ControlType = 3;

    private static readonly Lazy<LlamaTokenizer> Extended = new(BuildExtendedTokenizer);

    [Test]
    public void Infill_ids_are_found_by_piece()
    {
        var tokenizer = Extended.Value;

        Assert.Multiple(() =>
        {
            Assert.That(tokenizer.VocabSize, Is.EqualTo(32016));
            Assert.That(tokenizer.Infill, Is.EqualTo(new InfillTokens(
                InfillTokens.CodeLlamaPrefixId, InfillTokens.CodeLlamaSuffixId, InfillTokens.CodeLlamaMiddleId, InfillTokens.CodeLlamaEndOfTextId)));
            Assert.That(tokenizer.TryGetSpecialId("\u2581<SUF>", out var suffix) ? suffix : -1, Is.EqualTo(32008));
            Assert.That(tokenizer.IdToPiece(32010), Is.EqualTo("\u2581<EOT>"));
        });
    }

    [Test]
    public void Infill_pieces_in_text_stay_text_and_decode_to_nothing()
    {
        var tokenizer = Extended.Value;
        var ids = tokenizer.Encode("x <PRE> y <SUF> <MID> <EOT>");

        Assert.That(ids, Has.None.GreaterThanOrEqualTo(32000));
        Assert.That(tokenizer.Decode([32007, .. tokenizer.Encode("def f():"), 32008, 32009]), Is.EqualTo("def f():"));
    }

    [Test]
    public void Extra_pieces_do_not_change_ordinary_encoding()
    {
        foreach (var golden in TokenizerFixtures.Cases)
        {
            Assert.That(Extended.Value.Encode(golden.Text), Is.EqualTo(golden.Ids), golden.Label);
        }
    }

    [Test]
    public void Without_byte_fallback_a_run_of_unknown_characters_is_one_unk()
    {
        // trainer_spec (field 2) { byte_fallback (field 35) = false }
        var bytes = File.ReadAllBytes(TokenizerFixtures.ModelPath).Concat(new byte[] { 0x12, 0x03, 0x98, 0x02, 0x00 }).ToArray();
        var tokenizer = LlamaTokenizer.FromModel(SentencePieceModel.Parse(bytes));

        var ids = tokenizer.Encode("a\n🦙🦙 b");

        Assert.That(ids.Count(id => id == tokenizer.UnkId), Is.EqualTo(1));
        Assert.That(ids, Has.None.InRange(3, 258));
        Assert.That(tokenizer.Decode(ids), Is.EqualTo("a \u2047  b"));
        Assert.That(tokenizer.Encode("Hello world"), Is.EqualTo(TokenizerFixtures.Tokenizer.Encode("Hello world")));
    }

    private static LlamaTokenizer BuildExtendedTokenizer()
    {
        var bytes = new List<byte>(File.ReadAllBytes(TokenizerFixtures.ModelPath));
        for (var id = 32000; id < 32016; id++)
        {
            var piece = id switch
            {
                32007 => InfillTokens.PrefixPiece,
                32008 => InfillTokens.SuffixPiece,
                32009 => InfillTokens.MiddlePiece,
                32010 => InfillTokens.EndOfTextPiece,
                _ => $"<extra_{id}>",
            };
            bytes.AddRange(ModelPieceField(piece, 0f, ControlType));
        }

        return LlamaTokenizer.FromModel(SentencePieceModel.Parse(bytes.ToArray()));
    }

    /// <summary>ModelProto field 1: a SentencePiece message {1: piece, 2: score, 3: type}.</summary>
    private static byte[] ModelPieceField(string piece, float score, int type)
    {
        var text = Encoding.UTF8.GetBytes(piece);
        var message = new List<byte> { 0x0A, (byte)text.Length };
        message.AddRange(text);
        message.Add(0x15);
        message.AddRange(BitConverter.GetBytes(score));
        message.Add(0x18);
        message.Add((byte)type);
        return [0x0A, (byte)message.Count, .. message];
    }
}
