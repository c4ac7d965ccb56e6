// What prompts and post-processing need to know about a language: its fence name, comments, doc-comment
// style and whether blocks are delimited by braces or by indentation.
namespace CodeLlamaLsp.Prompting;

/// <summary>How documentation comments are written in a language.</summary>
public enum DocCommentStyle
{
    /// <summary>A docstring as the first statement of the body (Python).</summary>
    Docstring,

    /// <summary>Lines starting with `///` above the item (C#, Rust).</summary>
    TripleSlash,

    /// <summary>A `/** ... */` block above the item (TypeScript, JavaScript, Java, C, C++).</summary>
    SlashStarStar,

    /// <summary>Line comments above the item (Go, shell, ...).</summary>
    LineComment,
}

/// <summary>Per-language facts; <see cref="For"/> falls back to a brace language with `//` comments.</summary>
public sealed record LanguageInfo(string Id, string DisplayName, string FenceName, string LineComment, DocCommentStyle DocStyle, bool UsesBraces, string TestFramework)
{
    private static readonly Dictionary<string, LanguageInfo> Known = new(StringComparer.OrdinalIgnoreCase)
    {
        ["python"] = new("python", "Python", "python", "#", DocCommentStyle.Docstring, false, "pytest"),
        ["csharp"] = new("csharp", "C#", "csharp", "//", DocCommentStyle.TripleSlash, true, "NUnit"),
        ["typescript"] = new("typescript", "TypeScript", "typescript", "//", DocCommentStyle.SlashStarStar, true, "the project's test framework (Jest-style describe/it)"),
        ["typescriptreact"] = new("typescriptreact", "TypeScript (React)", "tsx", "//", DocCommentStyle.SlashStarStar, true, "the project's test framework (Jest-style describe/it)"),
        ["javascript"] = new("javascript", "JavaScript", "javascript", "//", DocCommentStyle.SlashStarStar, true, "the project's test framework (Jest-style describe/it)"),
        ["javascriptreact"] = new("javascriptreact", "JavaScript (React)", "jsx", "//", DocCommentStyle.SlashStarStar, true, "the project's test framework (Jest-style describe/it)"),
        ["rust"] = new("rust", "Rust", "rust", "//", DocCommentStyle.TripleSlash, true, "#[cfg(test)] with #[test] functions"),
        ["go"] = new("go", "Go", "go", "//", DocCommentStyle.LineComment, true, "the testing package"),
        ["java"] = new("java", "Java", "java", "//", DocCommentStyle.SlashStarStar, true, "JUnit 5"),
        ["c"] = new("c", "C", "c", "//", DocCommentStyle.SlashStarStar, true, "plain assert-based test functions"),
        ["cpp"] = new("cpp", "C++", "cpp", "//", DocCommentStyle.SlashStarStar, true, "GoogleTest"),
        ["shellscript"] = new("shellscript", "shell", "bash", "#", DocCommentStyle.LineComment, false, "bats"),
        ["ruby"] = new("ruby", "Ruby", "ruby", "#", DocCommentStyle.LineComment, false, "RSpec"),
        ["lua"] = new("lua", "Lua", "lua", "--", DocCommentStyle.LineComment, false, "busted"),
    };

    /// <summary>The facts for an LSP language id.</summary>
    public static LanguageInfo For(string languageId)
    {
        ArgumentNullException.ThrowIfNull(languageId);
        return Known.TryGetValue(languageId, out var info)
            ? info
            : new LanguageInfo(languageId, languageId, languageId, "//", DocCommentStyle.LineComment, true, "the project's test framework");
    }
}
