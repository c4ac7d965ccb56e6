// A test double for ITextGenerator: answers each prompt with scripted pieces, one per "token", waiting a
// fixed time per token and honouring cancellation between tokens like the real engine. It records how many
// generations overlap, which is what the scheduler must keep at one.
using System.Runtime.CompilerServices;
using CodeLlamaLsp.Inference.Generation;

namespace CodeLlamaLsp.Server.Tests.Doubles;

internal sealed class ScriptedGenerator(Func<GenerationRequest, IReadOnlyList<string>> script, TimeSpan perToken) : ITextGenerator
{
    private int _running;
    private int _maxRunning;
    private int _calls;

    public ModelInfo Info { get; } = new("scripted", 4096, 32000, false);

    public int Calls => Volatile.Read(ref _calls);

    public int MaxRunning => Volatile.Read(ref _maxRunning);

    public List<GenerationRequest> Requests { get; } = [];

    /// <summary>Times at which a generation noticed cancellation, measured from the start of its last token.</summary>
    public List<TimeSpan> CancelLatencies { get; } = [];

    public async IAsyncEnumerable<GenerationChunk> GenerateAsync(GenerationRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _calls);
        lock (Requests)
        {
            Requests.Add(request);
        }

        int now = Interlocked.Increment(ref _running);
        lock (Requests)
        {
            _maxRunning = Math.Max(_maxRunning, now);
        }

        try
        {
            var pieces = script(request);
            for (int i = 0; i < pieces.Count; i++)
            {
                var tokenStart = System.Diagnostics.Stopwatch.StartNew();
                try
                {
                    await Task.Delay(perToken, cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    lock (Requests)
                    {
                        CancelLatencies.Add(tokenStart.Elapsed);
                    }

                    throw;
                }

                yield return new GenerationChunk(pieces[i], [i + 1], i == pieces.Count - 1 ? StopReason.MaxTokens : null);
            }
        }
        finally
        {
            Interlocked.Decrement(ref _running);
        }
    }
}
