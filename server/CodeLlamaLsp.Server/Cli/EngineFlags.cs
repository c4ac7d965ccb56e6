// The command-line flags shared by everything that loads and runs the model (generate, bench, the LSP
// server's --stdio mode), parsed in one place so the names and their checks stay the same everywhere.
using System.Globalization;
using CodeLlamaLsp.Inference.Engine;
using CodeLlamaLsp.Inference.Generation;

namespace CodeLlamaLsp.Server.Cli;

/// <summary>A bad command line; the message is the one line shown to the user.</summary>
internal sealed class CommandLineException(string message) : Exception(message);

/// <summary>
/// --model M, --revision R, --device cpu|cuda|auto, --context-size N, --max-tokens N, --temperature T,
/// --top-k K, --top-p P, --repetition-penalty X, --seed S, --speculative auto|off (also as --name=value).
/// </summary>
internal sealed class EngineFlags
{
    public string? Model { get; private set; }

    public string? Revision { get; private set; }

    public DeviceKind Device { get; private set; } = DeviceKind.Auto;

    /// <summary>Context length in tokens; 0 means the engine's default, min(max_position_embeddings, 4096).</summary>
    public int ContextSize { get; private set; }

    public int? MaxTokens { get; private set; }

    public float? Temperature { get; private set; }

    public int? TopK { get; private set; }

    public float? TopP { get; private set; }

    public float? RepetitionPenalty { get; private set; }

    public int? Seed { get; private set; }

    /// <summary>Speculative decoding from the prompt (GenerationOptions.Speculative); null keeps the default, auto.</summary>
    public SpeculativeMode? Speculative { get; private set; }

    /// <summary>What --help prints for these flags, one per line, for every command that takes them.</summary>
    public const string Help =
        "  --model M                 GPTQ checkpoint folder, or a model id in the local Hugging Face cache\n" +
        "  --revision R              branch or commit of a model id (default main)\n" +
        "  --device cpu|cuda|auto    where the model runs (default auto: CUDA when usable, else the CPU)\n" +
        "  --context-size N          context length in tokens (default min(max_position_embeddings, 4096))\n" +
        "  --max-tokens N            most tokens to generate (default 512)\n" +
        "  --temperature T           0 is greedy (default 0.7)\n" +
        "  --top-k K, --top-p P      sampling filters (defaults 40, 0.95)\n" +
        "  --repetition-penalty X    1 is none (default 1, as in transformers)\n" +
        "  --seed S                  sampling seed\n" +
        "  --speculative auto|off    speculative decoding from the prompt (default auto; same answer, docs/lsp-extensions.md)\n";

    /// <summary>
    /// Splits "--name=value" and reads "--name value" pairs. Calls <paramref name="other"/> for a flag this
    /// class does not know, with a function that takes its value; unknown flags there should throw.
    /// Arguments that are not options, and every argument after "--" (so text may start with '-'), go to
    /// <paramref name="positional"/>; without it they go to <paramref name="other"/> as well ("--" included).
    /// </summary>
    public static void Parse(IReadOnlyList<string> args, EngineFlags flags, Action<string, Func<string>> other, Action<string>? positional = null)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(flags);
        ArgumentNullException.ThrowIfNull(other);
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            if (positional != null && arg == "--")
            {
                foreach (string rest in args.Skip(i + 1))
                {
                    positional(rest);
                }

                return;
            }

            if (positional != null && (!arg.StartsWith('-') || arg == "-"))
            {
                positional(arg);
                continue;
            }

            string? inlineValue = null;
            if (arg.StartsWith("--", StringComparison.Ordinal) && arg.IndexOf('=', StringComparison.Ordinal) is > 2 and var eq)
            {
                inlineValue = arg[(eq + 1)..];
                arg = arg[..eq];
            }

            string name = arg;
            string Value()
            {
                if (inlineValue != null)
                {
                    return inlineValue;
                }

                if (i + 1 >= args.Count)
                {
                    throw new CommandLineException($"{name} needs a value.");
                }

                return args[++i];
            }

            if (!flags.TryRead(name, Value))
            {
                other(name, Value);
            }
        }
    }

    /// <summary>The request's sampling options: these flags over <paramref name="defaults"/>.</summary>
    public GenerationOptions ToGenerationOptions(GenerationOptions defaults)
    {
        ArgumentNullException.ThrowIfNull(defaults);
        return defaults with
        {
            MaxNewTokens = MaxTokens ?? defaults.MaxNewTokens,
            Temperature = Temperature ?? defaults.Temperature,
            TopK = TopK ?? defaults.TopK,
            TopP = TopP ?? defaults.TopP,
            RepetitionPenalty = RepetitionPenalty ?? defaults.RepetitionPenalty,
            Seed = Seed ?? defaults.Seed,
            Speculative = Speculative ?? defaults.Speculative,
        };
    }

    public static DeviceKind ParseDevice(string value) => value.ToUpperInvariant() switch
    {
        "CPU" => DeviceKind.Cpu,
        "CUDA" or "GPU" => DeviceKind.Cuda,
        "AUTO" => DeviceKind.Auto,
        _ => throw new CommandLineException($"--device must be cpu, cuda or auto, not '{value}'."),
    };

    public static SpeculativeMode ParseSpeculative(string value) => value.ToUpperInvariant() switch
    {
        "AUTO" => SpeculativeMode.Auto,
        "OFF" => SpeculativeMode.Off,
        _ => throw new CommandLineException($"--speculative must be auto or off, not '{value}'."),
    };

    private bool TryRead(string name, Func<string> value)
    {
        switch (name)
        {
            case "--model":
                Model = value();
                return true;
            case "--revision":
                Revision = value();
                return true;
            case "--device":
                Device = ParseDevice(value());
                return true;
            case "--context-size":
                ContextSize = Int(name, value(), min: 1);
                return true;
            case "--max-tokens":
                MaxTokens = Int(name, value(), min: 0);
                return true;
            case "--temperature":
                Temperature = Float(name, value(), min: 0f);
                return true;
            case "--top-k":
                TopK = Int(name, value(), min: 0);
                return true;
            case "--top-p":
                TopP = Float(name, value(), min: 0f);
                return true;
            case "--repetition-penalty":
                RepetitionPenalty = Float(name, value(), min: 0f);
                return true;
            case "--seed":
                Seed = Int(name, value(), min: int.MinValue);
                return true;
            case "--speculative":
                Speculative = ParseSpeculative(value());
                return true;
            default:
                return false;
        }
    }

    public static int Int(string name, string text, int min) =>
        int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v >= min
            ? v
            : throw new CommandLineException($"{name} expects an integer{(min > int.MinValue ? $" >= {min}" : string.Empty)}, not '{text}'.");

    public static float Float(string name, string text, float min) =>
        float.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out float v) && float.IsFinite(v) && v >= min
            ? v
            : throw new CommandLineException($"{name} expects a number >= {min.ToString(CultureInfo.InvariantCulture)}, not '{text}'.");
}
