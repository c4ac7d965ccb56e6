// The server's visible state for codellama/status: loading, ready, busy or error, with a message. Sends a
// notification on every change so a status bar never shows stale state.
using CodeLlamaLsp.Server.Protocol;

namespace CodeLlamaLsp.Server.Lsp;

public sealed class StatusReporter
{
    private readonly Lock _lock = new();
    private StatusParams _current = new(ServerStates.Loading, "starting");
    private StatusParams? _beforeBusy;
    private ClientChannel? _client;

    public StatusParams Current
    {
        get
        {
            lock (_lock)
            {
                return _current;
            }
        }
    }

    /// <summary>Connects the reporter to the client (after initialized) and sends the current state.</summary>
    public void Attach(ClientChannel client)
    {
        lock (_lock)
        {
            _client = client;
            client.Status(_current);
        }
    }

    public void Set(string state, string message, double? progress = null)
    {
        lock (_lock)
        {
            var next = new StatusParams(state, message, progress);
            _beforeBusy = null;
            if (next != _current)
            {
                _current = next;
                _client?.Status(next);
            }
        }
    }

    /// <summary>Marks generation running / done; only a ready server turns busy, and it returns to what it was.</summary>
    public void SetBusy(bool busy, string message)
    {
        lock (_lock)
        {
            if (busy && _current.State == ServerStates.Ready)
            {
                _beforeBusy = _current;
                _current = new StatusParams(ServerStates.Busy, message);
                _client?.Status(_current);
            }
            else if (!busy && _current.State == ServerStates.Busy && _beforeBusy is not null)
            {
                _current = _beforeBusy;
                _beforeBusy = null;
                _client?.Status(_current);
            }
        }
    }
}
