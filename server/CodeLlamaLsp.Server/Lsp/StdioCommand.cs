// `codellama-lsp --stdio [--model M] [--device cpu|cuda|auto] [--config FILE] ...`: the language server on
// stdin/stdout. stdout is taken for the protocol before anything else can write to it; Console.Out then
// points at stderr so a stray Console.WriteLine can never corrupt a message.
using System.Text.Json;
using CodeLlamaLsp.Server.Backend;

namespace CodeLlamaLsp.Server.Lsp;

public static class StdioCommand
{
    /// <summary>What `codellama-lsp --stdio --help` prints: the flags, named like the settings of docs/lsp-extensions.md.</summary>
    public const string Usage =
        "usage: codellama-lsp --stdio [OPTIONS]\n" +
        "The language server on stdin/stdout (LSP, Content-Length framing); logs go to stderr.\n" +
        "Each option is also a setting (initializationOptions, workspace/didChangeConfiguration; docs/lsp-extensions.md),\n" +
        "and the client's settings override these.\n" +
        "  --config FILE             JSON settings file (an object, or one with a \"codellama\" section)\n" +
        "  --model M                 GPTQ checkpoint folder, or a model id in the local Hugging Face cache\n" +
        "  --revision R              branch or commit of a model id (default main)\n" +
        "  --device cpu|cuda|auto    where the model runs (default auto: CUDA when usable, else the CPU)\n" +
        "  --context-size N          context length in tokens\n" +
        "  --max-tokens N            most tokens per completion\n" +
        "  --temperature T           0 is greedy\n" +
        "  --speculative auto|off    speculative decoding from the prompt (default auto; same answer)\n" +
        "  --max-prompt-tokens N     most prompt tokens for a completion (default 2048)\n" +
        "  --debounce-ms N           wait after the last keystroke before generating (default 75)\n" +
        "  --prompt-mode auto|instruct|infill\n" +
        "  --log-level L             trace|debug|information|warning|error (stack traces at debug)\n" +
        "  --backend in-process|remote, --endpoint URL, --remote-model NAME, --api-key-env VAR,\n" +
        "  --allow-insecure-http true  the remote engine (docs/scaling.md)\n";

    public static async Task<int> RunAsync(string[] args)
    {
        var protocolOut = Console.OpenStandardOutput();
        var protocolIn = Console.OpenStandardInput();
        Console.SetOut(Console.Error);
        var log = new LspLog(Console.Error);
        var settings = LoadStartupSettings(args, log);
        if (LspLog.ParseLevel(settings.LogLevel) is { } level)
        {
            log.Level = level;
        }

        log.Info($"codellama-lsp {ServerVersion.Informational} on stdio (pid {Environment.ProcessId})");
        var server = new LanguageServer(protocolIn, protocolOut, settings, new InProcessBackendLoader(log), log, OutputHangup.WhenStdoutClosedAsync);
        return await server.RunAsync().ConfigureAwait(false);
    }

    /// <summary>Defaults, then the --config file, then the other flags.</summary>
    public static ServerSettings LoadStartupSettings(IReadOnlyList<string> args, ILspLog log)
    {
        ArgumentNullException.ThrowIfNull(log);
        var problems = new List<string>();
        var settings = new ServerSettings();
        if (ServerSettings.ConfigFileFromArgs(args) is { } path)
        {
            try
            {
                using var doc = JsonDocument.Parse(Inference.Loading.BoundedFile.ReadAllBytes(path, ServerSettings.MaxConfigFileBytes));
                var section = doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("codellama", out var inner) ? inner : doc.RootElement;
                settings = settings.Merge(section, problems);
            }
            catch (JsonException ex)
            {
                // The position only: the parser's message may quote the file, which need not be a config file at all.
                problems.Add($"config file {path}: not valid JSON (line {ex.LineNumber + 1}, byte {ex.BytePositionInLine + 1})");
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                problems.Add($"config file {path}: {ex.Message}");
            }
        }

        settings = settings.MergeArgs(args, problems);
        foreach (var problem in problems)
        {
            log.Warn(problem);
        }

        return settings;
    }
}
