// The shared state every handler works with: documents, settings, the model host and scheduler, and the
// channel to the client. Built once per connection by LanguageServer.
using CodeLlamaLsp.Server.Backend;
using CodeLlamaLsp.Server.Documents;
using CodeLlamaLsp.Server.Scheduling;

namespace CodeLlamaLsp.Server.Lsp;

public sealed class ServerContext
{
    private ServerSettings _settings;

    public ServerContext(ServerSettings startupSettings, LspLog log, IModelBackendLoader loader, ServerLifecycle lifecycle)
    {
        _settings = startupSettings;
        Log = log;
        Lifecycle = lifecycle;
        Documents = new DocumentStore(log);
        Scheduler = new GenerationScheduler();
        Cache = new SuggestionCache();
        Status = new StatusReporter();
        Models = new ModelHost(loader, Scheduler, Status, log);
        Scheduler.BusyChanged += busy => Status.SetBusy(busy, "generating");
    }

    public LspLog Log { get; }

    public ServerLifecycle Lifecycle { get; }

    public DocumentStore Documents { get; }

    public GenerationScheduler Scheduler { get; }

    public SuggestionCache Cache { get; }

    public StatusReporter Status { get; }

    public ModelHost Models { get; }

    /// <summary>Set when the connection starts; handlers only run after that.</summary>
    public ClientChannel Client { get; set; } = null!;

    public ServerSettings Settings
    {
        get => Volatile.Read(ref _settings);
        set
        {
            Volatile.Write(ref _settings, value);
            if (LspLog.ParseLevel(value.LogLevel) is { } level)
            {
                Log.Level = level;
            }
        }
    }
}
