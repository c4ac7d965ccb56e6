// Checks that a CodeLlama 7B/13B-style vocabulary (32016 pieces with fill-in-the-middle pieces) loads and
// exposes its infill ids. The model is the Llama 2 fixture with 16 pieces appended in protobuf form.
using System.Text;
using CodeLlamaLsp.Inference.Tokenization;

namespace CodeLlamaLsp.Inference.Tests.Tokenization;

public class InfillVocabularyTests
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
