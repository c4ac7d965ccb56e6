// Owns the loaded model and its state (loading / ready / error): loads in the background on startup and on
// settings changes, reports progress ($/progress and codellama/status), and keeps the server up when loading fails.
using CodeLlamaLsp.Server.Lsp;
using CodeLlamaLsp.Server.Protocol;
using CodeLlamaLsp.Server.Scheduling;

namespace CodeLlamaLsp.Server.Backend;

public sealed class ModelHost : IDisposable
{
    private readonly IModelBackendLoader _loader;
    private readonly GenerationScheduler _scheduler;
    private readonly StatusReporter _status;
    private readonly ILspLog _log;
    private readonly Lock _lock = new();
    private CancellationTokenSource? _loadCancellation;
    private volatile ModelBackend? _current;
    private int _loadCount;

    public ModelHost(IModelBackendLoader loader, GenerationScheduler scheduler, StatusReporter status, ILspLog log)
    {
        _loader = loader;
        _scheduler = scheduler;
        _status = status;
        _log = log;
    }

    /// <summary>The ready model, or null while loading, after a failure, or before any model was configured.</summary>
    public ModelBackend? Current => _current;

    /// <summary>Completes when the latest load attempt has finished (either way); for tests and shutdown.</summary>
    public Task LoadCompletion { get; private set; } = Task.CompletedTask;

    /// <summary>Starts loading in the background; a load still running for older settings is cancelled.</summary>
    public void StartLoad(ServerSettings settings, ClientChannel? client)
    {
        ArgumentNullException.ThrowIfNull(settings);
        CancellationTokenSource cts;
        lock (_lock)
        {
            _loadCancellation?.Cancel();
            _loadCancellation = cts = new CancellationTokenSource();
            LoadCompletion = Task.Run(() => LoadAsync(settings, client, cts.Token));
        }
    }

    private async Task LoadAsync(ServerSettings settings, ClientChannel? client, CancellationToken cancellationToken)
    {
        await UnloadAsync().ConfigureAwait(false);
        if (settings.Model is null && settings.Backend != "remote")
        {
            const string message = "No model configured: set codellama.model (a local GPTQ checkpoint folder) or start with --model.";
            _status.Set(ServerStates.Error, message);
            _log.Warn(message);
            client?.ShowMessage(MessageType.Warning, message);
            return;
        }

        // The remote backend's model folder only lends its tokenizer: name what is being reached instead.
        string what = settings.Backend == "remote"
            ? $"remote model {settings.RemoteModel ?? "(default)"} at {settings.Endpoint ?? "(no endpoint)"}"
            : settings.Model ?? "the model";
        string progressToken = $"codellama-load-{Interlocked.Increment(ref _loadCount)}";
        bool useProgress = client is { SupportsWorkDoneProgress: true } && await TryCreateProgressAsync(client, progressToken, cancellationToken).ConfigureAwait(false);
        _status.Set(ServerStates.Loading, $"Loading {what}", 0);
        if (useProgress)
        {
            client!.Progress(progressToken, new WorkDoneProgressValue("begin") { Title = "CodeLlama", Message = $"Loading {what}", Percentage = 0 });
        }

        _log.Info($"loading model {what} (device {settings.Device}, backend {settings.Backend})");
        var started = System.Diagnostics.Stopwatch.StartNew();
        var progress = new SyncProgress(p =>
        {
            if (cancellationToken.IsCancellationRequested)
            {
                return;
            }

            _status.Set(ServerStates.Loading, p.Message, Math.Clamp(p.Fraction, 0, 1));
            if (useProgress)
            {
                client!.Progress(progressToken, new WorkDoneProgressValue("report") { Message = p.Message, Percentage = (int)Math.Round(Math.Clamp(p.Fraction, 0, 1) * 100) });
            }
        });

        try
        {
            var backend = await _loader.LoadAsync(settings, progress, cancellationToken).ConfigureAwait(false);
            if (cancellationToken.IsCancellationRequested)
            {
                backend.Dispose();
                return;
            }

            _current = backend;
            _log.Info($"model {backend.Name} ready after {started.Elapsed.TotalSeconds:F1} s");
            _status.Set(ServerStates.Ready, $"{backend.Name} ready");
            if (useProgress)
            {
                client!.Progress(progressToken, new WorkDoneProgressValue("end") { Message = "ready" });
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            _log.Info($"loading {what} was cancelled by newer settings");
        }
        catch (Exception ex)
        {
            string message = $"CodeLlama could not load {what}: {ex.Message}";
            // The message says what is wrong; the stack trace (source paths) only helps a developer.
            _log.Error(message);
            _log.Debug(ex.ToString());
            _status.Set(ServerStates.Error, message);
            client?.ShowMessage(MessageType.Error, message);
            if (useProgress)
            {
                client!.Progress(progressToken, new WorkDoneProgressValue("end") { Message = "failed" });
            }
        }
    }

    private async Task<bool> TryCreateProgressAsync(ClientChannel client, string token, CancellationToken cancellationToken)
    {
        try
        {
            await client.CreateProgressAsync(token, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            _log.Debug($"client refused window/workDoneProgress/create: {ex.Message}");
            return false;
        }
    }

    /// <summary>Drops the current model once no generation is using it.</summary>
    private async Task UnloadAsync()
    {
        var old = _current;
        _current = null;
        if (old is not null)
        {
            await _scheduler.RunExclusiveAsync(() => old.Dispose()).ConfigureAwait(false);
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _loadCancellation?.Cancel();
        }

        _current?.Dispose();
        _current = null;
    }

    /// <summary>IProgress that reports on the loader's own thread (Progress&lt;T&gt; would post to the thread pool out of order).</summary>
    private sealed class SyncProgress(Action<ModelLoadProgress> report) : IProgress<ModelLoadProgress>
    {
        public void Report(ModelLoadProgress value) => report(value);
    }
}
