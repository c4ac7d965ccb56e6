// The server's settings: one record with the names of docs/lsp-extensions.md, read from a JSON config file,
// command-line flags, initializationOptions and workspace/didChangeConfiguration (section "codellama"),
// each later source overriding the earlier ones field by field. Every value is checked before it is taken
// (numbers against a documented range, apiKeyEnv against a name pattern); a bad one is reported and the
// previous value kept.
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace CodeLlamaLsp.Server.Lsp;

public sealed partial record ServerSettings
{
    /// <summary>Cap on a --config file (a settings file is a few hundred bytes).</summary>
    public const int MaxConfigFileBytes = 1024 * 1024;

    /// <summary>
    /// The accepted range of each numeric setting, inclusive (docs/lsp-extensions.md lists the same). Outside
    /// them a value is a mistake, and some would break every completion (a 2^31 answer length overflows the
    /// prompt budget, a NaN temperature fails the sampler, a 10^9 ms debounce never answers).
    /// </summary>
    public static IReadOnlyDictionary<string, (double Min, double Max)> NumericRanges { get; } = new Dictionary<string, (double Min, double Max)>
    {
        ["contextSize"] = (64, 131_072),
        ["maxTokens"] = (1, 4_096),
        ["maxPromptTokens"] = (64, 32_768),
        ["temperature"] = (0, 2),
        ["debounceMs"] = (0, 5_000),
    };

    public string? Model { get; init; }

    public string? Revision { get; init; }

    /// <summary>cpu | cuda | auto.</summary>
    public string Device { get; init; } = "auto";

    public int? ContextSize { get; init; }

    /// <summary>Answer length cap; null keeps Prompting's defaults (longer for multi-line answers).</summary>
    public int? MaxTokens { get; init; }

    /// <summary>Cap on completion prompt tokens; null keeps Prompting's default (2,048). Larger sees more code, costs first-token latency.</summary>
    public int? MaxPromptTokens { get; init; }

    /// <summary>Sampling temperature; null keeps Prompting's default, 0 is greedy.</summary>
    public float? Temperature { get; init; }

    public int DebounceMs { get; init; } = 75;

    /// <summary>auto | instruct | infill.</summary>
    public string PromptMode { get; init; } = "auto";

    public string? LogLevel { get; init; }

    /// <summary>in-process | remote.</summary>
    public string Backend { get; init; } = "in-process";

    public string? Endpoint { get; init; }

    public string? RemoteModel { get; init; }

    public string? ApiKeyEnv { get; init; }

    /// <summary>Lets the remote backend use plain http to a host that is not loopback (docs/scaling.md: a trusted network only).</summary>
    public bool AllowInsecureHttp { get; init; }

    /// <summary>auto | off: speculative decoding from the prompt in the in-process engine (GenerationOptions.Speculative).</summary>
    public string Speculative { get; init; } = "auto";

    /// <summary>True when a change from this to <paramref name="other"/> needs the model loaded again.</summary>
    public bool NeedsReload(ServerSettings other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return Model != other.Model || Revision != other.Revision || Device != other.Device || ContextSize != other.ContextSize
            || Backend != other.Backend || Endpoint != other.Endpoint || RemoteModel != other.RemoteModel || ApiKeyEnv != other.ApiKeyEnv
            || AllowInsecureHttp != other.AllowInsecureHttp;
    }

    /// <summary>
    /// Applies the fields present in a JSON object. Wrong types are reported through <paramref name="problems"/>
    /// and skipped, so one bad value does not discard the rest.
    /// </summary>
    public ServerSettings Merge(JsonElement json, ICollection<string> problems)
    {
        ArgumentNullException.ThrowIfNull(problems);
        if (json.ValueKind != JsonValueKind.Object)
        {
            if (json.ValueKind is not (JsonValueKind.Null or JsonValueKind.Undefined))
            {
                problems.Add($"settings must be a JSON object, not {json.ValueKind}");
            }

            return this;
        }

        var s = this;
        foreach (var property in json.EnumerateObject())
        {
            try
            {
                s = Apply(s, property.Name, property.Value);
            }
            catch (Exception ex) when (ex is InvalidOperationException or FormatException)
            {
                problems.Add($"setting '{property.Name}': {ex.Message}");
            }
        }

        return s;
    }

    /// <summary>
    /// Applies command-line flags: the engine flags shared with `generate` (Cli/EngineFlags: --model, --revision,
    /// --device, --context-size, --max-tokens, --temperature, --speculative, also as --name=value) and the server's own
    /// (--max-prompt-tokens, --debounce-ms, --prompt-mode, --log-level, --backend, --endpoint, --remote-model, --api-key-env, --allow-insecure-http, --config).
    /// </summary>
    public ServerSettings MergeArgs(IReadOnlyList<string> args, ICollection<string> problems)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(problems);
        var flags = new Cli.EngineFlags();
        var own = new List<(string Flag, string Name, string Value)>();
        try
        {
            Cli.EngineFlags.Parse(args.Where(a => a != "--stdio").ToList(), flags, (name, value) =>
            {
                if (!name.StartsWith("--", StringComparison.Ordinal))
                {
                    throw new Cli.CommandLineException($"unexpected argument '{name}'");
                }

                own.Add((name[2..], ToCamelCase(name[2..]), value()));
            });
        }
        catch (Cli.CommandLineException ex)
        {
            problems.Add(ex.Message);
        }

        bool deviceGiven = args.Any(a => a == "--device" || a.StartsWith("--device=", StringComparison.Ordinal));
        var s = this with
        {
            Model = flags.Model ?? Model,
            Revision = flags.Revision ?? Revision,
            Device = deviceGiven ? flags.Device.ToString().ToLowerInvariant() : Device,
            Speculative = flags.Speculative is { } speculative ? speculative.ToString().ToLowerInvariant() : Speculative,
        };

