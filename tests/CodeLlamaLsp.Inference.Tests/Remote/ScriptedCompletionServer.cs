// A tiny HTTP/1.1 server on 127.0.0.1 that speaks the OpenAI completions streaming protocol the way
// vLLM does (chunked text/event-stream) and misbehaves on cue. Raw TCP, so tests can see the exact
// request bytes, stall at any point and observe the client closing the connection.
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace CodeLlamaLsp.Inference.Tests.Remote;

/// <summary>One request as the server received it.</summary>
internal sealed record ReceivedRequest(string Method, string Path, IReadOnlyDictionary<string, string> Headers, string Body, DateTime ReceivedAtUtc)
{
    public JsonElement Json => JsonDocument.Parse(Body).RootElement;
}

/// <summary>Serves scripted answers; the handler gets the request and a writer for the raw response.</summary>
internal sealed class ScriptedCompletionServer : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly Func<ReceivedRequest, ResponseWriter, Task> _handler;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentQueue<ReceivedRequest> _requests = new();
    private readonly ConcurrentBag<Task> _connections = [];
    private readonly Task _acceptLoop;

    public ScriptedCompletionServer(Func<ReceivedRequest, ResponseWriter, Task> handler)
    {
        _handler = handler;
        _listener.Start();
        _acceptLoop = AcceptLoopAsync();
    }

    public Uri Endpoint => new($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}");

    public IReadOnlyList<ReceivedRequest> Requests => _requests.ToArray();

    /// <summary>Exceptions thrown by handlers (other than the client going away), so tests can fail on them.</summary>
    public ConcurrentQueue<Exception> HandlerErrors { get; } = new();

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        try
        {
#pragma warning disable VSTHRD003 // The accept loop was started by this object's constructor.
            await _acceptLoop;
#pragma warning restore VSTHRD003
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
        {
        }

        await Task.WhenAll(_connections.ToArray()).WaitAsync(TimeSpan.FromSeconds(5)).ContinueWith(_ => { }, TaskScheduler.Default);
        _stop.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client = await _listener.AcceptTcpClientAsync(_stop.Token);
            _connections.Add(Task.Run(() => ServeAsync(client)));
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        using (client)
        {
            NetworkStream stream = client.GetStream();
            try
            {
                ReceivedRequest request = await ReadRequestAsync(stream, _stop.Token);
                _requests.Enqueue(request);
                await _handler(request, new ResponseWriter(stream, _stop.Token));
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException)
            {
                // The client went away or the test ended; that is what several tests provoke.
            }
            catch (Exception e)
            {
                HandlerErrors.Enqueue(e);
            }
        }
    }

    private static async Task<ReceivedRequest> ReadRequestAsync(NetworkStream stream, CancellationToken cancellationToken)
    {
        var head = new List<byte>();
        var one = new byte[1];
        while (!EndsWithBlankLine(head))
        {
            if (await stream.ReadAsync(one, cancellationToken) == 0)
            {
                throw new IOException("client closed before sending a whole request head");
            }

            head.Add(one[0]);
        }

        string[] lines = Encoding.ASCII.GetString(head.ToArray()).Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        string[] requestLine = lines[0].Split(' ');
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (string line in lines.Skip(1))
        {
            int colon = line.IndexOf(':', StringComparison.Ordinal);
            headers[line[..colon].Trim()] = line[(colon + 1)..].Trim();
        }

        int length = headers.TryGetValue("Content-Length", out string? value) ? int.Parse(value, System.Globalization.CultureInfo.InvariantCulture) : 0;
        var body = new byte[length];
        await stream.ReadExactlyAsync(body, cancellationToken);
        return new ReceivedRequest(requestLine[0], requestLine[1], headers, Encoding.UTF8.GetString(body), DateTime.UtcNow);
    }

    private static bool EndsWithBlankLine(List<byte> bytes) =>
        bytes.Count >= 4 && bytes[^4] == '\r' && bytes[^3] == '\n' && bytes[^2] == '\r' && bytes[^1] == '\n';
}

/// <summary>Writes a raw HTTP response: whole answers, or a chunked event stream event by event.</summary>
internal sealed class ResponseWriter(NetworkStream stream, CancellationToken stopping)
{
    /// <summary>A complete non-streamed answer (errors), then the connection closes.</summary>
    public Task SendStatusAsync(int status, string body, params (string Name, string Value)[] headers)
    {
        var text = new StringBuilder();
        text.Append(System.Globalization.CultureInfo.InvariantCulture, $"HTTP/1.1 {status} Scripted\r\nContent-Type: application/json\r\nConnection: close\r\n");
        foreach ((string name, string value) in headers)
        {
            text.Append(System.Globalization.CultureInfo.InvariantCulture, $"{name}: {value}\r\n");
        }

        byte[] bodyBytes = Encoding.UTF8.GetBytes(body);
        text.Append(System.Globalization.CultureInfo.InvariantCulture, $"Content-Length: {bodyBytes.Length}\r\n\r\n");
        return WriteAsync([.. Encoding.ASCII.GetBytes(text.ToString()), .. bodyBytes]);
    }

    /// <summary>Status line and headers of an event stream, as vLLM sends them.</summary>
    public Task StartEventStreamAsync() =>
        WriteAsync(Encoding.ASCII.GetBytes("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"));

    /// <summary>One completion event: {"choices":[{"index":0,"text":...,"finish_reason":...}]}.</summary>
    public Task SendCompletionAsync(string text, string? finishReason = null, string? stopReason = null)
    {
        string finish = finishReason is null ? "null" : JsonSerializer.Serialize(finishReason);
        string stop = stopReason is null ? "null" : JsonSerializer.Serialize(stopReason);
        return SendDataAsync(
            $"{{\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"text\":{JsonSerializer.Serialize(text)},\"logprobs\":null,\"finish_reason\":{finish},\"stop_reason\":{stop}}}]}}");
    }

    /// <summary>"data: ..." followed by the blank line that ends the event.</summary>
    public Task SendDataAsync(string data) => SendChunkAsync($"data: {data}\n\n");

    /// <summary>Arbitrary bytes of the body, as one HTTP chunk.</summary>
    public Task SendChunkAsync(string raw)
    {
        byte[] payload = Encoding.UTF8.GetBytes(raw);
        return WriteAsync([.. Encoding.ASCII.GetBytes($"{payload.Length:X}\r\n"), .. payload, .. "\r\n"u8.ToArray()]);
    }

    /// <summary>The last chunk of a chunked body.</summary>
    public Task EndStreamAsync() => WriteAsync("0\r\n\r\n"u8.ToArray());

    /// <summary>True when the client closes (or resets) the connection within the time given.</summary>
    public async Task<bool> WaitForClientCloseAsync(TimeSpan within)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        timeout.CancelAfter(within);
        var buffer = new byte[256];
        try
        {
            while (await stream.ReadAsync(buffer, timeout.Token) > 0)
            {
            }

            return true;
        }
        catch (IOException)
        {
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>Waits without answering, as a stuck or overloaded engine would.</summary>
    public Task StallAsync(TimeSpan duration) => Task.Delay(duration, stopping);

    private async Task WriteAsync(byte[] bytes)
    {
        await stream.WriteAsync(bytes, stopping);
        await stream.FlushAsync(stopping);
    }
}
