using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;

namespace MLNet.MemoryTokens.IO;

/// <summary>Reads one numpy <c>.npy</c> array (format versions 1–3) from a stream into an F32 <see cref="Tensor"/>.</summary>
/// <remarks>Layout: <c>\x93NUMPY</c>, major, minor, header length (u16 for v1, u32 for v2/v3), a Python dict literal
/// <c>{'descr': '&lt;f4', 'fortran_order': False, 'shape': (2, 3), }</c> padded to 64 bytes, then the raw elements.</remarks>
internal static partial class NpyArray
{
    static ReadOnlySpan<byte> Magic => [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>Reads the array in <paramref name="stream"/>, which holds exactly <paramref name="length"/> bytes;
    /// <paramref name="file"/> and <paramref name="entry"/> name it in errors.</summary>
    public static Tensor Read(Stream stream, long length, string file, string entry)
    {
        CheckpointException Bad(string what, long? offset = null) => new(file, $"zip entry '{entry}' is not a valid .npy array: {what}", entry, offset);

        Span<byte> lead = stackalloc byte[12];
        if (length < 10 || !TryFill(stream, lead[..8]) || !lead[..6].SequenceEqual(Magic))
            throw Bad("it does not start with the .npy magic bytes", 0);
        int major = lead[6];
        int prefix = major == 1 ? 10 : 12;
        if (major is < 1 or > 3) throw Bad($"unsupported format version {major}.{lead[7]}", 6);
        if (!TryFill(stream, lead[8..prefix])) throw Bad("truncated inside the header length", 8);
        long headerLength = major == 1 ? BinaryPrimitives.ReadUInt16LittleEndian(lead[8..]) : BinaryPrimitives.ReadUInt32LittleEndian(lead[8..]);
        if (prefix + headerLength > length) throw Bad($"header length {headerLength} runs past the end of the entry ({length} bytes)", 8);

        var headerBytes = new byte[headerLength];
        if (!TryFill(stream, headerBytes)) throw Bad("truncated inside the header", prefix);
        // v1/v2 headers are latin-1, v3 allows UTF-8 (for structured field names, which we refuse anyway).
        string header = (major == 3 ? Encoding.UTF8 : Encoding.Latin1).GetString(headerBytes);

        var (type, fortran, shape, count) = ParseHeader(header, Bad);
        long dataLength = length - prefix - headerLength;
        if (dataLength != count * type.Size())
            throw Bad($"{header.Trim()} needs {count * type.Size()} data bytes but the entry holds {dataLength}", prefix + headerLength);

        var data = ReadData(stream, type, (int)count) ?? throw Bad("the data ends early", prefix + headerLength);
        if (fortran && shape.Length > 1) data = FortranToRowMajor(data, shape);
        return new Tensor(shape, data);
    }

    [GeneratedRegex(@"['""]descr['""]\s*:\s*['""]([^'""]*)['""]")]
    private static partial Regex DescrRegex();

    [GeneratedRegex(@"['""]fortran_order['""]\s*:\s*(True|False)")]
    private static partial Regex FortranRegex();

    [GeneratedRegex(@"['""]shape['""]\s*:\s*\(([^)]*)\)")]
    private static partial Regex ShapeRegex();

    static (ElementType Type, bool Fortran, int[] Shape, long Count) ParseHeader(string header, Func<string, long?, CheckpointException> bad)
    {
        var descr = DescrRegex().Match(header);
        var fortran = FortranRegex().Match(header);
        var shapeText = ShapeRegex().Match(header);
        if (!descr.Success)
            throw bad($"header {header.Trim()} has no simple 'descr' (structured and object arrays are not supported)", null);
        if (!fortran.Success || !shapeText.Success)
            throw bad($"header {header.Trim()} lacks 'fortran_order' or 'shape'", null);

        string d = descr.Groups[1].Value;
        if (d.StartsWith('>') && !d.EndsWith('1'))  // byte order only matters past one byte
            throw bad($"dtype '{d}' is big-endian, which is not supported (re-save with arr.astype(arr.dtype.newbyteorder('<')))", null);
        var type = d.TrimStart('<', '|', '=', '>') switch
        {
            "f8" => ElementType.F64,
            "f4" => ElementType.F32,
            "f2" => ElementType.F16,
            "i8" => ElementType.I64,
            "i4" => ElementType.I32,
            "i2" => ElementType.I16,
            "i1" => ElementType.I8,
            "u1" => ElementType.U8,
            "b1" => ElementType.Bool,
            _ => throw bad($"dtype '{d}' is not supported (readable: f8, f4, f2, i8, i4, i2, i1, u1, b1)", null),
        };

        var dims = shapeText.Groups[1].Value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var shape = new int[dims.Length];
        long count = 1;
        for (int i = 0; i < dims.Length; i++)
        {
            if (!int.TryParse(dims[i].TrimEnd('L'), out shape[i]) || shape[i] < 0)
                throw bad($"shape ({shapeText.Groups[1].Value}) is not a tuple of non-negative integers", null);
            count *= shape[i];
            if (count > Limits.MaxTensorElements) throw bad($"shape ({shapeText.Groups[1].Value}) has more than {Limits.MaxTensorElements:N0} elements, the limit for one tensor", null);
        }
        return (type, fortran.Groups[1].Value == "True", shape, count);
    }

    /// <summary>The elements widened to float, or null if the stream ends early.</summary>
    static float[]? ReadData(Stream stream, ElementType type, int count)
    {
        var data = GC.AllocateUninitializedArray<float>(count);
        if (type == ElementType.F32)
        {
            for (int done = 0; done < count;)
            {
                int n = Math.Min(count - done, 1 << 28);  // a byte span must stay under 2 GB
                if (!TryFill(stream, MemoryMarshal.AsBytes(data.AsSpan(done, n)))) return null;
                done += n;
            }
            return data;
        }

        int size = type.Size();
        byte[] buffer = ArrayPool<byte>.Shared.Rent(1 << 20);
        try
        {
            for (int done = 0; done < count;)
            {
                int n = Math.Min(count - done, buffer.Length / size);
                var bytes = buffer.AsSpan(0, n * size);
                if (!TryFill(stream, bytes)) return null;
                ElementConversion.ToSingle(type, bytes, data.AsSpan(done, n));
                done += n;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        return data;
    }

    static bool TryFill(Stream stream, Span<byte> into) => stream.ReadAtLeast(into, into.Length, throwOnEndOfStream: false) == into.Length;

    /// <summary>Column-major (first axis fastest) → row-major (last axis fastest), same shape.</summary>
    internal static float[] FortranToRowMajor(float[] src, int[] shape)
    {
        int rank = shape.Length;
        var strides = new long[rank];  // row-major strides of the output
        long stride = 1;
        for (int a = rank - 1; a >= 0; a--) { strides[a] = stride; stride *= shape[a]; }

        var dst = new float[src.Length];
        var index = new int[rank];
        long at = 0;  // row-major offset of index
        for (int f = 0; f < src.Length; f++)
        {
            dst[at] = src[f];
            for (int a = 0; a < rank; a++)  // odometer step, axis 0 fastest
            {
                at += strides[a];
                if (++index[a] < shape[a]) break;
                at -= strides[a] * shape[a];
                index[a] = 0;
            }
        }
        return dst;
    }
}
