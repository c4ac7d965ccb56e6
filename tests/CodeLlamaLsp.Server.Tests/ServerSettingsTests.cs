// Settings merge field by field from JSON (initializationOptions, didChangeConfiguration, config file) and
// command-line flags, with the names of docs/lsp-extensions.md; bad values are reported and skipped.
using System.Text.Json;
using CodeLlamaLsp.Inference.Generation;
using CodeLlamaLsp.Prompting;
using CodeLlamaLsp.Server.Backend;
using CodeLlamaLsp.Server.Lsp;

namespace CodeLlamaLsp.Server.Tests;

public class ServerSettingsTests
{
    [Test]
    public void Json_fields_override_defaults_and_bad_values_are_reported()
    {
        using var json = JsonDocument.Parse("""{"model":"/m","device":"cpu","maxTokens":32,"temperature":0.2,"debounceMs":10,"contextSize":"big","promptMode":"weird","future":1}""");
        var problems = new List<string>();
        var s = new ServerSettings().Merge(json.RootElement, problems);

        Assert.That(s.Model, Is.EqualTo("/m"));
        Assert.That(s.Device, Is.EqualTo("cpu"));
        Assert.That(s.MaxTokens, Is.EqualTo(32));
        Assert.That(s.Temperature, Is.EqualTo(0.2f));
        Assert.That(s.DebounceMs, Is.EqualTo(10));
        Assert.That(s.ContextSize, Is.Null);
        Assert.That(s.PromptMode, Is.EqualTo("auto"));
        Assert.That(problems, Has.Count.EqualTo(2));
        Assert.That(problems, Has.Some.Contains("contextSize"));
        Assert.That(problems, Has.Some.Contains("promptMode"));
    }

    [Test]
    public void Allow_insecure_http_is_read_from_json_and_flags_and_needs_a_reload()
    {
        var problems = new List<string>();
        using var json = JsonDocument.Parse("""{"allowInsecureHttp":true}""");
        var fromJson = new ServerSettings().Merge(json.RootElement, problems);
        var fromFlag = new ServerSettings().MergeArgs(["--allow-insecure-http", "true"], problems);

        Assert.That(problems, Is.Empty);
        Assert.That(new ServerSettings().AllowInsecureHttp, Is.False);
        Assert.That(fromJson.AllowInsecureHttp, Is.True);
        Assert.That(fromFlag.AllowInsecureHttp, Is.True);
        Assert.That(new ServerSettings().NeedsReload(fromJson), Is.True);
    }

    [Test]
    public void Max_prompt_tokens_reaches_the_prompt_settings_from_json_and_flags()
    {
        var problems = new List<string>();
        using var json = JsonDocument.Parse("""{"maxPromptTokens":1024}""");
        var fromJson = new ServerSettings().Merge(json.RootElement, problems);
        var fromFlag = new ServerSettings().MergeArgs(["--max-prompt-tokens", "512"], problems);

        Assert.That(problems, Is.Empty);
        Assert.That(PromptingSuggestions.PromptSettingsFor(fromJson).MaxPromptTokens, Is.EqualTo(1024));
        Assert.That(PromptingSuggestions.PromptSettingsFor(fromFlag).MaxPromptTokens, Is.EqualTo(512));
        Assert.That(PromptingSuggestions.PromptSettingsFor(new ServerSettings()).MaxPromptTokens, Is.EqualTo(new PromptSettings().MaxPromptTokens));
    }

    [Test]
    public void An_unset_max_prompt_tokens_takes_the_engines_prompt_budget_and_a_set_one_wins()
    {
        var problems = new List<string>();
        var fast = new ModelInfo("m", 4096, 32000, SupportsInfill: false) { PromptBudget = 3072 };
        var set = new ServerSettings().MergeArgs(["--max-prompt-tokens", "512"], problems);

        Assert.That(problems, Is.Empty);
        Assert.That(PromptingSuggestions.PromptSettingsFor(new ServerSettings(), fast).MaxPromptTokens, Is.EqualTo(3072));
        Assert.That(PromptingSuggestions.PromptSettingsFor(set, fast).MaxPromptTokens, Is.EqualTo(512));
        Assert.That(PromptingSuggestions.PromptSettingsFor(new ServerSettings(), fast with { PromptBudget = null }).MaxPromptTokens, Is.EqualTo(new PromptSettings().MaxPromptTokens));
    }

    [Test]
    public void Flags_use_the_same_names_as_generate()
    {
        var problems = new List<string>();
        var s = new ServerSettings().MergeArgs(["--model", "M", "--device", "cpu", "--revision", "R", "--context-size", "512", "--max-tokens", "16", "--temperature", "0"], problems);

        Assert.That(problems, Is.Empty);
        Assert.That((s.Model, s.Device, s.Revision, s.ContextSize, s.MaxTokens, s.Temperature), Is.EqualTo(("M", "cpu", "R", (int?)512, 16, 0f)));
    }

    [Test]
    public void Server_flags_and_name_equals_value_forms_are_read_and_bad_ones_reported()
    {
        var problems = new List<string>();
        var s = new ServerSettings().MergeArgs(["--stdio", "--model=M2", "--debounce-ms", "20", "--prompt-mode", "instruct", "--log-level=debug", "--max-tokens", "lots"], problems);

        Assert.That((s.Model, s.DebounceMs, s.PromptMode, s.LogLevel), Is.EqualTo(("M2", 20, "instruct", "debug")));
        Assert.That(problems, Has.Count.EqualTo(1));
        Assert.That(problems[0], Does.Contain("--max-tokens"));
    }

    [Test]
    public void Speculative_is_auto_or_off_from_json_and_flags_and_needs_no_reload()
    {
        var problems = new List<string>();
        using var off = JsonDocument.Parse("""{"speculative":"off"}""");
        using var bad = JsonDocument.Parse("""{"speculative":"on"}""");
        var defaults = new ServerSettings();

        var fromJson = defaults.Merge(off.RootElement, problems);
        var fromFlag = defaults.MergeArgs(["--stdio", "--speculative", "off"], problems);
        Assert.That(problems, Is.Empty);
        var rejected = defaults.Merge(bad.RootElement, problems);

        Assert.Multiple(() =>
        {
            Assert.That((defaults.Speculative, fromJson.Speculative, fromFlag.Speculative, rejected.Speculative), Is.EqualTo(("auto", "off", "off", "auto")));
            Assert.That(problems, Has.One.Contains("speculative"));
            Assert.That(defaults.NeedsReload(fromJson), Is.False, "the next request reads it");
        });
    }

    [Test]
    public void Only_model_settings_need_a_reload()
    {
        var s = new ServerSettings { Model = "a" };
        Assert.That(s.NeedsReload(s with { DebounceMs = 5, MaxTokens = 3 }), Is.False);
        Assert.That(s.NeedsReload(s with { Model = "b" }), Is.True);
        Assert.That(s.NeedsReload(s with { Device = "cpu" }), Is.True);
    }
}
