// One cancellation token for a remote request that fires either when the caller cancels or when the
// current timeout (first byte, then idle between events) runs out, and can tell the two apart.
namespace CodeLlamaLsp.Inference.Remote;

/// <summary>Combines the caller's cancellation with a re-armable timeout.</summary>
internal sealed class StreamDeadline : IDisposable
{
    private readonly CancellationTokenSource _timer = new();
    private readonly CancellationTokenSource _linked;

    public StreamDeadline(CancellationToken caller)
    {
        Caller = caller;
        _linked = CancellationTokenSource.CreateLinkedTokenSource(caller, _timer.Token);
    }

    /// <summary>The caller's own token.</summary>
    public CancellationToken Caller { get; }

    /// <summary>Fires on caller cancellation or when the armed timeout runs out.</summary>
    public CancellationToken Token => _linked.Token;

    /// <summary>The limit armed last, for the error message.</summary>
    public TimeSpan Limit { get; private set; }

    /// <summary>True when the timeout fired and the caller did not cancel.</summary>
    public bool TimedOut => _timer.IsCancellationRequested && !Caller.IsCancellationRequested;

    /// <summary>Starts (or restarts) the countdown.</summary>
    public void Arm(TimeSpan limit)
    {
        Limit = limit;
        _timer.CancelAfter(limit);
    }

    /// <summary>Stops the countdown, for waits that only the caller may cut short (retry backoff).</summary>
    public void Disarm() => _timer.CancelAfter(Timeout.InfiniteTimeSpan);

    public void Dispose()
    {
        _linked.Dispose();
        _timer.Dispose();
    }
}
