// Load-time uploads as a pipeline. The loading thread describes each device tensor (a HostTensor), allocates its
// device buffer through GpuMemory (so the free-memory check and its message stay where they were) and cuts its rows
// into pieces packed into staging chunks. Worker threads write each chunk's pieces straight from the checkpoint's
// memory map into page-locked staging and queue asynchronous copies on the chunk slot's own stream. Host memory in
// flight is bounded by the slots; the GPU is waited for only before a slot is rewritten and once at the end
// (Finish), so preparing later layers, copying earlier ones and describing the next overlap.
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Runtime;

namespace CodeLlamaLsp.Inference.Engine.Cuda;

/// <summary>Uploads tensors through reusable page-locked staging chunks, written and copied by worker threads.</summary>
internal sealed class StagedUpload : IDisposable
{
    /// <summary>
    /// Bytes per staging chunk: one copy of it (about a millisecond over PCIe) dwarfs the cost of queueing it and of
    /// synchronising its stream (microseconds), and one chunk per worker stays a few hundred MB of page-locked memory.
    /// </summary>
    public const int DefaultChunkBytes = 32 << 20;

    /// <summary>Every piece starts at a multiple of this in its chunk, so any element type is aligned.</summary>
    private const int PieceAlignment = 256;

    private readonly CudaDevice device;
    private readonly GpuMemory memory;
    private readonly int chunkBytes;
    private readonly int maxSlots;
    private readonly List<Slot> slots = [];
    private readonly List<Thread> workers = [];
    private readonly BlockingCollection<Slot> freeSlots = new();
    private readonly BlockingCollection<Chunk> queued = new();
    private readonly long started = Stopwatch.GetTimestamp();
    private Chunk? open;
    private ExceptionDispatchInfo? failure;
    private bool drained;
    private long stagedBytes;
    private long allocateTicks; // the loading thread, allocating device buffers (and checking free memory)
    private long stagingWaitTicks; // the loading thread, waiting for a free slot
    private long writeTicks; // workers, summed: writing staging from the checkpoint
    private long copyTicks; // workers and Finish, summed: queueing copies and waiting for a slot's earlier ones

    /// <param name="slots">Staging chunks (and worker threads) at most; default one per core, 2 to 16.</param>
    public StagedUpload(CudaDevice device, GpuMemory memory, int slots = 0, int chunkBytes = DefaultChunkBytes)
    {
        this.device = device;
        this.memory = memory;
        this.chunkBytes = chunkBytes;
        maxSlots = slots > 0 ? slots : Math.Clamp(Environment.ProcessorCount, 2, 16);
    }

    /// <summary>
    /// Allocates the tensor's device buffer now and queues its contents; they are on the device after <see cref="Finish"/>.
    /// </summary>
    public MemoryBuffer1D<T, Stride1D.Dense> Add<T>(HostTensor<T> tensor)
        where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(tensor);
        failure?.Throw();
        long rowBytes = (long)tensor.RowLength * Unsafe.SizeOf<T>();
        if (rowBytes > chunkBytes)
        {
            throw new NotSupportedException($"{tensor.Name}: a row of {rowBytes} bytes does not fit the {chunkBytes}-byte upload staging chunk.");
        }

        long allocateStart = Stopwatch.GetTimestamp();
        var buffer = memory.Allocate<T>(tensor.Length, tensor.Name);
        allocateTicks += Stopwatch.GetTimestamp() - allocateStart;
        var target = buffer.View.AsContiguous().Cast<byte>();

        long row = 0;
        while (row < tensor.Rows)
        {
            open ??= new Chunk(AcquireSlot());
            int offset = (open.Used + PieceAlignment - 1) / PieceAlignment * PieceAlignment;
            long fit = Math.Min(tensor.Rows - row, (chunkBytes - offset) / rowBytes);
            if (fit <= 0)
            {
                Submit();
                continue;
            }

            long firstRow = row;
            int length = (int)(fit * rowBytes);
            open.Pieces.Add(new Piece(target.SubView(firstRow * rowBytes, length), offset, length, staging => tensor.Write(MemoryMarshal.Cast<byte, T>(staging), firstRow)));
            open.Used = offset + length;
            row += fit;
        }

