// Small syntactic judgements shared by prompts and post-processing: does a line open a block, and what is
// the bracket balance of a piece of code (strings and line comments skipped roughly).
namespace CodeLlamaLsp.Prompting;

/// <summary>Language-agnostic block and bracket heuristics.</summary>
internal static class BlockSyntax
{
    private static readonly string[] Openers = ["{", "(", "[", ":", "=>", "->", " do", " then", "\"\"\"", "'''"];

    /// <summary>True when a line (or the text before the cursor) ends with something that opens a block.</summary>
    public static bool EndsWithOpener(string text)
    {
        string trimmed = text.TrimEnd();
        if (trimmed.Length == 0)
        {
            return false;
        }

        return Openers.Any(o => trimmed.EndsWith(o, StringComparison.Ordinal));
    }

    public static bool IsOpenBracket(char c) => c is '(' or '[' or '{';

    public static bool IsCloseBracket(char c) => c is ')' or ']' or '}';

    public static char Matching(char close) => close switch
    {
        ')' => '(',
        ']' => '[',
        '}' => '{',
        _ => close,
    };

    /// <summary>Openers minus closers per bracket kind, outside string literals.</summary>
    public static (int Round, int Square, int Curly) Balance(string code)
    {
        int round = 0, square = 0, curly = 0;
        char quote = '\0';
        for (int i = 0; i < code.Length; i++)
        {
            char c = code[i];
            if (quote != '\0')
            {
                if (c == '\\')
                {
                    i++;
                }
                else if (c == quote || c == '\n')
                {
                    quote = '\0';
                }

                continue;
            }

            switch (c)
            {
                case '"' or '\'' or '`':
                    quote = c;
                    break;
                case '(':
                    round++;
                    break;
                case ')':
                    round--;
                    break;
                case '[':
                    square++;
                    break;
                case ']':
                    square--;
                    break;
                case '{':
                    curly++;
                    break;
                case '}':
                    curly--;
                    break;
            }
        }

        return (round, square, curly);
    }
}
