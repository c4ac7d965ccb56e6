// initialize, initialized, shutdown, exit and $/setTrace: capabilities, client features, settings from
// initializationOptions, and the start of the background model load.
using System.Text.Json;
using CodeLlamaLsp.Server.Lsp;
using CodeLlamaLsp.Server.Protocol;
using StreamJsonRpc;

namespace CodeLlamaLsp.Server.Handlers;

public sealed class LifecycleHandler(ServerContext context)
{
    [JsonRpcMethod("initialize", UseSingleObjectParameterDeserialization = true)]
    public InitializeResult Initialize(InitializeParams request)
    {
        ArgumentNullException.ThrowIfNull(request);
        context.Client.SupportsWorkDoneProgress = HasCapability(request.Capabilities, "window", "workDoneProgress");
        if (request.InitializationOptions is { } options)
        {
            var problems = new List<string>();
            context.Settings = context.Settings.Merge(options, problems);
            Report(problems, "initializationOptions");
        }

        if (LspLog.ParseLevel(request.Trace) is { } traceLevel && context.Settings.LogLevel is null)
        {
            context.Log.Level = traceLevel;
        }

        context.Log.Info($"initialize from {request.ClientInfo?.Name ?? "unknown client"} {request.ClientInfo?.Version}; codellama-lsp {ServerVersion.Informational}");
        var capabilities = new ServerCapabilities
        {
            CompletionProvider = new CompletionOptions(),
            InlineCompletionProvider = true,
            CodeActionProvider = new CodeActionOptions([CodeActionKinds.QuickFix, CodeActionKinds.Refactor, CodeActionKinds.RefactorRewrite]),
            ExecuteCommandProvider = new ExecuteCommandOptions(CodeLlamaCommands.All),
        };
        return new InitializeResult(capabilities, new ServerInfo("codellama-lsp", ServerVersion.Informational));
    }

    [JsonRpcMethod("initialized", UseSingleObjectParameterDeserialization = true)]
    public void Initialized(JsonElement? _)
    {
        context.Status.Attach(context.Client);
        context.Models.StartLoad(context.Settings, context.Client);
    }

    [JsonRpcMethod("shutdown")]
    public object? Shutdown()
    {
        context.Log.Info("shutdown");
        context.Scheduler.CancelAll();
        return null;
    }

    [JsonRpcMethod("exit")]
    public void Exit()
    {
        context.Log.Info("exit");
        context.Lifecycle.Exit();
    }

    [JsonRpcMethod("$/setTrace", UseSingleObjectParameterDeserialization = true)]
    public void SetTrace(SetTraceParams request)
    {
        if (LspLog.ParseLevel(request?.Value) is { } level)
        {
            context.Log.Level = level;
        }
    }

    [JsonRpcMethod("workspace/didChangeConfiguration", UseSingleObjectParameterDeserialization = true)]
    public void DidChangeConfiguration(DidChangeConfigurationParams request)
    {
        if (request?.Settings is not { ValueKind: JsonValueKind.Object } settings)
        {
            return;
        }

        // Clients send either {"codellama": {...}} (the section) or the section's object itself.
        var section = settings.TryGetProperty("codellama", out var inner) ? inner : settings;
        var problems = new List<string>();
        var before = context.Settings;
        var after = before.Merge(section, problems);
        Report(problems, "workspace/didChangeConfiguration");
        context.Settings = after;
        if (before.NeedsReload(after))
        {
            context.Log.Info("model settings changed; reloading");
            context.Models.StartLoad(after, context.Client);
        }
    }

    private void Report(List<string> problems, string source)
    {
        foreach (var problem in problems)
        {
            context.Log.Warn($"{source}: {problem}");
        }

        if (problems.Count > 0)
        {
            context.Client.ShowMessage(MessageType.Warning, $"CodeLlama ignored invalid settings: {string.Join("; ", problems)}");
        }
    }

    private static bool HasCapability(JsonElement? capabilities, params string[] path)
    {
        if (capabilities is not { ValueKind: JsonValueKind.Object } node)
        {
            return false;
        }

        foreach (string name in path)
        {
            if (node.ValueKind != JsonValueKind.Object || !node.TryGetProperty(name, out node))
            {
                return false;
            }
        }

        return node.ValueKind == JsonValueKind.True;
    }
}
