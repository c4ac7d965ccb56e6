// `codellama-lsp tokenize --model M TEXT`: prints the ids of TEXT (no BOS) as a JSON array, with the
// model's own tokenizer, so prompts can be checked against sentencepiece and fed to `generate --prompt-ids`.
using System.Text.Json;
using CodeLlamaLsp.Inference.Loading;
using CodeLlamaLsp.Inference.Tokenization;

namespace CodeLlamaLsp.Server.Cli;

internal static class TokenizeCommand
{
    public const string Usage = "usage: codellama-lsp tokenize --model M [--revision R] TEXT";

    public static async Task<int> RunAsync(IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr)
    {
        ArgumentNullException.ThrowIfNull(stdout);
        ArgumentNullException.ThrowIfNull(stderr);
        var flags = new EngineFlags();
        var texts = new List<string>();
        try
        {
            EngineFlags.Parse(args, flags, (name, _) =>
            {
                if (name.StartsWith("--", StringComparison.Ordinal))
                {
                    throw new CommandLineException($"unknown option '{name}'.");
                }

                texts.Add(name);
            });
            if (flags.Model == null || texts.Count != 1)
            {
                throw new CommandLineException(flags.Model == null ? "--model is required." : "give exactly one TEXT argument.");
            }
        }
        catch (CommandLineException e)
        {
            await stderr.WriteLineAsync($"codellama-lsp tokenize: {e.Message}\n{Usage}").ConfigureAwait(false);
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
            await stderr.WriteLineAsync($"codellama-lsp tokenize: {e.Message}").ConfigureAwait(false);
            return 1;
        }
    }
}
