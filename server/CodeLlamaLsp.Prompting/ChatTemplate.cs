// The Llama 2 chat template and the seed model's single-turn template (FACTS.md), encoded the way the
// model was trained: BOS as an id, "[INST]" markers as plain text.
using CodeLlamaLsp.Inference.Tokenization;

namespace CodeLlamaLsp.Prompting;

/// <summary>Instruct prompt formats.</summary>
public static class ChatTemplate
{
    /// <summary>The seed's instruction for new code; its answers come wrapped in ``` fences.</summary>
    public const string SeedInstruction =
        "Write code to solve the following coding problem that obeys the constraints and passes the example test cases. Please wrap your code answer using ```:";

    /// <summary>`[INST] &lt;&lt;SYS&gt;&gt;\n{system}\n&lt;&lt;/SYS&gt;&gt;\n\n{user} [/INST]`, without BOS.</summary>
    public static string InstructionText(string system, string user)
    {
        ArgumentNullException.ThrowIfNull(system);
        ArgumentNullException.ThrowIfNull(user);
        return system.Length == 0
            ? $"[INST] {user.Trim()} [/INST]"
            : $"[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user.Trim()} [/INST]";
    }

    /// <summary>One chat turn as ids (BOS first) and as text ("&lt;s&gt;" first).</summary>
    public static (IReadOnlyList<int> Ids, string Text) Chat(ITokenizer tokenizer, string system, string user)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        string text = InstructionText(system, user);
        var ids = new List<int> { tokenizer.BosId };
        ids.AddRange(tokenizer.Encode(text, addDummyPrefix: true));
        return (ids, "<s>" + text);
    }

    /// <summary>The seed's single-turn template: "[INST] {instruction}\n{prompt}\n[/INST]\n".</summary>
    public static (IReadOnlyList<int> Ids, string Text) SeedSingleTurn(ITokenizer tokenizer, string prompt)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(prompt);
        string text = $"[INST] {SeedInstruction}\n{prompt}\n[/INST]\n";
        var ids = new List<int> { tokenizer.BosId };
        ids.AddRange(tokenizer.Encode(text, addDummyPrefix: true));
        return (ids, "<s>" + text);
    }
}
