using System.Buffers.Binary;
using System.IO.Compression;

namespace MLNet.MemoryTokens.Data;

/// <summary>
/// One IDX file of unsigned bytes (the MNIST format: magic <c>00 00 08 rank</c>, big-endian int32 sizes, then the data),
/// read whole — gunzipped when it starts with the gzip magic — and validated. Errors are <see cref="InvalidDataException"/>s
/// naming the file and the byte offset (into the decompressed bytes for a .gz).
/// </summary>
internal sealed class IdxFile
{
    const byte UnsignedByte = 0x08;

    /// <summary>The path as given.</summary>
    public string Path { get; }

    /// <summary>Dimension sizes, outermost first: <c>[N, H, W]</c> for images, <c>[N]</c> for labels.</summary>
    public int[] Shape { get; }

    /// <summary>The whole (decompressed) file; the elements start at <see cref="DataOffset"/>.</summary>
    public byte[] Bytes { get; }

    /// <summary>Header length: 4 + 4 × rank.</summary>
    public int DataOffset { get; }

    readonly bool _gzipped;

    IdxFile(string path, byte[] bytes, bool gzipped, int rank)
    {
        Path = path;
        Bytes = bytes;
        _gzipped = gzipped;
        DataOffset = 4 + 4 * rank;
        Shape = ReadHeader(rank);
    }

    /// <summary>Reads and validates <paramref name="path"/>, which must hold a <paramref name="rank"/>-dimensional ubyte array.</summary>
    public static IdxFile Read(string path, int rank)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"IDX file not found: {path}", path);
        byte[] raw = IO.InputFile.ReadAllBytes(path, Limits.MaxIdxBytes, "IDX file");
        return Parse(path, raw, rank);
    }

    /// <summary>An IDX file's bytes as read from <paramref name="path"/> (gzipped or not), validated.</summary>
    internal static IdxFile Parse(string path, byte[] raw, int rank)
    {
        bool gzipped = raw.Length >= 2 && raw[0] == 0x1F && raw[1] == 0x8B;
        return new IdxFile(path, gzipped ? Gunzip(raw, path, rank) : raw, gzipped, rank);
    }

    /// <summary>An error about this file at <paramref name="offset"/>.</summary>
    public InvalidDataException Error(long offset, string problem) =>
        new($"{Path}, byte {offset}{(_gzipped ? " (after gunzip)" : "")}: {problem}");

    int[] ReadHeader(int rank)
    {
        var b = Bytes;
        if (b.Length < 4)
            throw Error(b.Length, $"truncated: the file ends inside the 4-byte magic number ({b.Length} bytes long).");
        if (b[0] != 0 || b[1] != 0 || b[2] != UnsignedByte || b[3] != rank)
            throw Error(0, $"wrong magic number {Convert.ToHexString(b, 0, 4)}, expected 000008{rank:X2} " +
                           $"(IDX, unsigned bytes, {rank} dimension{(rank == 1 ? "" : "s")}){MagicHint(b, rank)}.");
        if (b.Length < DataOffset)
            throw Error(b.Length, $"truncated: the header's {rank} dimension sizes end at byte {DataOffset}, the file has {b.Length} bytes.");

        var shape = new int[rank];
        long elements = 1;
        for (int d = 0; d < rank; d++)
        {
            int offset = 4 + 4 * d;
            shape[d] = BinaryPrimitives.ReadInt32BigEndian(b.AsSpan(offset));
            // The item count may be 0 (the dataset layer reports that); an image side of 0 or any negative size is corrupt.
            if (shape[d] < 0 || (shape[d] == 0 && d > 0))
                throw Error(offset, $"dimension {d} has size {shape[d]}.");
            elements = Limits.Product(elements, shape[d]);   // saturates: three int sizes overflow a long
        }

        long expected = elements > long.MaxValue - DataOffset ? long.MaxValue : DataOffset + elements;
        if (b.Length < expected)
        {
            long perItem = rank == 1 ? 1 : elements / Math.Max(shape[0], 1);
            long complete = (b.Length - DataOffset) / perItem;
            throw Error(b.Length, $"truncated: [{string.Join(", ", shape)}] needs {expected} bytes, the file has " +
                                  $"{b.Length} (only {complete} of the {shape[0]} items are complete).");
        }
        if (b.Length > expected)
            throw Error(expected, $"{b.Length - expected} unexpected bytes after the [{string.Join(", ", shape)}] data.");
        return shape;
    }

    static string MagicHint(byte[] b, int rank)
    {
        if (b[0] != 0 || b[1] != 0) return "; not an IDX file";
        if (b[2] != UnsignedByte) return $"; element type 0x{b[2]:X2} is not supported, only unsigned bytes (0x08)";
        return b[3] switch
        {
            1 when rank == 3 => "; this is a labels (idx1) file, not images",
            3 when rank == 1 => "; this is an images (idx3) file, not labels",
            _ => "",
        };
    }

    /// <summary>Decompresses no more than the header says the file holds (plus one byte, to report trailing data), and no
    /// more than <see cref="Limits.MaxIdxBytes"/>: a gzip bomb stops at its header.</summary>
    static byte[] Gunzip(byte[] raw, string path, int rank)
    {
        try
        {
            using var gzip = new GZipStream(new MemoryStream(raw), CompressionMode.Decompress);
            var header = new byte[4 + 4 * Math.Clamp(rank, 0, 255)];
            int got = gzip.ReadAtLeast(header, header.Length, throwOnEndOfStream: false);
            long total = header.Length;   // a wrong magic is reported from the header alone
            if (got == header.Length && header[0] == 0 && header[1] == 0 && header[3] == rank)
            {
                long elements = 1;
                for (int d = 0; d < rank; d++) elements = Limits.Product(elements, Math.Max(0, BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(4 + 4 * d))));
                total = elements > Limits.MaxIdxBytes ? long.MaxValue : header.Length + elements;
            }
            if (total > Limits.MaxIdxBytes)
            {
                string message = $"{path}: the header declares more than {Limits.MaxIdxBytes:N0} bytes after gunzip, the limit for IDX files.";
                throw new InvalidDataException(message, new LimitExceededException(message));
            }
            var output = new MemoryStream();
            output.Write(header, 0, got);
            var chunk = new byte[1 << 16];
            int n;
            while (output.Length <= total && (n = gzip.Read(chunk, 0, (int)Math.Min(chunk.Length, total + 1 - output.Length))) > 0)
                output.Write(chunk, 0, n);   // one byte past the declared size is enough to report trailing data
            return output.ToArray();
        }
        catch (Exception e) when (e is InvalidDataException or IOException && e.InnerException is not LimitExceededException)
        {
            throw new InvalidDataException($"{path}: corrupt gzip data ({e.Message}).", e);
        }
    }
}