        // The engine flags' numbers go through the same range checks as every other source.
        var numbers = new List<(string Flag, string Name, string Value)>();
        if (flags.ContextSize > 0)
        {
            numbers.Add(("--context-size", "contextSize", flags.ContextSize.ToString(CultureInfo.InvariantCulture)));
        }

        if (flags.MaxTokens is { } maxTokens)
        {
            numbers.Add(("--max-tokens", "maxTokens", maxTokens.ToString(CultureInfo.InvariantCulture)));
        }

        if (flags.Temperature is { } temperature)
        {
            numbers.Add(("--temperature", "temperature", temperature.ToString("R", CultureInfo.InvariantCulture)));
        }

        foreach (var (flag, name, value) in numbers.Concat(own.Where(o => o.Name != "config").Select(o => ("--" + o.Flag, o.Name, o.Value))))
        {
            try
            {
                using var doc = JsonDocument.Parse(JsonSerializer.Serialize(value));
                s = Apply(s, name, doc.RootElement);
            }
            catch (Exception ex) when (ex is InvalidOperationException or FormatException)
            {
                problems.Add($"flag {flag}: {ex.Message}");
            }
        }

        return s;
    }

    /// <summary>The --config FILE argument, if given.</summary>
    public static string? ConfigFileFromArgs(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        for (int i = 0; i + 1 < args.Count; i++)
        {
            if (args[i] == "--config")
            {
                return args[i + 1];
            }
        }

        return null;
    }

    private static ServerSettings Apply(ServerSettings s, string name, JsonElement value) => name switch
    {
        "model" => s with { Model = Str(value) },
        "revision" => s with { Revision = Str(value) },
        "device" => s with { Device = OneOf(value, "cpu", "cuda", "auto") },
        "contextSize" => s with { ContextSize = WholeInRange(name, value) },
        "maxTokens" => s with { MaxTokens = WholeInRange(name, value) },
        "maxPromptTokens" => s with { MaxPromptTokens = WholeInRange(name, value) },
        "temperature" => s with { Temperature = (float)InRange(name, value) },
        "debounceMs" => s with { DebounceMs = WholeInRange(name, value) },
        "promptMode" => s with { PromptMode = OneOf(value, "auto", "instruct", "infill") },
        "logLevel" => s with { LogLevel = Str(value) },
        "backend" => s with { Backend = OneOf(value, "in-process", "remote") },
        "endpoint" => s with { Endpoint = Str(value) },
        "remoteModel" => s with { RemoteModel = Str(value) },
        "apiKeyEnv" => s with { ApiKeyEnv = ApiKeyVariable(value) },
        "allowInsecureHttp" => s with { AllowInsecureHttp = Bool(value) },
        "speculative" => s with { Speculative = OneOf(value, "auto", "off") },
        _ => s, // Unknown names are ignored so newer clients can send settings older servers lack.
    };

    private static string? Str(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.String => v.GetString() is { Length: > 0 } text ? text : null,
        JsonValueKind.Null => null,
        _ => throw new InvalidOperationException($"expected a string, got {v.ValueKind}"),
    };

    private static bool Bool(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.String when bool.TryParse(v.GetString(), out bool b) => b, // from a command-line flag
        _ => throw new InvalidOperationException($"expected true or false, got {v.ValueKind}"),
    };

    private static double Number(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.Number => v.GetDouble(),
        JsonValueKind.String => double.Parse(v.GetString()!, NumberStyles.Float, CultureInfo.InvariantCulture),
        _ => throw new InvalidOperationException($"expected a number, got {v.ValueKind}"),
    };

    private static double InRange(string name, JsonElement v)
    {
        double d = Number(v);
        var (min, max) = NumericRanges[name];
        return d >= min && d <= max ? d : throw new InvalidOperationException($"expected a number from {min} to {max}, got {d}");
    }

    private static int WholeInRange(string name, JsonElement v)
    {
        double d = InRange(name, v);
        return d == Math.Floor(d) ? (int)d : throw new InvalidOperationException($"expected a whole number, got {d}");
    }

    /// <summary>
    /// apiKeyEnv names the variable whose value is sent to the endpoint as a bearer token. Settings can come from
    /// a workspace the user did not write, so only names made for such keys are accepted: CODELLAMA_* or *_API_KEY
    /// (never AWS_SECRET_ACCESS_KEY, GITHUB_TOKEN, ...). docs/scaling.md states this rule.
    /// </summary>
    private static string? ApiKeyVariable(JsonElement v)
    {
        string? name = Str(v);
        return name is null || ApiKeyVariablePattern().IsMatch(name)
            ? name
            : throw new InvalidOperationException($"'{name}' is not an API key variable name; use CODELLAMA_<NAME> or <NAME>_API_KEY (upper case, digits, '_')");
    }

    [GeneratedRegex("^(CODELLAMA_[A-Z0-9_]+|[A-Z][A-Z0-9_]*_API_KEY)$")]
    private static partial Regex ApiKeyVariablePattern();

    private static string OneOf(JsonElement v, params string[] allowed)
    {
        string? text = Str(v);
        return text is not null && allowed.Contains(text) ? text : throw new InvalidOperationException($"expected one of {string.Join(", ", allowed)}, got '{text}'");
    }

    private static string ToCamelCase(string kebab)
    {
        var parts = kebab.Split('-', StringSplitOptions.RemoveEmptyEntries);
        return parts.Length == 0 ? kebab : parts[0] + string.Concat(parts.Skip(1).Select(p => char.ToUpperInvariant(p[0]) + p[1..]));
    }
}
