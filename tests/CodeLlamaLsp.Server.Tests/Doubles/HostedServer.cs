// Runs a LanguageServer inside the test process over in-memory duplex streams, with a test loader, and
// connects an LspTestClient to it: the full protocol stack without starting a process.
using CodeLlamaLsp.Server.Backend;
using CodeLlamaLsp.Server.Lsp;
using Nerdbank.Streams;

namespace CodeLlamaLsp.Server.Tests.Doubles;

internal sealed class HostedServer : IAsyncDisposable
{
    private HostedServer(LanguageServer server, Task<int> run, LspTestClient client, StringWriter log)
    {
        Server = server;
        Run = run;
        Client = client;
        Log = log;
    }

    public LanguageServer Server { get; }

    /// <summary>Completes with the exit code the process would return.</summary>
    public Task<int> Run { get; }

    public LspTestClient Client { get; }

    public StringWriter Log { get; }

    public static HostedServer Start(IModelBackendLoader loader, ServerSettings? settings = null)
    {
        var (serverSide, clientSide) = FullDuplexStream.CreatePair();
        var log = new StringWriter();
        var server = new LanguageServer(serverSide, serverSide, settings ?? new ServerSettings { Model = "test-model", DebounceMs = 0 }, loader, new LspLog(TextWriter.Synchronized(log)) { Level = LogLevel.Debug });
        var run = Task.Run(server.RunAsync);
        var client = LspTestClient.Connect(clientSide, clientSide);
        return new HostedServer(server, run, client, log);
    }

    public async ValueTask DisposeAsync()
    {
        await Client.DisposeAsync();
        await Run.WaitAsync(TimeSpan.FromSeconds(10));
        if (TestContext.CurrentContext.Result.Outcome.Status != NUnit.Framework.Interfaces.TestStatus.Passed)
        {
            await TestContext.Out.WriteLineAsync("server log:\n" + Log);
        }
    }
}
