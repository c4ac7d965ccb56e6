// The server's log: every line goes to stderr (stdout carries the protocol only) and, once a client is
// connected, to window/logMessage. The level comes from the logLevel setting or $/setTrace.
using CodeLlamaLsp.Server.Protocol;

namespace CodeLlamaLsp.Server.Lsp;

public enum LogLevel
{
    Debug = 0,
    Info = 1,
    Warn = 2,
    Error = 3,
}

public interface ILspLog
{
    void Write(LogLevel level, string message);
}

public static class LspLogExtensions
{
    public static void Debug(this ILspLog log, string message) => log?.Write(LogLevel.Debug, message);

    public static void Info(this ILspLog log, string message) => log?.Write(LogLevel.Info, message);

    public static void Warn(this ILspLog log, string message) => log?.Write(LogLevel.Warn, message);

    public static void Error(this ILspLog log, string message) => log?.Write(LogLevel.Error, message);
}

public sealed class LspLog : ILspLog
{
    private readonly TextWriter _stderr;
    private readonly Lock _writeLock = new();
    private volatile ClientChannel? _client;

    public LspLog(TextWriter stderr)
    {
        _stderr = stderr;
    }

    public LogLevel Level { get; set; } = LogLevel.Info;

    /// <summary>Set once the connection is up; lines are also sent as window/logMessage from then on.</summary>
    public void Attach(ClientChannel client) => _client = client;

    public void Write(LogLevel level, string message)
    {
        if (level < Level)
        {
            return;
        }

        string line = $"{DateTime.UtcNow:HH:mm:ss.fff} [{level.ToString().ToUpperInvariant()}] {message}";
        lock (_writeLock)
        {
            _stderr.WriteLine(line);
            _stderr.Flush();
        }

        int type = level switch
        {
            LogLevel.Error => MessageType.Error,
            LogLevel.Warn => MessageType.Warning,
            LogLevel.Info => MessageType.Info,
            _ => MessageType.Log,
        };
        _client?.Notify("window/logMessage", new MessageParams(type, message));
    }

    /// <summary>Parses a logLevel setting or a $/setTrace value; unknown words leave the level unchanged.</summary>
    public static LogLevel? ParseLevel(string? value) => value?.ToUpperInvariant() switch
    {
        "DEBUG" or "TRACE" or "VERBOSE" => LogLevel.Debug,
        "INFO" or "MESSAGES" => LogLevel.Info,
        "WARN" or "WARNING" or "OFF" => LogLevel.Warn,
        "ERROR" => LogLevel.Error,
        _ => null,
    };
}
