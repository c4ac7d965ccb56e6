// A small LSP client for tests: StreamJsonRpc over a server's stdio (the real codellama-lsp process) or
// over in-memory streams (a server hosted in the test). It records every notification the server sends,
// answers the server's requests (progress create, applyEdit), and can write raw bytes to test bad input.
using System.Collections.Concurrent;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Text;
using System.Text.Json;
using CodeLlamaLsp.Server.Protocol;
using Nerdbank.Streams;
using StreamJsonRpc;
using StreamJsonRpc.Protocol;
using StreamJsonRpc.Reflection;

namespace CodeLlamaLsp.Server.Tests;

public sealed class LspTestClient : IAsyncDisposable
{
    private readonly Stream _toServer;

    // JsonRpc and SendRawAsync write through this one pipe, so raw bytes land between messages, never inside one.
    private readonly PipeWriter _writer;
    private readonly RecordingStream _fromServer;
    private readonly JsonRpc _rpc;
    private readonly ConcurrentQueue<(string Method, JsonElement Params)> _notifications = new();
    private readonly SemaphoreSlim _notified = new(0);
    private readonly StringBuilder _stderr = new();
    private int _version = 1;

    private LspTestClient(Stream toServer, Stream fromServer, Process? process)
    {
        _toServer = toServer;
        _fromServer = new RecordingStream(fromServer);
        Process = process;
        var formatter = new SystemTextJsonFormatter();
        LspJson.Configure(formatter.JsonSerializerOptions);
        _writer = _toServer.UsePipeWriter();
        _rpc = new JsonRpc(new TolerantMessageHandler(_writer, _fromServer.UsePipeReader(), formatter, this));
        _rpc.AddLocalRpcTarget(new ClientTarget(this), new JsonRpcTargetOptions { UseSingleObjectParameterDeserialization = true });
        _rpc.StartListening();
    }

    /// <summary>The server process when started with <see cref="StartProcess"/>.</summary>
    public Process? Process { get; }

