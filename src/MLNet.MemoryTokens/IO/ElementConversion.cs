using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace MLNet.MemoryTokens.IO;

/// <summary>Little-endian element bytes ⇄ float, the only place dtypes are converted.</summary>
/// <remarks>Both file formats are little-endian and every .NET target we run on is too, so F32 is a plain copy.</remarks>
internal static class ElementConversion
{
    /// <summary>Widens <c>dst.Length</c> elements of <paramref name="type"/> from <paramref name="src"/> to float.</summary>
    public static void ToSingle(ElementType type, ReadOnlySpan<byte> src, Span<float> dst)
    {
        switch (type)
        {
            case ElementType.F32:
                src[..(dst.Length * 4)].CopyTo(MemoryMarshal.AsBytes(dst));
                break;
            case ElementType.F16:
                TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(src)[..dst.Length], dst);
                break;
            case ElementType.BF16:
                // bf16 is the top half of an f32: widening is exact.
                var b = MemoryMarshal.Cast<byte, ushort>(src);
                for (int i = 0; i < dst.Length; i++) dst[i] = BitConverter.UInt32BitsToSingle((uint)b[i] << 16);
                break;
            case ElementType.F64:
                var d = MemoryMarshal.Cast<byte, double>(src);
                for (int i = 0; i < dst.Length; i++) dst[i] = (float)d[i];
                break;
            case ElementType.I64:
                var l = MemoryMarshal.Cast<byte, long>(src);
                for (int i = 0; i < dst.Length; i++) dst[i] = l[i];
                break;
            case ElementType.I32:
                var n = MemoryMarshal.Cast<byte, int>(src);
                for (int i = 0; i < dst.Length; i++) dst[i] = n[i];
                break;
            case ElementType.I16:
                var s = MemoryMarshal.Cast<byte, short>(src);
                for (int i = 0; i < dst.Length; i++) dst[i] = s[i];
                break;
            case ElementType.I8:
                for (int i = 0; i < dst.Length; i++) dst[i] = (sbyte)src[i];
                break;
            case ElementType.U8:
                for (int i = 0; i < dst.Length; i++) dst[i] = src[i];
                break;
            case ElementType.Bool:
                for (int i = 0; i < dst.Length; i++) dst[i] = src[i] != 0 ? 1f : 0f;
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(type), type, null);
        }
    }

    /// <summary>Narrows floats to <paramref name="type"/> bytes (<c>dst.Length == src.Length * size</c>), rounding to nearest even like numpy and torch.</summary>
    public static void FromSingle(TensorDType type, ReadOnlySpan<float> src, Span<byte> dst)
    {
        switch (type)
        {
            case TensorDType.F32:
                MemoryMarshal.AsBytes(src).CopyTo(dst);
                break;
            case TensorDType.F16:
                TensorPrimitives.ConvertToHalf(src, MemoryMarshal.Cast<byte, Half>(dst));
                break;
            case TensorDType.BF16:
                var b = MemoryMarshal.Cast<byte, ushort>(dst);
                for (int i = 0; i < src.Length; i++) b[i] = ToBFloat16Bits(src[i]);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(type), type, null);
        }
    }

    /// <summary>f32 → bf16 bits, round to nearest even; every NaN becomes 0x7FC0 (torch's rule).</summary>
    public static ushort ToBFloat16Bits(float value)
    {
        if (float.IsNaN(value)) return 0x7FC0;
        uint bits = BitConverter.SingleToUInt32Bits(value);
        bits += 0x7FFFu + ((bits >> 16) & 1);  // ties go to the even upper half
        return (ushort)(bits >> 16);
    }

    /// <summary>Throws on a big-endian host, where the byte copies above would scramble values.</summary>
    public static void EnsureLittleEndianHost()
    {
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("Checkpoint I/O assumes a little-endian machine.");
    }
}
