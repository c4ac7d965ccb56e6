// The LSP lifecycle as one state machine: before initialize only initialize (and exit) are accepted; after
// shutdown only exit. The exit code is 0 when exit follows shutdown and 1 otherwise, as the spec says.
namespace CodeLlamaLsp.Server.Lsp;

public enum LifecyclePhase
{
    NotInitialized,
    Running,
    ShuttingDown,
}

public sealed class ServerLifecycle
{
    private readonly TaskCompletionSource<int> _exit = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _phase = (int)LifecyclePhase.NotInitialized;

    public LifecyclePhase Phase => (LifecyclePhase)Volatile.Read(ref _phase);

    /// <summary>Completes with the process exit code when the exit notification arrives.</summary>
#pragma warning disable VSTHRD003 // The source runs continuations asynchronously, so awaiting it cannot deadlock.
    public Task<int> ExitRequested => _exit.Task;
#pragma warning restore VSTHRD003

    /// <summary>Moves to Running when initialize is accepted; false if it was already initialized.</summary>
    public bool TryBeginInitialize() =>
        Interlocked.CompareExchange(ref _phase, (int)LifecyclePhase.Running, (int)LifecyclePhase.NotInitialized) == (int)LifecyclePhase.NotInitialized;

    public void BeginShutdown() => Volatile.Write(ref _phase, (int)LifecyclePhase.ShuttingDown);

    public void Exit() => _exit.TrySetResult(Phase == LifecyclePhase.ShuttingDown ? 0 : 1);
}
