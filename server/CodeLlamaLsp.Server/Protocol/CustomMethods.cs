// Every method, command and notification that codellama-lsp adds to LSP, named once. docs/lsp-extensions.md
// describes them and extension/src/protocol.ts mirrors them.
namespace CodeLlamaLsp.Server.Protocol;

public static class CustomMethods
{
    /// <summary>Server -> client notification with <see cref="StatusParams"/> on every change of state.</summary>
    public const string Status = "codellama/status";

    /// <summary>Server -> client notification streaming an explanation (<see cref="ExplanationParams"/>).</summary>
    public const string Explanation = "codellama/explanation";

    /// <summary>Client -> server request answering <see cref="DebugStats"/>: counters for tests and benchmarks.</summary>
    public const string DebugStats = "codellama/debugStats";
}

/// <summary>The workspace/executeCommand names offered by code actions.</summary>
public static class CodeLlamaCommands
{
    public const string Explain = "codellama.explain";
    public const string Fix = "codellama.fix";
    public const string GenerateDocs = "codellama.generateDocs";
    public const string GenerateTests = "codellama.generateTests";

    public static IReadOnlyList<string> All { get; } = [Explain, Fix, GenerateDocs, GenerateTests];
}

/// <summary>The states of <see cref="CustomMethods.Status"/>.</summary>
public static class ServerStates
{
    public const string Loading = "loading";
    public const string Ready = "ready";
    public const string Busy = "busy";
    public const string Error = "error";
}

public sealed record StatusParams(string State, string Message, double? Progress = null);

/// <summary>The one argument of every codellama.* command; Fix also carries the diagnostics it should fix.</summary>
public sealed record CommandTarget(string Uri, Range Range)
{
    public IReadOnlyList<Diagnostic>? Diagnostics { get; init; }
}

public sealed record ExplanationParams(string Token, string Uri, Range Range, string Markdown, bool Done);

public sealed record ExplainResult(string Markdown);

public sealed record EditCommandResult(bool Applied, WorkspaceEdit Edit);

/// <summary>
/// Counters that show the scheduler's behaviour from outside: generations started, finished, superseded,
/// cancelled, answered from the suggestion cache, and the most that ever ran at once (must stay 1).
/// </summary>
public sealed record DebugStats
{
    public long GenerationsStarted { get; init; }

    public long GenerationsCompleted { get; init; }

    public long GenerationsSuperseded { get; init; }

    public long GenerationsCancelled { get; init; }

    public long RequestsDebounced { get; init; }

    public long CacheHits { get; init; }

    public int InFlight { get; init; }

    public int MaxInFlight { get; init; }

    public long TokensGenerated { get; init; }

    /// <summary>Draft tokens speculative decoding verified (the in-process engine; 0 when off or remote).</summary>
    public long DraftedTokens { get; init; }

    /// <summary>Of <see cref="DraftedTokens"/>, those the model accepted.</summary>
    public long AcceptedTokens { get; init; }

    public int OpenDocuments { get; init; }

    public long ManagedMemoryBytes { get; init; }

    public string ModelState { get; init; } = "";
}
