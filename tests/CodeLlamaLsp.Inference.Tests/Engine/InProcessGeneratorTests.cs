// The generator end to end on the tiny fixture (real Llama 2 tokenizer): greedy ids equal the reference,
// streamed text equals the decoded answer, and max tokens, stop tokens, stop strings spanning tokens,
// cancellation and a full context each end generation with the right reason.
using CodeLlamaLsp.Inference.Engine;
using CodeLlamaLsp.Inference.Generation;
using CodeLlamaLsp.Inference.Loading;
using CodeLlamaLsp.Inference.Tests.Loading;
using CodeLlamaLsp.Inference.Tokenization;

namespace CodeLlamaLsp.Inference.Tests.Engine;

[NonParallelizable]
public class InProcessGeneratorTests
{
    private InProcessGenerator _generator = null!;
    private ReferenceCase _case = null!;
    private List<string> _log = null!;

    [SetUp]
    public void Create()
    {
        _log = [];
        _generator = EngineFactory.Create(ModelLoader.Load(Fixtures.Path(Fixtures.Tiny)), DeviceKind.Cpu, contextLength: 64, _log.Add);
        _case = ReferenceModel.Get(Fixtures.Tiny).Cases[0];
    }

    [TearDown]
    public void Dispose() => _generator.Dispose();

    [OneTimeTearDown]
    public void Release() => ReferenceModel.DisposeAll();

    [Test]
    public async Task Greedy_generation_streams_the_reference_ids_and_their_text()
    {
        var chunks = await CollectAsync(GenerationOptions.Greedy(32));
        var tokenizer = LlamaTokenizer.Load(Path.Combine(Fixtures.Path(Fixtures.Tiny), "tokenizer.model"));
        var ids = chunks.SelectMany(c => c.TokenIds).ToList();

        Assert.Multiple(() =>
        {
            Assert.That(ids, Is.EqualTo(_case.Greedy));
            Assert.That(string.Concat(chunks.Select(c => c.Text)).TrimStart(), Is.EqualTo(tokenizer.Decode(ids).TrimStart()));
            Assert.That(chunks[^1].Finished, Is.EqualTo(StopReason.MaxTokens));
            Assert.That(chunks.Take(chunks.Count - 1).All(c => c.Finished == null), Is.True, "only the last chunk is marked finished");
            Assert.That(_generator.Info, Is.EqualTo(new ModelInfo(Fixtures.Tiny, 64, 32000, SupportsInfill: false)));
            Assert.That(_log.Single(), Does.Contain("cpu"));
        });
    }

    [Test]
    public async Task A_stop_token_ends_generation_before_it()
    {
        int stop = _case.Greedy[4];
        int firstStop = Array.IndexOf(_case.Greedy, stop);

        var result = await _generator.GenerateAllAsync(Request(GenerationOptions.Greedy(32) with { StopTokenIds = [stop] }), CancellationToken.None);

        Assert.Multiple(() =>
        {
            Assert.That(result.TokenIds, Is.EqualTo(_case.Greedy[..firstStop]));
            Assert.That(result.StopReason, Is.EqualTo(StopReason.StopToken));
        });
    }

    [Test]
    public async Task A_stop_string_spanning_two_tokens_returns_the_text_before_it()
    {
        var pieces = (await CollectAsync(GenerationOptions.Greedy(12))).Select(c => c.Text).ToList();
        var full = string.Concat(pieces);
        int boundary = pieces[0].Length + pieces[1].Length + pieces[2].Length;
        Assume.That(pieces[2].Length >= 2 && pieces[3].Length >= 2, "tokens 3 and 4 carry text");
        var stop = full.Substring(boundary - 2, 4);

        var result = await _generator.GenerateAllAsync(Request(GenerationOptions.Greedy(12) with { StopStrings = [stop] }), CancellationToken.None);

        Assert.Multiple(() =>
        {
            Assert.That(result.Text, Is.EqualTo(full[..full.IndexOf(stop, StringComparison.Ordinal)]));
            Assert.That(result.StopReason, Is.EqualTo(StopReason.StopString));
            Assert.That(result.TokenIds, Has.Count.LessThanOrEqualTo(4));
        });
    }

    [Test]
    public async Task Cancelling_stops_between_tokens()
    {
        using var cancel = new CancellationTokenSource();
        var chunks = new List<GenerationChunk>();
        await foreach (var chunk in _generator.GenerateAsync(Request(GenerationOptions.Greedy(32)), cancel.Token))
        {
            chunks.Add(chunk);
            if (chunks.Count == 3)
            {
                await cancel.CancelAsync();
            }
        }

        Assert.Multiple(() =>
        {
            Assert.That(chunks.SelectMany(c => c.TokenIds), Is.EqualTo(_case.Greedy[..3]));
            Assert.That(chunks[^1].Finished, Is.EqualTo(StopReason.Cancelled));
        });
    }

    [Test]
    public async Task A_full_context_ends_generation()
    {
        using var small = EngineFactory.Create(ModelLoader.Load(Fixtures.Path(Fixtures.Tiny)), DeviceKind.Cpu, contextLength: _case.Prompt.Length + 5);

        var result = await small.GenerateAllAsync(Request(GenerationOptions.Greedy(32)), CancellationToken.None);

        Assert.Multiple(() =>
        {
            Assert.That(result.TokenIds, Is.EqualTo(_case.Greedy[..5]));
            Assert.That(result.StopReason, Is.EqualTo(StopReason.ContextFull));
        });
    }

    [Test]
    public async Task A_repeated_request_reuses_the_cached_prompt()
    {
        await CollectAsync(GenerationOptions.Greedy(4));
        var again = await CollectAsync(GenerationOptions.Greedy(4));

        Assert.Multiple(() =>
        {
            Assert.That(_generator.Session.LastProcessedTokens, Is.EqualTo(1));
            Assert.That(again.SelectMany(c => c.TokenIds), Is.EqualTo(_case.Greedy[..4]));
        });
    }

    [Test]
    public void Cuda_without_a_device_is_a_clear_error_and_auto_falls_back_with_a_warning()
    {
        var log = new List<string>();
        using var auto = EngineFactory.OpenCuda(DeviceKind.Auto, log.Add);
        Assume.That(auto, Is.Null, "this machine has a usable CUDA device");

        Assert.Multiple(() =>
        {
            Assert.That(log.Single(), Does.StartWith("warning: CUDA is not available"));
            Assert.That(() => EngineFactory.OpenCuda(DeviceKind.Cuda), Throws.InvalidOperationException.With.Message.Contains("CUDA is not available"));
        });
    }

    private GenerationRequest Request(GenerationOptions options) => new(_case.Prompt, string.Empty, options);

    private async Task<List<GenerationChunk>> CollectAsync(GenerationOptions options)
    {
        var chunks = new List<GenerationChunk>();
        await foreach (var chunk in _generator.GenerateAsync(Request(options), CancellationToken.None))
        {
            chunks.Add(chunk);
        }

        return chunks;
    }
}
