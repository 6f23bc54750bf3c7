using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;

namespace MLNet.MemoryTokens.Onnx;

/// <summary>A Protocol Buffers message on the encoding side only: fields in the order added, nested messages and byte payloads
/// length-delimited. Sizes are computed before writing, so large payloads (weights) stream straight from their arrays.</summary>
/// <remarks>Wire format: each field is a varint tag (number &lt;&lt; 3 | wire type) then its value — wire type 0 a varint
/// (negative int64 as ten bytes of two's complement), 2 a varint length and that many bytes, 5 four little-endian bytes.</remarks>
internal sealed class ProtoMessage
{
    enum Kind : byte { Varint, Fixed32, Bytes, Floats, Message }
    readonly record struct Field(int Number, Kind Kind, ulong Scalar, object? Payload);

    readonly List<Field> _fields = new();
    long _size = -1;

    public ProtoMessage Varint(int number, long value) => Add(new Field(number, Kind.Varint, (ulong)value, null));
    public ProtoMessage Float(int number, float value) => Add(new Field(number, Kind.Fixed32, BitConverter.SingleToUInt32Bits(value), null));
    public ProtoMessage String(int number, string value) => Bytes(number, Encoding.UTF8.GetBytes(value));
    public ProtoMessage Bytes(int number, byte[] value) => Add(new Field(number, Kind.Bytes, 0, value));
    /// <summary>A bytes field holding <paramref name="values"/> as little-endian float32 (ONNX raw_data), without a copy.</summary>
    public ProtoMessage RawFloats(int number, float[] values) => Add(new Field(number, Kind.Floats, 0, values));
    public ProtoMessage Message(int number, ProtoMessage message) => Add(new Field(number, Kind.Message, 0, message));

    ProtoMessage Add(Field f)
    {
        if (f.Number < 1 || f.Number > (1 << 29) - 1) throw new ArgumentOutOfRangeException(nameof(f), f.Number, "Protobuf field numbers are 1 to 2^29 - 1.");
        _fields.Add(f);
        _size = -1;
        return this;
    }

    /// <summary>Encoded length in bytes (cached; a nested message must not change once its parent has been sized).</summary>
    public long Size
    {
        get
        {
            if (_size >= 0) return _size;
            long n = 0;
            foreach (var f in _fields)
            {
                n += VarintSize((ulong)f.Number << 3);
                n += f.Kind switch
                {
                    Kind.Varint => VarintSize(f.Scalar),
                    Kind.Fixed32 => 4,
                    _ => VarintSize((ulong)PayloadSize(f)) + PayloadSize(f),
                };
            }
            return _size = n;
        }
    }

    static long PayloadSize(Field f) => f.Kind switch
    {
        Kind.Bytes => ((byte[])f.Payload!).Length,
        Kind.Floats => 4L * ((float[])f.Payload!).Length,
        Kind.Message => ((ProtoMessage)f.Payload!).Size,
        _ => 0,
    };

    static int WireType(Kind k) => k switch { Kind.Varint => 0, Kind.Fixed32 => 5, _ => 2 };

    public static int VarintSize(ulong v)
    {
        int n = 1;
        while (v >= 0x80) { v >>= 7; n++; }
        return n;
    }

    public void WriteTo(Stream stream)
    {
        Span<byte> buf = stackalloc byte[10];
        foreach (var f in _fields)
        {
            WriteVarint(stream, ((ulong)f.Number << 3) | (uint)WireType(f.Kind), buf);
            switch (f.Kind)
            {
                case Kind.Varint: WriteVarint(stream, f.Scalar, buf); break;
                case Kind.Fixed32:
                    BinaryPrimitives.WriteUInt32LittleEndian(buf, (uint)f.Scalar);
                    stream.Write(buf[..4]);
                    break;
                case Kind.Bytes:
                    WriteVarint(stream, (ulong)PayloadSize(f), buf);
                    stream.Write((byte[])f.Payload!);
                    break;
                case Kind.Floats:
                    WriteVarint(stream, (ulong)PayloadSize(f), buf);
                    WriteFloats(stream, (float[])f.Payload!);
                    break;
                case Kind.Message:
                    var m = (ProtoMessage)f.Payload!;
                    WriteVarint(stream, (ulong)m.Size, buf);
                    m.WriteTo(stream);
                    break;
            }
        }
    }

    /// <summary>The whole message as bytes (for small messages and tests).</summary>
    public byte[] ToArray()
    {
        using var ms = new MemoryStream((int)Math.Min(Size, int.MaxValue));
        WriteTo(ms);
        return ms.ToArray();
    }

    static void WriteVarint(Stream s, ulong v, Span<byte> buf)
    {
        int i = 0;
        while (v >= 0x80) { buf[i++] = (byte)(v | 0x80); v >>= 7; }
        buf[i++] = (byte)v;
        s.Write(buf[..i]);
    }

    static void WriteFloats(Stream s, float[] values)
    {
        if (BitConverter.IsLittleEndian) { s.Write(MemoryMarshal.AsBytes(values.AsSpan())); return; }
        Span<byte> b = stackalloc byte[4];
        foreach (var v in values) { BinaryPrimitives.WriteSingleLittleEndian(b, v); s.Write(b); }
    }
}
