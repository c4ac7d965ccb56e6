// `codellama-lsp bench`: load time, GPU memory, prefill and decode speed of the CUDA engine on a checkpoint,
// with the device's read bandwidth measured in the same run and decode expressed as a share of the
// bandwidth floor (bytes per token / measured bandwidth), and speculative decoding's gain (SpeculativeBench).
// Prefill, decode and speculative rows run through CudaDecodingSession, the IDecodingSession the server uses, on a
// CudaModel loaded as the server loads it; the linear-layer rows time the model's projections alone
// (LinearLayersProbe). Medians of repeats after a warm-up.
using System.Diagnostics;
using System.Globalization;
using CodeLlamaLsp.Inference.Engine.Cuda;
using CodeLlamaLsp.Inference.Generation;
using CodeLlamaLsp.Inference.Loading;

namespace CodeLlamaLsp.Server.Cli;

internal static class BenchCommand
{
    public const string Usage =
        "usage: codellama-lsp bench --model M [--prompt-tokens 512,2048] [--decode-tokens 128] [--context 0,2048,8192] [--repeats 3] [--device cpu]";

    /// <summary>Prompt rows per forward pass: the server's (the GEMM's weight reuse and wave fill grow with it).</summary>
    private const int PrefillChunkRows = Inference.Engine.CudaDecodingSessionDefaults.MaxBatchRows;

    public static async Task<int> RunAsync(string[] args)
    {
        string? model = null;
        int[] prompts = [512, 2048];
        int decodeTokens = 128;
        int[] contexts = [0, 2048, 8192];
        int repeats = 3;
        bool cpu = false;
        try
        {
            for (int i = 0; i < args.Length; i++)
            {
                string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
                switch (args[i])
                {
                    case "--model": model = Next(); break;
                    case "--prompt-tokens": prompts = Ints(Next()); break;
                    case "--decode-tokens": decodeTokens = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                    case "--context": contexts = Ints(Next()); break;
                    case "--repeats": repeats = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                    case "--device": cpu = EngineFlags.ParseDevice(Next()) == Inference.Engine.DeviceKind.Cpu; break;
                    default: throw new ArgumentException($"unknown option '{args[i]}'.");
                }
            }

            if (model == null)
            {
                throw new ArgumentException("--model is required.");
            }
        }
        catch (Exception e) when (e is ArgumentException or FormatException or OverflowException or CommandLineException)
        {
            await Console.Error.WriteLineAsync($"codellama-lsp bench: {e.Message} {Usage}").ConfigureAwait(false);
            return 2;
        }

        if (cpu)
        {
            return SpeculativeBench.RunOnCpu(model, decodeTokens, Math.Max(1, repeats));
        }

        var device = CudaDevice.TryCreateCuda(out var whyNot);
        if (device == null)
        {
            await Console.Error.WriteLineAsync($"codellama-lsp bench: needs a CUDA device ({whyNot}).").ConfigureAwait(false);
            return 1;
        }

        try
        {
            Run(device, model, prompts, decodeTokens, contexts, Math.Max(1, repeats));
            return 0;
        }
        catch (Exception e) when (e is ModelLoadException or InvalidOperationException or NotSupportedException or IOException)
        {
            await Console.Error.WriteLineAsync($"codellama-lsp bench: {e.Message}").ConfigureAwait(false);
            return 1;
        }
    }

    private static void Run(CudaDevice device, string modelPath, int[] prompts, int decodeTokens, int[] contexts, int repeats)
    {
        var log = Console.Error;
        var rows = new List<(string What, string Value)>();
        void Row(string what, string value)
        {
            rows.Add((what, value));
            log.WriteLine($"bench: {what}: {value}");
        }

        Row("device", $"{device.Accelerator.Name}, {Gib(device.TotalMemory)} GiB, {device.Multiprocessors} SMs");
        Row("date (UTC)", DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture));
        double bandwidth = BandwidthProbe.MeasureReadBytesPerSecond(device, repeats: Math.Max(5, repeats * 3));
        Row("read bandwidth (16-byte loads, 4 GiB)", $"{bandwidth / 1e12:F2} TB/s");
        Row("small-batch kernel grid", $"{device.SmallBatchBlocks} blocks ({device.SmallBatchBlocks / device.Multiprocessors} per multiprocessor)");