        stagedBytes += tensor.Length * Unsafe.SizeOf<T>();
        return buffer;
    }

    /// <summary>Waits until everything added is on the device; rethrows a worker's failure.</summary>
    public WeightUploadTimes Finish()
    {
        if (open != null)
        {
            Submit();
        }

        Drain();
        failure?.Throw();
        return new WeightUploadTimes(
            Stopwatch.GetElapsedTime(started).TotalSeconds,
            stagedBytes,
            slots.Count,
            Seconds(writeTicks),
            Seconds(copyTicks),
            Seconds(allocateTicks),
            Seconds(stagingWaitTicks));
    }

    public void Dispose()
    {
        // Never free staging that a queued copy may still read: after an error too, wait for the workers and streams.
        Drain();
        foreach (var slot in slots)
        {
            slot.Dispose();
        }

        freeSlots.Dispose();
        queued.Dispose();
    }

    private void Submit()
    {
        queued.Add(open!);
        open = null;
    }

    private Slot AcquireSlot()
    {
        if (!freeSlots.TryTake(out var slot))
        {
            if (slots.Count < maxSlots)
            {
                slot = NewSlot();
            }
            else
            {
                long waitStart = Stopwatch.GetTimestamp();
                slot = freeSlots.Take();
                stagingWaitTicks += Stopwatch.GetTimestamp() - waitStart;
            }
        }

        failure?.Throw();
        return slot;
    }

    private Slot NewSlot()
    {
        // Page-locking registers the memory with the accelerator's context, which must be current on this thread.
        using var binding = device.Accelerator.BindScoped();
        var slot = new Slot(device.Accelerator.AllocatePageLocked1D<byte>(chunkBytes, uninitialized: true), device.Accelerator.CreateStream());
        slots.Add(slot);
        var worker = new Thread(Work) { IsBackground = true, Name = "weight upload" };
        workers.Add(worker);
        worker.Start();
        return slot;
    }

    private void Work()
    {
        foreach (var chunk in queued.GetConsumingEnumerable())
        {
            try
            {
                if (failure == null)
                {
                    Stage(chunk);
                }
            }
#pragma warning disable CA1031 // Any failure is handed to the loading thread, which rethrows it.
            catch (Exception e)
#pragma warning restore CA1031
            {
                Interlocked.CompareExchange(ref failure, ExceptionDispatchInfo.Capture(e), null);
            }
            finally
            {
                freeSlots.Add(chunk.Slot);
            }
        }
    }

    /// <summary>Writes a chunk's pieces into its slot and queues their copies on the slot's stream.</summary>
    private void Stage(Chunk chunk)
    {
        var slot = chunk.Slot;
        long waitStart = Stopwatch.GetTimestamp();
        slot.Stream.Synchronize(); // the copies that last read this slot are done, so it may be rewritten
        long writeStart = Stopwatch.GetTimestamp();
        var staging = slot.Staging.Span;
        foreach (var piece in chunk.Pieces)
        {
            piece.Write(staging.Slice(piece.Offset, piece.Length));
        }

        long copyStart = Stopwatch.GetTimestamp();
        var source = slot.Staging.ArrayView;
        foreach (var piece in chunk.Pieces)
        {
            piece.Target.CopyFrom(slot.Stream, source.SubView(piece.Offset, piece.Length));
        }

        // Queueing is microseconds on a GPU; on ILGPU's CPU accelerator the copy itself runs here.
        Interlocked.Add(ref writeTicks, copyStart - writeStart);
        Interlocked.Add(ref copyTicks, writeStart - waitStart + Stopwatch.GetTimestamp() - copyStart);
    }

    /// <summary>Lets the workers finish what was queued, then waits for every copy.</summary>
    private void Drain()
    {
        if (drained)
        {
            return;
        }

        drained = true;
        queued.CompleteAdding();
        foreach (var worker in workers)
        {
            worker.Join();
        }

        long waitStart = Stopwatch.GetTimestamp();
        foreach (var slot in slots)
        {
            slot.Stream.Synchronize();
        }

        copyTicks += Stopwatch.GetTimestamp() - waitStart;
    }

    private static double Seconds(long ticks) => (double)ticks / Stopwatch.Frequency;

    private delegate void StagingWriter(Span<byte> staging);

    /// <summary>Rows of one tensor: where they go on the device, where they sit in the chunk, and how to write them.</summary>
    private readonly record struct Piece(ArrayView<byte> Target, int Offset, int Length, StagingWriter Write);

    private sealed class Chunk(Slot slot)
    {
        public Slot Slot { get; } = slot;

        public List<Piece> Pieces { get; } = [];

        public int Used { get; set; }
    }

    /// <summary>A page-locked staging buffer and the stream its copies run on (so reuse waits for its copies only).</summary>
    private sealed class Slot(PageLockedArray1D<byte> staging, AcceleratorStream stream) : IDisposable
    {
        public PageLockedArray1D<byte> Staging { get; } = staging;

        public AcceleratorStream Stream { get; } = stream;

        public void Dispose()
        {
            Stream.Dispose();
            Staging.Dispose();
        }
    }
}

/// <summary>Where a load's upload time went; the worker figures are summed over workers.</summary>
/// <param name="WallSeconds">From the first tensor described to the last copy done.</param>
/// <param name="Bytes">Bytes placed on the device.</param>
/// <param name="Workers">Staging slots used, one worker thread each.</param>
/// <param name="WriteSeconds">Workers writing staging from the checkpoint (host preparation: copies, act-order sorting, concatenation).</param>
/// <param name="CopySeconds">Workers (and the final wait) queueing copies and waiting for a slot's earlier copies to finish.</param>
/// <param name="AllocateSeconds">The loading thread allocating device buffers (a driver call and a free-memory query each).</param>
/// <param name="StagingWaitSeconds">The loading thread waiting for a free slot (the workers or the copies are behind).</param>
public sealed record WeightUploadTimes(double WallSeconds, long Bytes, int Workers, double WriteSeconds, double CopySeconds, double AllocateSeconds, double StagingWaitSeconds)
{
    public override string ToString() => string.Create(
        System.Globalization.CultureInfo.InvariantCulture,
        $"{Bytes / 1e9:F2} GB staged in {WallSeconds:F1} s by {Workers} workers: writing staging {WriteSeconds:F1} s, copying {CopySeconds:F1} s (summed over workers); loading thread allocating {AllocateSeconds:F1} s, waiting for staging {StagingWaitSeconds:F1} s");
}
