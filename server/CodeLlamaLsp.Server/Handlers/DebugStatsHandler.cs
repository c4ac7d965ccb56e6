// codellama/debugStats: the scheduler's counters and memory use, so tests and benchmarks can check from
// outside the process that no more than one generation ever ran at once, and how speculative decoding fares.
using CodeLlamaLsp.Server.Lsp;
using CodeLlamaLsp.Server.Protocol;
using StreamJsonRpc;

namespace CodeLlamaLsp.Server.Handlers;

public sealed class DebugStatsHandler(ServerContext context)
{
    [JsonRpcMethod(CustomMethods.DebugStats)]
    public DebugStats Stats()
    {
        var c = context.Scheduler.Counters;
        var speculation = context.Scheduler.SpeculationCounters;
        return new DebugStats
        {
            GenerationsStarted = c.Started,
            GenerationsCompleted = c.Completed,
            GenerationsSuperseded = c.Superseded,
            GenerationsCancelled = c.Cancelled,
            RequestsDebounced = c.Debounced,
            CacheHits = c.CacheHits,
            TokensGenerated = c.Tokens,
            DraftedTokens = speculation.Drafted,
            AcceptedTokens = speculation.Accepted,
            InFlight = context.Scheduler.InFlight,
            MaxInFlight = context.Scheduler.MaxInFlight,
            OpenDocuments = context.Documents.Count,
            ManagedMemoryBytes = GC.GetTotalMemory(forceFullCollection: false),
            ModelState = context.Status.Current.State,
        };
    }
}
