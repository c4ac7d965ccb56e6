// Notices when the client closes the server's stdout. A server that is not writing would otherwise never find
// out (the broken pipe only shows on the next write) and would keep reading stdin with no one listening. On
// Unix, poll() reports POLLERR/POLLHUP on a pipe or socket whose reader has gone, without writing anything.
using System.Runtime.InteropServices;

namespace CodeLlamaLsp.Server.Lsp;

internal static partial class OutputHangup
{
    private const int StdoutFd = 1;
    private const short PollErr = 0x008;
    private const short PollHup = 0x010;
    private const short PollNval = 0x020;

    // Each poll waits this long, so cancellation is noticed within it; a hang-up wakes poll at once.
    private const int PollTimeoutMs = 500;

    /// <summary>Completes when stdout's reader has gone; never completes where that cannot be observed (Windows).</summary>
    public static Task WhenStdoutClosedAsync(CancellationToken cancellationToken)
    {
        if (OperatingSystem.IsWindows())
        {
            return Task.Delay(Timeout.Infinite, cancellationToken);
        }

        return Task.Factory.StartNew(() => Watch(cancellationToken), cancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    private static void Watch(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            // Events 0: only the conditions poll always reports (error, hang-up, invalid descriptor) wake it.
            var descriptor = new PollDescriptor { Fd = StdoutFd };
            if (Poll(ref descriptor, 1, PollTimeoutMs) > 0 && (descriptor.Revents & (PollErr | PollHup | PollNval)) != 0)
            {
                return;
            }
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct PollDescriptor
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [LibraryImport("libc", EntryPoint = "poll")]
    private static partial int Poll(ref PollDescriptor descriptors, nuint count, int timeoutMs);
}
