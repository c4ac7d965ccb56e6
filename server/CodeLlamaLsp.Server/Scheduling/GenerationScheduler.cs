// Runs generations one at a time on the model. Per key (a document), the newest request wins: an older one
// still debouncing or generating is stopped between tokens and answers empty. $/cancelRequest stops a request
// the same way but surfaces as OperationCanceledException (RequestCancelled). Counters feed codellama/debugStats.
using System.Diagnostics;
using System.Text;
using CodeLlamaLsp.Inference.Generation;

namespace CodeLlamaLsp.Server.Scheduling;

/// <summary>How a scheduled generation ended: its text, or superseded by a newer request for the same key.</summary>
public sealed record GenerationOutcome(string Text, bool Superseded, StopReason? StopReason, TimeSpan QueueTime, TimeSpan GenerationTime)
{
    public static GenerationOutcome SupersededOutcome(TimeSpan queued) => new("", true, null, queued, TimeSpan.Zero);
}

public sealed class GenerationScheduler : IDisposable
{
    private readonly SemaphoreSlim _modelGate = new(1, 1);
    private readonly Dictionary<string, CancellationTokenSource> _latestByKey = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private long _started;
    private long _completed;
    private long _superseded;
    private long _cancelled;
    private long _debounced;
    private long _tokens;
    private long _cacheHits;
    private long _drafted;
    private long _accepted;
    private int _inFlight;
    private int _maxInFlight;

    /// <summary>Raised with true when a generation takes the model and false when it gives it back.</summary>
    public event Action<bool>? BusyChanged;

    public int InFlight => Volatile.Read(ref _inFlight);

    public int MaxInFlight => Volatile.Read(ref _maxInFlight);

    public (long Started, long Completed, long Superseded, long Cancelled, long Debounced, long Tokens, long CacheHits) Counters =>
        (Interlocked.Read(ref _started), Interlocked.Read(ref _completed), Interlocked.Read(ref _superseded),
         Interlocked.Read(ref _cancelled), Interlocked.Read(ref _debounced), Interlocked.Read(ref _tokens), Interlocked.Read(ref _cacheHits));

    /// <summary>Draft tokens speculative decoding verified, and how many of them the model accepted.</summary>
    public (long Drafted, long Accepted) SpeculationCounters => (Interlocked.Read(ref _drafted), Interlocked.Read(ref _accepted));

    /// <summary>Counts a request answered from the suggestion cache without generating.</summary>
    public void CountCacheHit() => Interlocked.Increment(ref _cacheHits);

    /// <summary>
    /// Waits <paramref name="debounce"/>, builds the request (only if still the newest for its key), waits for the
    /// model and streams the answer. <paramref name="onText"/> sees the text so far after each chunk.
    /// </summary>
    public async Task<GenerationOutcome> RunAsync(
        string key,
        TimeSpan debounce,
        ITextGenerator generator,
        Func<GenerationRequest> buildRequest,
        Action<string>? onText,
        CancellationToken requestCancellation,
        Func<string, bool>? isFinished = null)
    {
        ArgumentNullException.ThrowIfNull(generator);
        ArgumentNullException.ThrowIfNull(buildRequest);
        var queued = Stopwatch.StartNew();
        var mine = new CancellationTokenSource();
        CancellationTokenSource? older;
        lock (_lock)
        {
            _latestByKey.TryGetValue(key, out older);
            _latestByKey[key] = mine;
        }

        // Cancelled outside the lock: cancellation callbacks run synchronously and may be slow.
        older?.Cancel();
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(mine.Token, requestCancellation);
        var token = linked.Token;
        bool holdsModel = false;
        try
        {
            if (debounce > TimeSpan.Zero)
            {
                await Task.Delay(debounce, token).ConfigureAwait(false);
            }

            // Prompt building tokenizes up to thousands of lines: run it on the pool, never on the
            // connection's dispatch context, so edits keep flowing while it works.
            var request = await Task.Run(buildRequest, token).ConfigureAwait(false);
            await _modelGate.WaitAsync(token).ConfigureAwait(false);
            holdsModel = true;
            var queueTime = queued.Elapsed;
            EnterModel();
            var generating = Stopwatch.StartNew();
            var text = new StringBuilder();
            StopReason? reason = null;
            await foreach (var chunk in generator.GenerateAsync(request, token).ConfigureAwait(false))
            {
                text.Append(chunk.Text);
                Interlocked.Add(ref _tokens, chunk.TokenIds.Count);
                Interlocked.Add(ref _drafted, chunk.DraftedTokens);
                Interlocked.Add(ref _accepted, chunk.AcceptedTokens);
                string soFar = text.ToString();
                onText?.Invoke(soFar);
                reason = chunk.Finished ?? reason;
                if (chunk.Finished is null && isFinished?.Invoke(soFar) == true)
                {
                    // Leaving the loop disposes the stream, which stops the engine before its next token.
                    reason = StopReason.StopString;
                    break;
                }
            }

            // A generator may end with StopReason.Cancelled instead of throwing; both mean the same here.
            token.ThrowIfCancellationRequested();
            Interlocked.Increment(ref _completed);
            return new GenerationOutcome(text.ToString(), false, reason, queueTime, generating.Elapsed);
        }
        catch (OperationCanceledException) when (!requestCancellation.IsCancellationRequested && mine.IsCancellationRequested)
        {
            if (holdsModel)
            {
                Interlocked.Increment(ref _superseded);
            }
            else
            {
                Interlocked.Increment(ref _debounced);
            }

            return GenerationOutcome.SupersededOutcome(queued.Elapsed);
        }
        catch (OperationCanceledException) when (requestCancellation.IsCancellationRequested)
        {
            Interlocked.Increment(ref _cancelled);
            throw;
        }
        finally
        {
            if (holdsModel)
            {
                LeaveModel();
                _modelGate.Release();
            }

            lock (_lock)
            {
                if (_latestByKey.TryGetValue(key, out var latest) && latest == mine)
                {
                    _latestByKey.Remove(key);
                }
            }
        }
    }

    /// <summary>Runs an action while no generation holds the model (used to swap or free models).</summary>
    public async Task RunExclusiveAsync(Action action)
    {
        ArgumentNullException.ThrowIfNull(action);
        await _modelGate.WaitAsync().ConfigureAwait(false);
        try
        {
            action();
        }
        finally
        {
            _modelGate.Release();
        }
    }

    /// <summary>Stops every pending or running generation (shutdown).</summary>
    public void CancelAll()
    {
        CancellationTokenSource[] all;
        lock (_lock)
        {
            all = [.. _latestByKey.Values];
        }

        foreach (var cts in all)
        {
            cts.Cancel();
        }
    }

    public void Dispose() => _modelGate.Dispose();

    private void EnterModel()
    {
        Interlocked.Increment(ref _started);
        int now = Interlocked.Increment(ref _inFlight);
        int max;
        while (now > (max = Volatile.Read(ref _maxInFlight)) && Interlocked.CompareExchange(ref _maxInFlight, now, max) != max)
        {
        }

        BusyChanged?.Invoke(true);
    }

    private void LeaveModel()
    {
        Interlocked.Decrement(ref _inFlight);
        BusyChanged?.Invoke(false);
    }
}