        long freeBefore = device.FreeMemory;
        var sw = Stopwatch.StartNew();
        using var checkpoint = ModelLoader.Load(modelPath);
        double mapSeconds = sw.Elapsed.TotalSeconds;
        using var backend = new CudaBackend(device);
        // Room for the longest prompt or context, and for the speculative rows' prompt (a short --prompt-tokens run crashed there).
        int contextLength = Math.Max(Math.Max(prompts.DefaultIfEmpty(0).Max(), contexts.DefaultIfEmpty(0).Max()), SpeculativeBench.PromptTokens + SpeculativeBench.DraftLength) + decodeTokens + 16;
        int lastPercent = -1;
        using var model = CudaModel.Load(backend, checkpoint.Weights, progress: p =>
        {
            int percent = (int)(p * 100);
            if (percent / 10 != lastPercent / 10)
            {
                lastPercent = percent;
                log.WriteLine($"bench: loading {percent}%");
            }
        });
        using var session = new CudaDecodingSession(model, contextLength, PrefillChunkRows);
        device.Synchronize();
        Row("load time (map + upload)", $"{sw.Elapsed.TotalSeconds:F1} s (map {mapSeconds:F1} s; {model.LoadTimes})");
        Row("GPU memory (engine allocations)", $"{Gib(backend.AllocatedBytes)} GiB (context {contextLength}); device free before {Gib(freeBefore)}, after {Gib(device.FreeMemory)} GiB");
        long weightBytes = model.WeightBytesPerToken;
        Row("weight bytes read per token", $"{weightBytes / 1e9:F2} GB");

        var rng = new Random(1);
        var cfg = model.Config;
        int[] Tokens(int n) => Enumerable.Range(0, n).Select(_ => rng.Next(3, cfg.VocabSize)).ToArray();
        var greedy = GenerationOptions.Greedy(decodeTokens);

        // Warm-up: compiles nothing new, but touches every kernel once and captures the decode step's graph.
        session.Advance(session.BeginGeneration(Tokens(8), greedy, CancellationToken.None));

        // Median seconds to prefill p tokens from an empty cache and choose the first answer token, as a request does.
        double PrefillSeconds(int p)
        {
            var times = new List<double>();
            for (int r = 0; r < repeats; r++)
            {
                session.Reset();
                var tokens = Tokens(p);
                var t = Stopwatch.StartNew();
                session.BeginGeneration(tokens, greedy, CancellationToken.None);
                times.Add(t.Elapsed.TotalSeconds);
            }

            return Median(times);
        }

        // Prompts' products run on cuBLAS where it is installed, else on the built-in GEMM (a machine with the NVIDIA
        // driver alone): both are measured when cuBLAS is there, then the server's choice is restored.
        Row("prompt matrix products", device.PrefillGemm);
        bool[] gemmPaths = device.HasCublas ? [true, false] : [false];
        string PathName(bool cublas) => cublas ? "cuBLAS" : "built-in GEMM";
        long kvDim = (long)cfg.NumKvHeads * cfg.HeadDim;
        long linearParams = cfg.NumLayers * ((cfg.HiddenSize * (cfg.HiddenSize + (2 * kvDim))) + ((long)cfg.HiddenSize * cfg.HiddenSize) + (3L * cfg.HiddenSize * cfg.IntermediateSize));
        int chunkRows = Math.Min(PrefillChunkRows, prompts.DefaultIfEmpty(PrefillChunkRows).Max());
        foreach (bool cublas in gemmPaths)
        {
            device.UseCublas = cublas;
            foreach (int p in prompts)
            {
                double seconds = PrefillSeconds(p);
                Row($"prefill {p} tokens ({PathName(cublas)})", $"{p / seconds:F0} tok/s ({seconds * 1000:F0} ms)");
            }

            // Where prefill time goes: the GPTQ products of one chunk alone, as tensor-core throughput.
            double gemm = LinearLayersProbe.SecondsPerPass(model, chunkRows, Math.Max(3, repeats));
            Row(
                $"linear layers only, {chunkRows} rows ({PathName(cublas)})",
                $"{gemm * 1000:F1} ms = {gemm * 1000 / chunkRows:F3} ms/token -> {2.0 * linearParams * chunkRows / gemm / 1e12:F0} TFLOP/s");

            // Just past the small-batch kernel (a longer typed tail: 17 to 128 rows), and 512 rows, ExLlamaV2's peer row.
            foreach (int r in new[] { LinearLayersProbe.SmallBatchMaxRows + 1, 64, 128, 512 })
            {
                double t = LinearLayersProbe.SecondsPerPass(model, r, Math.Max(3, repeats));
                Row($"linear layers only, {r} rows ({PathName(cublas)})", $"{t * 1000:F2} ms = {t * 1000 / r:F3} ms/row");
            }
        }

