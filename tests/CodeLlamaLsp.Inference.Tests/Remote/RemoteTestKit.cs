// Shared pieces of the remote-backend tests: fast settings against the scripted server, a request,
// and collecting a stream.
using CodeLlamaLsp.Inference.Generation;
using CodeLlamaLsp.Inference.Remote;

namespace CodeLlamaLsp.Inference.Tests.Remote;

internal static class RemoteTestKit
{
    public const string Model = "codellama-34b-instruct-gptq";

    /// <summary>Small timeouts and backoff so misbehaviour tests finish in well under a second each.</summary>
    public static RemoteBackendSettings Settings(Uri endpoint) => new()
    {
        Endpoint = endpoint,
        Model = Model,
        ConnectTimeout = TimeSpan.FromSeconds(2),
        FirstByteTimeout = TimeSpan.FromSeconds(2),
        IdleTimeout = TimeSpan.FromSeconds(2),
        InitialBackoff = TimeSpan.FromMilliseconds(10),
        MaxBackoff = TimeSpan.FromMilliseconds(40),
        MaxRetries = 2,
    };

    public static GenerationRequest Request(string promptText = "<s>[INST] Complete the code [/INST]", params string[] stopStrings) =>
        new([1, 518, 25580], promptText, GenerationOptions.Greedy(64) with { StopStrings = stopStrings });

    public static async Task<List<GenerationChunk>> CollectAsync(ITextGenerator generator, GenerationRequest request, CancellationToken cancellationToken = default)
    {
        var chunks = new List<GenerationChunk>();
        await foreach (GenerationChunk chunk in generator.GenerateAsync(request, cancellationToken))
        {
            chunks.Add(chunk);
        }

        return chunks;
    }

    /// <summary>A port nothing listens on: bound once to get a free number, then released.</summary>
    public static int FreePort()
    {
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        int port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}
