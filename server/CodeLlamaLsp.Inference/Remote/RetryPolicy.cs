// How long to wait before retrying a request that failed before any text arrived: exponential
// backoff with jitter (so many editors do not retry in lockstep), or the server's own Retry-After.
using System.Net.Http.Headers;

namespace CodeLlamaLsp.Inference.Remote;

/// <summary>Computes retry delays from the settings.</summary>
internal static class RetryPolicy
{
    /// <summary>Delay before retry number <paramref name="attempt"/> + 1: doubling from InitialBackoff, half of it random.</summary>
    public static TimeSpan Backoff(RemoteBackendSettings settings, int attempt)
    {
        double exponential = settings.InitialBackoff.TotalMilliseconds * Math.Pow(2, Math.Min(attempt, 30));
        double capped = Math.Min(settings.MaxBackoff.TotalMilliseconds, exponential);
#pragma warning disable CA5394 // Jitter needs spread, not unpredictability.
        double jittered = capped * (0.5 + (0.5 * Random.Shared.NextDouble()));
#pragma warning restore CA5394
        return TimeSpan.FromMilliseconds(jittered);
    }

    /// <summary>The wait a 429 or 503 asks for through Retry-After (seconds or a date), if any.</summary>
    public static TimeSpan? RetryAfter(HttpResponseHeaders headers, DateTimeOffset now)
    {
        RetryConditionHeaderValue? value = headers.RetryAfter;
        if (value?.Delta is TimeSpan delta)
        {
            return delta < TimeSpan.Zero ? TimeSpan.Zero : delta;
        }

        if (value?.Date is DateTimeOffset date)
        {
            TimeSpan wait = date - now;
            return wait < TimeSpan.Zero ? TimeSpan.Zero : wait;
        }

        return null;
    }
}
