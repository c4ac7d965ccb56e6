// The real loader's choices: a local checkpoint becomes the in-process engine with Prompting's prompts; the
// remote backend needs an endpoint and the model's tokenizer, and says which setting is missing.
using CodeLlamaLsp.Inference.Generation;
using CodeLlamaLsp.Server.Backend;
using CodeLlamaLsp.Server.Lsp;

namespace CodeLlamaLsp.Server.Tests;

public class BackendLoaderTests
{
    private static readonly IProgress<ModelLoadProgress> NoProgress = new Progress<ModelLoadProgress>();

    private static InProcessBackendLoader Loader() => new(new LspLog(TextWriter.Null));

    [Test]
    public async Task A_local_checkpoint_loads_on_the_cpu_with_prompts_that_fit_its_window()
    {
        var settings = new ServerSettings { Model = ReferenceCompletion.FixtureDir, Device = "cpu", ContextSize = 256, MaxTokens = 8, Temperature = 0 };
        using var backend = await Loader().LoadAsync(settings, NoProgress, CancellationToken.None);
        var prompt = backend.Prompts.Completion(new EditorContext("file:///a.py", "python", "def f():\n    return ", 20), settings);

        Assert.That(backend.Generator.Info.ContextLength, Is.EqualTo(256));
        Assert.That(prompt.Request.PromptIds, Has.Count.GreaterThan(5).And.Count.LessThanOrEqualTo(256));
        Assert.That(prompt.Request.Options.Temperature, Is.Zero);
        var result = await backend.Generator.GenerateAllAsync(prompt.Request, CancellationToken.None);
        Assert.That(result.TokenIds, Is.Not.Empty);
    }

    [Test]
    public void A_missing_checkpoint_fails_with_its_path_in_the_message()
    {
        var settings = new ServerSettings { Model = "/nonexistent/ckpt", Device = "cpu" };
        Assert.That(async () => await Loader().LoadAsync(settings, NoProgress, CancellationToken.None), Throws.Exception.With.Message.Contains("/nonexistent/ckpt"));
    }

    [Test]
    public void The_remote_backend_without_a_tokenizer_folder_names_the_setting_to_fix()
    {
        var settings = new ServerSettings { Backend = "remote", Endpoint = "http://127.0.0.1:9", RemoteModel = "codellama-34b" };
        Assert.That(async () => await Loader().LoadAsync(settings, NoProgress, CancellationToken.None), Throws.InvalidOperationException.With.Message.Contains("codellama.model"));
    }

    [Test]
    public async Task Plain_http_to_another_host_is_refused_unless_allowInsecureHttp_is_set()
    {
        var settings = new ServerSettings { Backend = "remote", Endpoint = "http://gpu.example.com:8000", RemoteModel = "codellama-34b", Model = ReferenceCompletion.FixtureDir };

        Assert.That(
            async () => await Loader().LoadAsync(settings, NoProgress, CancellationToken.None),
            Throws.Exception.With.Message.Contains("allowInsecureHttp").And.Message.Not.Contains(ReferenceCompletion.FixtureDir));
        using var backend = await Loader().LoadAsync(settings with { AllowInsecureHttp = true }, NoProgress, CancellationToken.None);
        Assert.That(backend.Name, Is.EqualTo("codellama-34b"));
    }

    [Test]
    public async Task The_remote_backend_uses_the_remote_model_name_and_the_local_tokenizer()
    {
        var settings = new ServerSettings { Backend = "remote", Endpoint = "http://127.0.0.1:9", RemoteModel = "codellama-34b", Model = ReferenceCompletion.FixtureDir };
        using var backend = await Loader().LoadAsync(settings, NoProgress, CancellationToken.None);
        var prompt = backend.Prompts.Completion(new EditorContext("file:///a.py", "python", "x = ", 4), settings);

        Assert.That(backend.Name, Is.EqualTo("codellama-34b"));
        Assert.That(prompt.Request.PromptText, Does.Contain("x ="));
        Assert.That(prompt.Request.PromptIds, Is.Not.Empty);
    }
}
