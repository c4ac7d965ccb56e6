// `codellama-lsp make-checkpoint`: writes a random GPTQ Llama checkpoint of a real geometry (34b, 13b,
// 7b or tiny) so the engine and benchmarks can run without downloading weights. Progress goes to stderr.
using System.Diagnostics;
using System.Globalization;
using CodeLlamaLsp.Inference.Loading;

namespace CodeLlamaLsp.Server.Cli;

internal static class MakeCheckpointCommand
{
    public const string Usage =
        "usage: codellama-lsp make-checkpoint --shape 34b|13b|7b|tiny [OPTIONS] OUT_DIR\n" +
        "Writes a random GPTQ checkpoint of a real CodeLlama geometry (no weights can be downloaded for benchmarks).\n" +
        "  --shape 34b|13b|7b|tiny   the geometry\n" +
        "  --bits 4|8|16             quantization bits; 16 writes fp16 weights (default 4)\n" +
        "  --group N|-1              GPTQ group size, -1 for one group (default 128)\n" +
        "  --act-order               act-order (desc_act) with a shuffled g_idx\n" +
        "  --seed N                  random seed (default 1)\n" +
        "  --tokenizer PATH          a tokenizer.model to copy in\n";

    public static async Task<int> RunAsync(string[] args)
    {
        RandomCheckpointOptions options;
        string outputDirectory;
        try
        {
            (options, outputDirectory) = Parse(args);
            RandomCheckpointWriter.Validate(options);
        }
        catch (ArgumentException e)
        {
            await Console.Error.WriteLineAsync(CommandLine.UsageError("make-checkpoint", e.Message.Split(" (Parameter")[0])).ConfigureAwait(false);
            return 2;
        }

        var stopwatch = Stopwatch.StartNew();
        int lastPercent = -1;
        var progress = new ConsoleProgress(p =>
        {
            int percent = p.BytesTotal == 0 ? 100 : (int)(100 * p.BytesDone / p.BytesTotal);
            if (percent / 5 != lastPercent / 5)
            {
                lastPercent = percent;
                Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"make-checkpoint: {percent,3}%  {Gigabytes(p.BytesDone)} of {Gigabytes(p.BytesTotal)} GB, {p.TensorsDone}/{p.TensorsTotal} tensors"));
            }
        });
        try
        {
            await RandomCheckpointWriter.WriteAsync(outputDirectory, options, progress).ConfigureAwait(false);
        }
        catch (IOException e)
        {
            await Console.Error.WriteLineAsync($"codellama-lsp make-checkpoint: cannot write {outputDirectory}: {e.Message}").ConfigureAwait(false);
            return 1;
        }
        catch (UnauthorizedAccessException e)
        {
            await Console.Error.WriteLineAsync($"codellama-lsp make-checkpoint: cannot write {outputDirectory}: {e.Message}").ConfigureAwait(false);
            return 1;
        }

        long bytes = new FileInfo(Path.Combine(outputDirectory, "model.safetensors")).Length;
        double seconds = stopwatch.Elapsed.TotalSeconds;
        await Console.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"make-checkpoint: wrote {outputDirectory} ({Gigabytes(bytes)} GB in {seconds:F1} s, {bytes / 1e9 / seconds:F2} GB/s)")).ConfigureAwait(false);
        return 0;
    }

    private static (RandomCheckpointOptions Options, string OutputDirectory) Parse(string[] args)
    {
        string? shape = null, tokenizer = null, output = null;
        int bits = 4, group = 128;
        ulong seed = 1;
        bool actOrder = false;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--shape": shape = Value(args, ref i); break;
                case "--bits": bits = Integer(args, ref i); break;
                case "--group": group = Integer(args, ref i); break;
                case "--act-order": actOrder = true; break;
                case "--seed":
                    string text = Value(args, ref i);
                    seed = ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out ulong s) ? s : throw new ArgumentException($"--seed expects a non-negative integer, got '{text}'.");
                    break;
                case "--tokenizer": tokenizer = Value(args, ref i); break;
                default:
                    if (args[i].StartsWith('-') && args[i] != "-")
                    {
                        throw new ArgumentException($"unknown option '{args[i]}'.");
                    }

                    output = output == null ? args[i] : throw new ArgumentException($"one OUT_DIR expected, got '{output}' and '{args[i]}'.");
                    break;
            }
        }

        if (shape == null)
        {
            throw new ArgumentException("--shape is required.");
        }

        if (output == null)
        {
            throw new ArgumentException("OUT_DIR is required.");
        }

        return (new RandomCheckpointOptions(shape, bits, group, actOrder, seed, tokenizer), output);
    }

    private static string Value(string[] args, ref int i) =>
        i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} expects a value.");

    private static int Integer(string[] args, ref int i)
    {
        string option = args[i];
        string text = Value(args, ref i);
        return int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int n) ? n : throw new ArgumentException($"{option} expects an integer, got '{text}'.");
    }

    private static string Gigabytes(long bytes) => (bytes / 1e9).ToString("F2", CultureInfo.InvariantCulture);

    /// <summary>Reports on the writer's thread, so lines come out in order and before the final summary.</summary>
    private sealed class ConsoleProgress(Action<LoadProgress> report) : IProgress<LoadProgress>
    {
        public void Report(LoadProgress value) => report(value);
    }
}