        device.UseCublas = device.HasCublas;

        // Small batches (a few typed tokens, speculative drafts): 4-bit layers of up to LinearLayersProbe.SmallBatchMaxRows
        // rows read each weight once for all rows on tensor cores.
        foreach (int r in new[] { 1, 4, 9, LinearLayersProbe.SmallBatchMaxRows })
        {
            double t = LinearLayersProbe.SecondsPerPass(model, r, Math.Max(3, repeats));
            Row($"linear layers only, {r} rows (small batch)", $"{t * 1000:F2} ms = {t * 1000 / r:F3} ms/row");
        }

        // Decode as the server's generator drives the session: one Advance per token, each one graph replay.
        foreach (int ctx in contexts)
        {
            double sec = SessionDecodeSeconds(session, Tokens(Math.Max(1, ctx)), decodeTokens, repeats);
            long bytes = weightBytes + KvBytesPerToken(cfg, ctx + (decodeTokens / 2));
            double floor = bytes / bandwidth;
            Row($"decode at context {ctx}", $"{1 / sec:F1} tok/s ({sec * 1000:F2} ms/token); floor {floor * 1000:F2} ms ({bytes / 1e9:F2} GB/token) -> {100 * floor / sec:F0}% of the bandwidth floor");
        }

        Row("kernels per decode step (one CUDA graph)", $"{session.LaunchesPerDecodeStep} ({session.ProgrammaticEdgesPerDecodeStep} launched before their predecessor ends)");
        double linears = LinearLayersProbe.SecondsPerPass(model, 1, Math.Max(5, repeats * 3));
        Row("linear layers only (all GEMVs of one step, graph)", $"{linears * 1000:F2} ms -> {weightBytes / linears / 1e12:F2} TB/s, {100 * (weightBytes / bandwidth) / linears:F0}% of the bandwidth floor");

        // Speculative decoding through the same session (a draft is verified in one multi-row pass).
        session.Reset();
        foreach (var (what, value) in SpeculativeBench.Measure(session, Tokens(SpeculativeBench.PromptTokens), decodeTokens, repeats))
        {
            Row(what, value);
        }

        Console.WriteLine();
        Console.WriteLine("| measure | value |");
        Console.WriteLine("|---|---|");
        foreach (var (what, value) in rows)
        {
            Console.WriteLine($"| {what} | {value} |");
        }
    }

    /// <summary>
    /// Median seconds per decode step through <paramref name="session"/> after <paramref name="prompt"/>: the prompt is
    /// prefilled once; each repeat begins a greedy generation on it (the prefix cache recomputes only its last token)
    /// and times <paramref name="steps"/> Advance calls, as the server's generator makes them.
    /// </summary>
    private static double SessionDecodeSeconds(CudaDecodingSession session, int[] prompt, int steps, int repeats)
    {
        var greedy = GenerationOptions.Greedy(steps);
        int next = session.BeginGeneration(prompt, greedy, CancellationToken.None);
        next = session.Advance(next); // warm-up: the decode step's graph is captured once
        var perToken = new List<double>();
        for (int r = 0; r < repeats; r++)
        {
            next = session.BeginGeneration(prompt, greedy, CancellationToken.None);
            var t = Stopwatch.StartNew();
            for (int i = 0; i < steps; i++)
            {
                next = session.Advance(next);
            }

            perToken.Add(t.Elapsed.TotalSeconds / steps);
        }

        return Median(perToken);
    }

    /// <summary>KV-cache bytes a decode step reads at context length <paramref name="tokens"/>: fp16 keys and values of every layer.</summary>
    private static long KvBytesPerToken(Inference.Model.LlamaConfig c, int tokens) => (long)c.NumLayers * c.NumKvHeads * c.HeadDim * 2 * 2 * tokens;

    internal static double Median(List<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
    }

    private static int[] Ints(string csv) => csv.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();

    private static string Gib(long bytes) => (bytes / (1024.0 * 1024 * 1024)).ToString("F2", CultureInfo.InvariantCulture);
}
