// `codellama-lsp tokenize --model M [--] TEXT`: prints the ids of TEXT (no BOS) as a JSON array, with the
// model's own tokenizer, so prompts can be checked against sentencepiece and fed to `generate --prompt-ids`.
using System.Text.Json;
using CodeLlamaLsp.Inference.Loading;
using CodeLlamaLsp.Inference.Tokenization;

namespace CodeLlamaLsp.Server.Cli;

internal static class TokenizeCommand
{
    public const string Usage =
        "usage: codellama-lsp tokenize --model M [--revision R] [--] TEXT\n" +
        "Prints the ids of TEXT (no BOS) as a JSON array, with the model's tokenizer.model.\n" +
        "  --model M          GPTQ checkpoint folder, or a model id in the local Hugging Face cache\n" +
        "  --revision R       branch or commit of a model id (default main)\n" +
        "  --log-level debug  stack traces with failures\n" +
        "  --                 ends the options: TEXT may then start with '-'\n";

    public static async Task<int> RunAsync(IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr)
    {
        ArgumentNullException.ThrowIfNull(stdout);
        ArgumentNullException.ThrowIfNull(stderr);
        var flags = new EngineFlags();
        var texts = new List<string>();
        bool debug = false;
        try
        {
            EngineFlags.Parse(
                args,
                flags,
                (name, value) => debug = name == "--log-level" ? CommandLine.IsDebug(value()) : throw new CommandLineException($"unknown option '{name}'."),
                texts.Add);
            if (flags.Model == null || texts.Count != 1)
            {
                throw new CommandLineException(flags.Model == null ? "--model is required." : "give exactly one TEXT argument.");
            }
        }
        catch (CommandLineException e)
        {
            await stderr.WriteLineAsync(CommandLine.UsageError("tokenize", e.Message)).ConfigureAwait(false);
            return 2;
        }

        try
        {
            var location = ModelLocator.Resolve(flags.Model, flags.Revision);
            string path = Path.Combine(location.Directory, "tokenizer.model");
            if (!File.Exists(path))
            {
                throw new IOException($"model '{location.Name}' has no tokenizer.model in {location.Directory}.");
            }

            var tokenizer = LlamaTokenizer.Load(path);
            await stdout.WriteLineAsync(JsonSerializer.Serialize(tokenizer.Encode(texts[0]))).ConfigureAwait(false);
            return 0;
        }
        catch (Exception e) when (e is ModelLoadException or ArgumentException or InvalidOperationException or IOException or UnauthorizedAccessException or InvalidDataException)
        {
            await stderr.WriteLineAsync(CommandLine.Failure("tokenize", e, debug)).ConfigureAwait(false);
            return 1;
        }
    }
}
