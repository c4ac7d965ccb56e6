// Turns generated ids into streamed text for InProcessGenerator: through the tokenizer's streaming
// detokenizer when there is one, otherwise by decoding the whole answer and emitting what is new.
using CodeLlamaLsp.Inference.Tokenization;

namespace CodeLlamaLsp.Inference.Engine;

/// <summary>Incremental id-to-text conversion that never emits half a character.</summary>
internal interface ITokenTextStream
{
    /// <summary>Adds one generated id; returns the text it completes.</summary>
    string Push(int id);

    /// <summary>Ends the stream and returns any text still held back.</summary>
    string Finish();
}

/// <summary>For models without a tokenizer: ids only.</summary>
internal sealed class NoTextStream : ITokenTextStream
{
    public string Push(int id) => string.Empty;

    public string Finish() => string.Empty;
}

/// <summary>The Llama tokenizer's own streaming detokenizer (O(1) per id, sentencepiece's decoding rules).</summary>
internal sealed class DetokenizerTextStream(StreamingDetokenizer detokenizer) : ITokenTextStream
{
    public string Push(int id) => detokenizer.Push(id);

    public string Finish() => detokenizer.Finish();
}

/// <summary>
/// Works with any <see cref="ITokenizer"/>: decodes all answer ids each step and emits the new suffix,
/// holding back a trailing U+FFFD (an incomplete UTF-8 character). Decode drops the first piece's leading
/// space, which a continuation keeps, so it is put back.
/// </summary>
internal sealed class DecodeDiffTextStream(ITokenizer tokenizer) : ITokenTextStream
{
    private readonly List<int> _ids = [];
    private int _emitted;

    public string Push(int id)
    {
        _ids.Add(id);
        var text = Text();
        int end = text.Length;
        while (end > _emitted && text[end - 1] == '\uFFFD')
        {
            end--;
        }

        return Take(text, end);
    }

    public string Finish()
    {
        var text = Text();
        return Take(text, text.Length);
    }

    private string Take(string text, int end)
    {
        if (end <= _emitted)
        {
            return string.Empty;
        }

        var piece = text[_emitted..end];
        _emitted = end;
        return piece;
    }

    private string Text()
    {
        var text = tokenizer.Decode(_ids);
        return tokenizer.IdToPiece(_ids[0]).StartsWith('\u2581') && !text.StartsWith(' ') ? " " + text : text;
    }
}
