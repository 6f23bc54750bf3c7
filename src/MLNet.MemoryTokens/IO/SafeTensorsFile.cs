using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace MLNet.MemoryTokens.IO;

/// <summary>A safetensors file (Hugging Face's format): named tensors, read as F32 and written as F32, F16 or BF16.</summary>
public sealed class SafeTensorsFile
{
    /// <summary>The tensors, widened to F32, in the order the header lists them.</summary>
    public IReadOnlyDictionary<string, Tensor> Tensors { get; }

    /// <summary>The header's <c>__metadata__</c> strings (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    SafeTensorsFile(IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        Tensors = tensors;
        Metadata = metadata;
    }

    /// <summary>Reads every tensor of <paramref name="path"/>, converting F64/F16/BF16 and integer dtypes to F32.</summary>
    /// <exception cref="CheckpointException">The file is truncated or its header is corrupt; the message says where.</exception>
    public static SafeTensorsFile Read(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ElementConversion.EnsureLittleEndianHost();
        InputFile.Check(path, Limits.MaxCheckpointBytes, "safetensors file");
        using var file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        var (header, dataStart, length) = ReadHeaderBytes(file, path);
        var (entries, metadata) = SafeTensorsHeader.Parse(path, header, dataStart, length - dataStart);

        var tensors = new OrderedDictionary<string, Tensor>(entries.Count);
        foreach (var e in entries)
            tensors.Add(e.Name, new Tensor(e.Shape, ReadData(file, e, dataStart, path)));
        return new SafeTensorsFile(tensors, metadata);
    }

    /// <summary>The header's <c>__metadata__</c> strings only, without reading any tensor data.</summary>
    /// <exception cref="CheckpointException">The file is truncated or its header is corrupt.</exception>
    public static IReadOnlyDictionary<string, string> ReadMetadata(string path) => ReadHeader(path).Metadata;

    /// <summary>The tensors' names, dtypes and shapes, and the metadata, without reading any tensor data.</summary>
    internal static (List<SafeTensorsEntry> Entries, Dictionary<string, string> Metadata) ReadHeader(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        InputFile.Check(path, Limits.MaxCheckpointBytes, "safetensors file");
        using var file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        var (header, dataStart, length) = ReadHeaderBytes(file, path);
        return SafeTensorsHeader.Parse(path, header, dataStart, length - dataStart);
    }

    static (byte[] Header, long DataStart, long Length) ReadHeaderBytes(SafeFileHandle file, string path)
    {
        long length = RandomAccess.GetLength(file);
        if (length < 8)
            throw new CheckpointException(path, $"file ends at byte offset {length}, too short for the 8-byte safetensors header length", byteOffset: length);
        Span<byte> prefix = stackalloc byte[8];
        ReadExactly(file, prefix, 0, path, "the header length");
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (headerLength > SafeTensorsHeader.MaxBytes)
            throw new CheckpointException(path,
                $"header length {headerLength} (bytes 0-7) is absurd (limit {SafeTensorsHeader.MaxBytes} bytes): not a safetensors file, or corrupt",
                byteOffset: 0);
        if (8 + (long)headerLength > length)
            throw new CheckpointException(path,
                $"file is truncated at byte offset {length}: header length {headerLength} (bytes 0-7) needs the file to run to {8 + (long)headerLength}",
                byteOffset: length);
        var header = new byte[headerLength];
        ReadExactly(file, header, 8, path, "the header");
        return (header, 8 + (long)headerLength, length);
    }

    static float[] ReadData(SafeFileHandle file, SafeTensorsEntry e, long dataStart, string path)
    {
        // Uninitialized: every element is overwritten below, and zeroing 350 MB costs as much as reading it.
        var data = GC.AllocateUninitializedArray<float>((int)e.Count);
        int size = e.Type.Size();
        if (e.Type == ElementType.F32)
        {
            // Straight from the file into the float array; chunked only so a span of bytes stays under 2 GB.
            for (int done = 0; done < data.Length;)
            {
                int n = Math.Min(data.Length - done, 1 << 28);
                ReadExactly(file, MemoryMarshal.AsBytes(data.AsSpan(done, n)), dataStart + e.Begin + (long)done * 4, path, e.Name);
                done += n;
            }
            return data;
        }

        byte[] buffer = ArrayPool<byte>.Shared.Rent((int)Math.Min(1 << 20, Math.Max(e.End - e.Begin, 1)));
        try
        {
            int chunk = buffer.Length / size;
            for (int done = 0; done < data.Length;)
            {
                int n = Math.Min(data.Length - done, chunk);
                var bytes = buffer.AsSpan(0, n * size);
                ReadExactly(file, bytes, dataStart + e.Begin + (long)done * size, path, e.Name);
                ElementConversion.ToSingle(e.Type, bytes, data.AsSpan(done, n));
                done += n;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        return data;
    }

    static void ReadExactly(SafeFileHandle file, Span<byte> into, long offset, string path, string what)
    {
        while (!into.IsEmpty)
        {
            int n = RandomAccess.Read(file, into, offset);
            if (n == 0)
                throw new CheckpointException(path, $"file ended at byte offset {offset} while reading {what}", what, offset);
            into = into[n..];
            offset += n;
        }
    }

    /// <summary>Writes <paramref name="tensors"/> to <paramref name="path"/> atomically (see <see cref="AtomicFile"/>), converted to
    /// <paramref name="dtype"/> with round-to-nearest-even. Tensors are laid out sorted by name (ordinal), the order the
    /// Hugging Face writer uses for a single dtype, so the same tensors always give the same bytes.</summary>
    public static void Write(string path, IReadOnlyDictionary<string, Tensor> tensors,
        IReadOnlyDictionary<string, string>? metadata = null, TensorDType dtype = TensorDType.F32)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(tensors);
        ElementConversion.EnsureLittleEndianHost();
        var names = tensors.Keys.Order(StringComparer.Ordinal).ToArray();
        foreach (var name in names)
            if (name.Length == 0 || name == "__metadata__")
                throw new ArgumentException($"'{name}' cannot name a tensor in a safetensors file.", nameof(tensors));
        byte[] header = SafeTensorsHeader.Build(names, tensors, metadata, dtype);
        int size = ElementTypes.From(dtype).Size();

        AtomicFile.Write(path, stream =>
        {
            stream.Write(header);
            byte[] buffer = ArrayPool<byte>.Shared.Rent(1 << 20);
            try
            {
                foreach (var name in names)
                {
                    ReadOnlySpan<float> data = tensors[name].Data;
                    for (int done = 0; done < data.Length;)
                    {
                        int n = Math.Min(data.Length - done, buffer.Length / size);
                        var bytes = buffer.AsSpan(0, n * size);
                        ElementConversion.FromSingle(dtype, data.Slice(done, n), bytes);
                        stream.Write(bytes);
                        done += n;
                    }
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        });
    }
}
