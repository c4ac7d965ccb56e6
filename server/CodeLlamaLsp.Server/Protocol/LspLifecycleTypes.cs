// initialize / initialized / shutdown structures: what the client tells us about itself and what we advertise.
using System.Text.Json;

namespace CodeLlamaLsp.Server.Protocol;

/// <summary>The parts of initialize's params the server reads; capabilities stay raw JSON and are probed by path.</summary>
public sealed record InitializeParams
{
    public int? ProcessId { get; init; }

    public ClientInfo? ClientInfo { get; init; }

    public string? RootUri { get; init; }

    public JsonElement? Capabilities { get; init; }

    public JsonElement? InitializationOptions { get; init; }

    public string? Trace { get; init; }
}

public sealed record ClientInfo(string Name, string? Version = null);

public sealed record ServerInfo(string Name, string Version);

public sealed record InitializeResult(ServerCapabilities Capabilities, ServerInfo ServerInfo);

public sealed record ServerCapabilities
{
    /// <summary>We only speak UTF-16 positions, the LSP default, so every client understands them.</summary>
    public string PositionEncoding { get; init; } = "utf-16";

    public TextDocumentSyncOptions TextDocumentSync { get; init; } = new();

    public CompletionOptions? CompletionProvider { get; init; }

    public bool InlineCompletionProvider { get; init; }

    public CodeActionOptions? CodeActionProvider { get; init; }

    public ExecuteCommandOptions? ExecuteCommandProvider { get; init; }
}

/// <summary>Incremental sync (kind 2), open/close notifications, save without text.</summary>
public sealed record TextDocumentSyncOptions
{
    public bool OpenClose { get; init; } = true;

    public int Change { get; init; } = TextDocumentSyncKind.Incremental;

    public bool Save { get; init; } = true;
}

public static class TextDocumentSyncKind
{
    public const int None = 0;
    public const int Full = 1;
    public const int Incremental = 2;
}

public sealed record CompletionOptions(IReadOnlyList<string>? TriggerCharacters = null, bool ResolveProvider = false);

public sealed record CodeActionOptions(IReadOnlyList<string> CodeActionKinds, bool ResolveProvider = false);

public sealed record ExecuteCommandOptions(IReadOnlyList<string> Commands);
