// Issue 16 on the GPU: greedy answers through the CUDA session (the server's engine on a GPU) are identical with
// and without speculative decoding, on the tiny fixture's reference prompts and on prompts built to repeat
// themselves, so drafts are really taken. GPU only (the CPU engine's identity tests are in Engine/).
using CodeLlamaLsp.Inference.Engine;
using CodeLlamaLsp.Inference.Generation;
using CodeLlamaLsp.Inference.Loading;
using CodeLlamaLsp.Inference.Tests.Engine;
using CodeLlamaLsp.Inference.Tests.Loading;

namespace CodeLlamaLsp.Inference.Tests.Cuda;

[NonParallelizable]
[Category("Gpu")]
public class CudaSpeculativeTests
{
    [Test]
    public async Task Greedy_answers_on_the_cuda_session_are_identical_with_and_without_speculation()
    {
        TestDevices.Get("gpu");
        var reference = ReferenceModel.Get(Fixtures.Tiny);
        using var generator = EngineFactory.Create(ModelLoader.Load(Fixtures.Path(Fixtures.Tiny)), DeviceKind.Cuda, contextLength: 1024);
        Assert.That(generator.Session.DeviceName, Does.StartWith("cuda"));

        // Reference prompts greedy, then each prompt followed by its own answer and itself again with a repetition
        // penalty below 1 (random weights never copy text otherwise), so drafts are accepted.
        var cases = reference.Cases.Select(c => (c.Prompt, GenerationOptions.Greedy(32)))
            .Concat(reference.Cases.Select(c => (c.Prompt.Concat(c.Greedy).Concat(c.Prompt.Skip(1)).ToArray(), GenerationOptions.Greedy(48) with { RepetitionPenalty = 0.5f })));
        int accepted = 0;
        foreach (var (prompt, options) in cases)
        {
            // Both runs start from an empty cache: a prefix-cache hit recomputes the last prompt token alone (GEMV)
            // where a cold prefill ran it in a batch (GEMM), whose fp32 sums round differently and can flip a later
            // near-tie; that is the prefix cache's tolerance, not speculation's.
            generator.Session.Reset();
            var plain = await generator.GenerateAllAsync(new GenerationRequest(prompt, string.Empty, options with { Speculative = SpeculativeMode.Off }), CancellationToken.None);
            generator.Session.Reset();
            var speculative = await generator.GenerateAllAsync(new GenerationRequest(prompt, string.Empty, options), CancellationToken.None);
            Assert.That(speculative.TokenIds, Is.EqualTo(plain.TokenIds), $"prompt of {prompt.Length} tokens");
            accepted += speculative.AcceptedTokens;
        }

        TestContext.Out.WriteLine($"{accepted} draft tokens accepted on the CUDA session");
        Assert.That(accepted, Is.Positive);
    }
}
