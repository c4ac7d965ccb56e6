// User-facing knobs for prompt construction (the `promptMode`, `maxTokens`, `temperature` settings and the
// budget shares). Defaults favour latency: a 34B model prefills a few thousand tokens quickly, not 16k.
namespace CodeLlamaLsp.Prompting;

/// <summary>How completions are asked for.</summary>
public enum PromptMode
{
    /// <summary>Infilling when the model has the infilling tokens, instruct otherwise.</summary>
    Auto,

    /// <summary>An instruct conversation whose answer is primed with the code before the cursor.</summary>
    Instruct,

    /// <summary>PSM fill-in-the-middle with the CodeLlama infilling tokens (7B/13B checkpoints).</summary>
    Infill,
}

/// <summary>Settings for completion prompts; every value has a sensible default.</summary>
public sealed record PromptSettings
{
    public PromptMode Mode { get; init; } = PromptMode.Auto;

    /// <summary>
    /// Upper bound on prompt tokens, below the model's window, to keep the first suggestion in a file quick:
    /// a cold prompt is prefilled whole before the first token (later keystrokes reuse the cached head). Engines
    /// that know their speed replace this default with their own budget (the CUDA engine: 3,584 with cuBLAS, 2,048
    /// without, docs/performance.md); peers cap lower still (Continue: 1,024).
    /// </summary>
    public int MaxPromptTokens { get; init; } = 2048;

    /// <summary>Tokens reserved for a multi-line answer (also its MaxNewTokens).</summary>
    public int MaxNewTokens { get; init; } = 128;

    /// <summary>Tokens allowed for a single-line answer.</summary>
    public int MaxNewTokensSingleLine { get; init; } = 48;

    /// <summary>
    /// Sampling temperature for completions; 0 (the default) is greedy, so the same code always gets the same
    /// suggestion (no flicker while typing, typed-through suggestions stay valid) and the GPU keeps token
    /// selection inside the captured decode step. Code actions sample at their own temperature.
    /// </summary>
    public float Temperature { get; init; }

    /// <summary>Share of the code budget that the code after the cursor may take.</summary>
    public double SuffixShare { get; init; } = 0.25;

    /// <summary>Share of the code budget that snippets from other documents may take (when there are any).</summary>
    public double SnippetShare { get; init; } = 0.15;

    /// <summary>Hard cap on snippet tokens, whatever the share says.</summary>
    public int MaxSnippetTokens { get; init; } = 768;

    public int MaxSnippets { get; init; } = 3;

    /// <summary>Lines per snippet window.</summary>
    public int SnippetLines { get; init; } = 20;

    /// <summary>
    /// The first line of the prefix window is a multiple of this, so the window does not slide with every
    /// keystroke and the engine's prefix cache keeps hitting.
    /// </summary>
    public int PrefixAnchorLines { get; init; } = 32;

    /// <summary>Reads the `promptMode` setting ("auto" | "instruct" | "infill"); null or empty means auto.</summary>
    public static PromptMode ParseMode(string? value) => value?.Trim().ToUpperInvariant() switch
    {
        null or "" or "AUTO" => PromptMode.Auto,
        "INSTRUCT" => PromptMode.Instruct,
        "INFILL" => PromptMode.Infill,
        _ => throw new ArgumentException($"promptMode must be auto, instruct or infill, not '{value}'.", nameof(value)),
    };
}
