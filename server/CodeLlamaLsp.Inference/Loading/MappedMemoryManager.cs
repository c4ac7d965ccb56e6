// Exposes a slice of a memory-mapped file as Memory<byte>, so tensors can be handed out as
// ReadOnlyMemory<byte> without copying gigabytes into managed arrays.
using System.Buffers;

namespace CodeLlamaLsp.Inference.Loading;

/// <summary>A window of at most 2 GB into a mapping owned by <see cref="SafetensorsFile"/>.</summary>
internal sealed unsafe class MappedMemoryManager : MemoryManager<byte>
{
    private readonly SafetensorsFile owner;
    private readonly byte* pointer;
    private readonly int length;

    public MappedMemoryManager(SafetensorsFile owner, byte* pointer, int length)
    {
        this.owner = owner;
        this.pointer = pointer;
        this.length = length;
    }

    // Checking the owner here turns a use-after-dispose into an exception instead of a segfault.
    public override Span<byte> GetSpan()
    {
        owner.ThrowIfDisposed();
        return new Span<byte>(pointer, length);
    }

    public override MemoryHandle Pin(int elementIndex = 0)
    {
        owner.ThrowIfDisposed();
        ArgumentOutOfRangeException.ThrowIfNegative(elementIndex);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(elementIndex, length);
        return new MemoryHandle(pointer + elementIndex);
    }

    public override void Unpin()
    {
        // The mapping never moves; nothing to release.
    }

    protected override void Dispose(bool disposing)
    {
        // The owner unmaps the file; a window has nothing of its own to free.
    }
}
