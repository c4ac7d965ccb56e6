// Entry point of codellama-lsp: the language server over stdio, and the command-line tools
// (generate, tokenize, make-checkpoint, bench) that scripts and benchmarks use.
namespace CodeLlamaLsp.Server;

internal static class Program
{
    public static async Task<int> Main(string[] args)
    {
        string command = args.Length > 0 ? args[0] : "--help";
        string[] rest = args.Length > 0 ? args[1..] : [];
        switch (command)
        {
            case "--version" or "-v" or "version":
                Console.WriteLine(ServerVersion.Informational);
                return 0;
            case "--help" or "-h" or "help":
                Console.WriteLine(Usage);
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
                _ = rest;
                await Console.Error.WriteLineAsync($"codellama-lsp: unknown command '{command}'. {Usage}").ConfigureAwait(false);
                return 2;
        }
    }

    private const string Usage =
        "usage: codellama-lsp --version | --stdio [--model M] [--device cpu|cuda|auto] | generate ... | tokenize ... | make-checkpoint ... | bench ...";
}
