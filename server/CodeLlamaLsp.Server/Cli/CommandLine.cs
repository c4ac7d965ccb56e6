// What every command-line tool shares beyond the engine flags: --help detection, the one-line error for a bad
// command line, and the one-line report of an expected failure (stack trace only at --log-level debug).
namespace CodeLlamaLsp.Server.Cli;

internal static class CommandLine
{
    /// <summary>True when --help or -h comes before any "--" (after it, they are text).</summary>
    public static bool WantsHelp(IReadOnlyList<string> args) =>
        args.TakeWhile(a => a != "--").Any(a => a is "--help" or "-h");

    /// <summary>One line for a bad command line, pointing at the command's --help rather than repeating it.</summary>
    public static string UsageError(string command, string message) =>
        $"codellama-lsp {command}: {message} Run 'codellama-lsp {command} --help' for the usage.";

    /// <summary>
    /// An expected failure (missing model, no GPU, unreadable file) as one line; the stack trace follows only when
    /// <paramref name="debug"/> is set, since it names source paths and helps only a developer.
    /// </summary>
    public static string Failure(string command, Exception exception, bool debug)
    {
        ArgumentNullException.ThrowIfNull(exception);
        return debug ? $"codellama-lsp {command}: {exception.Message}{Environment.NewLine}{exception}" : $"codellama-lsp {command}: {exception.Message}";
    }


    /// <summary>True when a --log-level value asks for debug detail (the server's words: debug, trace, verbose).</summary>
    public static bool IsDebug(string logLevel) => Lsp.LspLog.ParseLevel(logLevel) == Lsp.LogLevel.Debug;
}