    /// <summary>What the server wrote to stderr so far (process mode).</summary>
    public string Stderr
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString();
            }
        }
    }

    /// <summary>Everything the server wrote to its stdout so far, framing included.</summary>
    public string RawOutput => _fromServer.Text;

    /// <summary>workspace/applyEdit requests the server made; the client answers applied = true.</summary>
    public ConcurrentQueue<JsonElement> AppliedEdits { get; } = new();

    public IEnumerable<(string Method, JsonElement Params)> Notifications => _notifications;

    /// <summary>Starts `codellama-lsp --stdio ARGS` and connects to it.</summary>
    public static LspTestClient StartProcess(params string[] args)
    {
        var process = System.Diagnostics.Process.Start(ServerProcess.StartInfo(["--stdio", .. args]))
            ?? throw new InvalidOperationException("could not start codellama-lsp");
        var client = new LspTestClient(process.StandardInput.BaseStream, process.StandardOutput.BaseStream, process);
        process.ErrorDataReceived += (_, e) =>
        {
            lock (client._stderr)
            {
                client._stderr.AppendLine(e.Data);
            }
        };
        process.BeginErrorReadLine();
        return client;
    }

    /// <summary>Connects to a server over the given streams (for servers hosted inside the test).</summary>
    public static LspTestClient Connect(Stream toServer, Stream fromServer) => new(toServer, fromServer, null);

    public Task<JsonElement> RequestAsync(string method, object? parameters, CancellationToken cancellationToken = default) =>
        _rpc.InvokeWithParameterObjectAsync<JsonElement>(method, parameters, cancellationToken);

    public Task<T> RequestAsync<T>(string method, object? parameters, CancellationToken cancellationToken = default) =>
        _rpc.InvokeWithParameterObjectAsync<T>(method, parameters, cancellationToken);

    public Task NotifyAsync(string method, object? parameters) => _rpc.NotifyWithParameterObjectAsync(method, parameters);

    /// <summary>The error code of a request that must fail; fails the test if it succeeds.</summary>
    public async Task<int> ErrorCodeOfAsync(string method, object? parameters)
    {
        try
        {
            await RequestAsync(method, parameters);
        }
        catch (RemoteInvocationException ex)
        {
            return ex.ErrorCode;
        }
        catch (RemoteRpcException ex) when (ex.ErrorCode is { } code)
        {
            // StreamJsonRpc reports InvalidParams (-32602) as RemoteMethodNotFoundException.
            return (int)code;
        }

        Assert.Fail($"{method} succeeded but an error was expected");
        return 0;
    }

    /// <summary>initialize + initialized, returning initialize's result.</summary>
    public async Task<JsonElement> InitializeAsync(object? initializationOptions = null, bool workDoneProgress = true)
    {
        var result = await RequestAsync("initialize", new
        {
            processId = Environment.ProcessId,
            clientInfo = new { name = "LspTestClient", version = "1" },
            rootUri = (string?)null,
            capabilities = new { window = new { workDoneProgress }, textDocument = new { inlineCompletion = new { } } },
            initializationOptions,
        });
        await NotifyAsync("initialized", new { });
        return result;
    }

    public Task OpenAsync(string uri, string text, string languageId = "python") =>
        NotifyAsync("textDocument/didOpen", new DidOpenTextDocumentParams(new TextDocumentItem(uri, languageId, _version++, text)));

    /// <summary>Replaces a range of the document (incremental sync).</summary>
    public Task ChangeAsync(string uri, Protocol.Range range, string text) =>
        NotifyAsync("textDocument/didChange", new DidChangeTextDocumentParams(new VersionedTextDocumentIdentifier(uri, _version++), [new TextDocumentContentChangeEvent(text, range)]));

    /// <summary>Replaces the whole document (full sync).</summary>
    public Task ReplaceAsync(string uri, string text) =>
        NotifyAsync("textDocument/didChange", new DidChangeTextDocumentParams(new VersionedTextDocumentIdentifier(uri, _version++), [new TextDocumentContentChangeEvent(text)]));

    public Task<InlineCompletionList> InlineCompletionAsync(string uri, Position position, CancellationToken cancellationToken = default) =>
        RequestAsync<InlineCompletionList>("textDocument/inlineCompletion", new InlineCompletionParams(new TextDocumentIdentifier(uri), position, new InlineCompletionContext(2)), cancellationToken);

    public Task<CompletionList> CompletionAsync(string uri, Position position, CancellationToken cancellationToken = default) =>
        RequestAsync<CompletionList>("textDocument/completion", new CompletionParams(new TextDocumentIdentifier(uri), position), cancellationToken);

    public Task<DebugStats> DebugStatsAsync() => RequestAsync<DebugStats>(CustomMethods.DebugStats, null);

    /// <summary>Writes a Content-Length framed body as is (it need not be JSON).</summary>
    public async Task SendRawAsync(string body)
    {
        byte[] content = Encoding.UTF8.GetBytes(body);
        byte[] header = Encoding.ASCII.GetBytes($"Content-Length: {content.Length}\r\n\r\n");
        await _writer.WriteAsync(header);
        await _writer.WriteAsync(content);
    }

    /// <summary>Writes bytes as they are, framing included or not (for framing and fuzz tests).</summary>
    public async Task SendBytesAsync(ReadOnlyMemory<byte> bytes) => await _writer.WriteAsync(bytes);

    /// <summary>The codes of error replies without an id (answers to unreadable messages) so far.</summary>
    public IReadOnlyList<int> ParseErrors =>
        _notifications.Where(n => n.Method == "$/errorWithoutId").Select(n => n.Params.GetProperty("code").GetInt32()).ToList();

    /// <summary>Waits for a notification of <paramref name="method"/> whose params satisfy <paramref name="match"/>.</summary>
    public async Task<JsonElement> WaitForNotificationAsync(string method, Func<JsonElement, bool>? match = null, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (true)
        {
            foreach (var (m, p) in _notifications)
            {
                if (m == method && (match is null || match(p)))
                {
                    return p;
                }
            }

            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
            {
                Assert.Fail($"no {method} notification arrived; got: {string.Join(", ", _notifications.Select(n => n.Method + " " + n.Params.GetRawText()))}\nstderr:\n{Stderr}");
            }

            await _notified.WaitAsync(left < TimeSpan.FromMilliseconds(200) ? left : TimeSpan.FromMilliseconds(200));
        }
    }

    /// <summary>Waits for codellama/status to reach a state (ready, error...).</summary>
    public Task<JsonElement> WaitForStatusAsync(string state, TimeSpan? timeout = null) =>
        WaitForNotificationAsync(CustomMethods.Status, p => p.GetProperty("state").GetString() == state, timeout);

    /// <summary>shutdown + exit; returns the process exit code (process mode) or null.</summary>
    public async Task<int?> ShutdownAndExitAsync()
    {
        await RequestAsync("shutdown", null);
        await NotifyAsync("exit", null);
        return await WaitForExitAsync();
    }

    public async Task<int?> WaitForExitAsync(TimeSpan? timeout = null)
    {
        if (Process is null)
        {
            return null;
        }

        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(30));
        await Process.WaitForExitAsync(cts.Token);
        return Process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (Process is not null && TestContext.CurrentContext.Result.Outcome.Status != NUnit.Framework.Interfaces.TestStatus.Passed)
        {
            await TestContext.Out.WriteLineAsync("server stderr:\n" + Stderr);
        }

        _rpc.Dispose();

        // The pipe writer does not own the stream: closing it is what tells the server the client is gone.
        await _writer.CompleteAsync();
        await _toServer.DisposeAsync();
        if (Process is { } process)
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
            }

            process.Dispose();
        }

        _notified.Dispose();
    }

    private void Record(string method, JsonElement parameters)
    {
        _notifications.Enqueue((method, parameters.Clone()));
        _notified.Release();
    }

    /// <summary>
    /// Error replies without an id (the answer to an unparsable message) are recorded as "$/errorWithoutId", and
    /// answers to raw requests (string ids) as "$/rawResponse", instead of reaching JsonRpc, which would treat
    /// them as a protocol violation and hang up.
    /// </summary>
    private sealed class TolerantMessageHandler(PipeWriter toServer, PipeReader fromServer, IJsonRpcMessageFormatter formatter, LspTestClient client)
        : HeaderDelimitedMessageHandler(toServer, fromServer, formatter)
    {
        protected override async ValueTask<JsonRpcMessage?> ReadCoreAsync(CancellationToken cancellationToken)
        {
            while (true)
            {
                var message = await base.ReadCoreAsync(cancellationToken);
                if (message is JsonRpcError { RequestId.IsNull: true } error)
                {
                    client.Record("$/errorWithoutId", JsonSerializer.SerializeToElement(new { code = (int)(error.Error?.Code ?? 0), message = error.Error?.Message }));
                }
                else if (message is IJsonRpcMessageWithId { RequestId.String: { } rawId } and (JsonRpcResult or JsonRpcError))
                {
                    // JsonRpc's own ids are numbers; a string id answers a request written with SendBytesAsync.
                    client.Record("$/rawResponse", JsonSerializer.SerializeToElement(new { id = rawId, isError = message is JsonRpcError }));
                }
                else
                {
                    return message;
                }

                ((IJsonRpcMessageBufferManager)this).DeserializationComplete(message);
            }
        }
    }

    /// <summary>The client side of the server's notifications and requests.</summary>
    private sealed class ClientTarget(LspTestClient client)
    {
        [JsonRpcMethod(CustomMethods.Status)]
        public void Status(JsonElement p) => client.Record(CustomMethods.Status, p);

        [JsonRpcMethod(CustomMethods.Explanation)]
        public void Explanation(JsonElement p) => client.Record(CustomMethods.Explanation, p);

        [JsonRpcMethod("window/logMessage")]
        public void LogMessage(JsonElement p) => client.Record("window/logMessage", p);

        [JsonRpcMethod("window/showMessage")]
        public void ShowMessage(JsonElement p) => client.Record("window/showMessage", p);

        [JsonRpcMethod("$/progress")]
        public void Progress(JsonElement p) => client.Record("$/progress", p);

        [JsonRpcMethod("window/workDoneProgress/create")]
        public object? CreateProgress(JsonElement p)
        {
            client.Record("window/workDoneProgress/create", p);
            return null;
        }

        [JsonRpcMethod("workspace/applyEdit")]
        public ApplyWorkspaceEditResult ApplyEdit(JsonElement p)
        {
            client.AppliedEdits.Enqueue(p.Clone());
            return new ApplyWorkspaceEditResult(true);
        }
    }

    /// <summary>Passes reads through and keeps a copy of the bytes, so tests can see replies JsonRpc drops (id null).</summary>
    private sealed class RecordingStream(Stream inner) : Stream
    {
        private readonly MemoryStream _copy = new();

        public string Text
        {
            get
            {
                lock (_copy)
                {
                    return Encoding.UTF8.GetString(_copy.GetBuffer(), 0, (int)_copy.Length);
                }
            }
        }

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count)
        {
            int n = inner.Read(buffer, offset, count);
            Keep(buffer.AsSpan(offset, n));
            return n;
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            int n = await inner.ReadAsync(buffer, cancellationToken);
            Keep(buffer.Span[..n]);
            return n;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
                _copy.Dispose();
            }

            base.Dispose(disposing);
        }

        private void Keep(ReadOnlySpan<byte> bytes)
        {
            lock (_copy)
            {
                // Only the first megabyte: enough to find replies, bounded for long typing sessions.
                if (_copy.Length < 1 << 20)
                {
                    _copy.Write(bytes);
                }
            }
        }
    }
}
