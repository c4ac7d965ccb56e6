// Entry point of codellama-lsp: the language server over stdio, and the command-line tools
// (generate, tokenize, make-checkpoint, bench) that scripts and benchmarks use.
namespace CodeLlamaLsp.Server;

internal static class Program
{
    public static async Task<int> Main(string[] args)
    {
        string command = args.Length > 0 ? args[0] : "--help";
        string[] rest = args.Length > 0 ? args[1..] : [];
        if (CommandUsage(command) is { } usage && Cli.CommandLine.WantsHelp(rest))
        {
            await Console.Out.WriteAsync(usage).ConfigureAwait(false);
            return 0;
        }

        switch (command)
        {
            case "--version" or "-v" or "version":
                Console.WriteLine(ServerVersion.Informational);
                return 0;
            case "--help" or "-h" or "help":
                await Console.Out.WriteAsync(rest.Length > 0 && CommandUsage(rest[0]) is { } commandUsage ? commandUsage : Usage).ConfigureAwait(false);
                return 0;

            // One line per command; each command lives in Cli/<Name>Command.cs.
            case "--stdio" or "stdio":
                return await Lsp.StdioCommand.RunAsync(rest).ConfigureAwait(false);
            case "generate":
                return await Cli.GenerateCommand.RunAsync(rest, Console.Out, Console.Error, CancellationToken.None).ConfigureAwait(false);
            case "tokenize":
                return await Cli.TokenizeCommand.RunAsync(rest, Console.Out, Console.Error).ConfigureAwait(false);
            case "make-checkpoint": return await Cli.MakeCheckpointCommand.RunAsync(rest).ConfigureAwait(false);
            case "bench": return await Cli.BenchCommand.RunAsync(rest).ConfigureAwait(false);
            default:
                await Console.Error.WriteLineAsync($"codellama-lsp: unknown command '{command}'. Run 'codellama-lsp --help' for the commands.").ConfigureAwait(false);
                return 2;
        }
    }

    /// <summary>The full usage of one command (what `codellama-lsp COMMAND --help` prints), or null for an unknown name.</summary>
    private static string? CommandUsage(string command) => command switch
    {
        "--stdio" or "stdio" => Lsp.StdioCommand.Usage,
        "generate" => Cli.GenerateCommand.Usage,
        "tokenize" => Cli.TokenizeCommand.Usage,
        "make-checkpoint" => Cli.MakeCheckpointCommand.Usage,
        "bench" => Cli.BenchCommand.Usage + "\n",
        _ => null,
    };

    private const string Usage =
        "usage: codellama-lsp COMMAND [OPTIONS]\n" +
        "A language server that runs a GPTQ CodeLlama model in-process, and the tools around it.\n" +
        "\n" +
        "Commands:\n" +
        "  --stdio           the language server on stdin/stdout (what editors start)\n" +
        "  generate          run one prompt and print the answer (or --json)\n" +
        "  tokenize          print the token ids of a text\n" +
        "  make-checkpoint   write a random GPTQ checkpoint of a real shape (for benchmarks)\n" +
        "  bench             measure load, prefill and decode speed on a CUDA GPU\n" +
        "  --version         print the version\n" +
        "  --help            this text; 'codellama-lsp COMMAND --help' gives a command's options\n";
}
