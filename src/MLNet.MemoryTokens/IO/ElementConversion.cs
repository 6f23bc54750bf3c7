using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

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
                HalfToSingle(MemoryMarshal.Cast<byte, ushort>(src)[..dst.Length], dst);
                break;
            case ElementType.BF16:
                BFloat16ToSingle(MemoryMarshal.Cast<byte, ushort>(src)[..dst.Length], dst);
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

    /// <summary>IEEE binary16 bits → float, exact (subnormals, ±inf and NaN payloads included). Fast for short runs too:
    /// attention widens a VQT cache's keys 64 values at a time, where TensorPrimitives.ConvertToSingle's set-up dominates.</summary>
    public static unsafe void HalfToSingle(ReadOnlySpan<ushort> src, Span<float> dst)
    {
        if (dst.Length < src.Length) throw new ArgumentException("Destination too short.", nameof(dst));
        fixed (ushort* ps = src) fixed (float* pd = dst) HalfToSingle(ps, pd, src.Length);
    }

    internal static unsafe void HalfToSingle(ushort* src, float* dst, int n) => Widen(half: true, src, dst, n);

    /// <summary>16-bit floats → float, 32 (or 16) at a time: binary16 (<paramref name="half"/>) or bfloat16.</summary>
    static unsafe void Widen(bool half, ushort* src, float* dst, int n)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i + 32 <= n; i += 32)
            {
                var (lo, hi) = Vector512.Widen(Vector512.Load(src + i));
                (half ? HalfBitsToSingle(lo) : (lo << 16).AsSingle()).Store(dst + i);
                (half ? HalfBitsToSingle(hi) : (hi << 16).AsSingle()).Store(dst + i + 16);
            }
        if (Vector256.IsHardwareAccelerated)
            for (; i + 16 <= n; i += 16)
            {
                var (lo, hi) = Vector256.Widen(Vector256.Load(src + i));
                (half ? HalfBitsToSingle(lo) : (lo << 16).AsSingle()).Store(dst + i);
                (half ? HalfBitsToSingle(hi) : (hi << 16).AsSingle()).Store(dst + i + 8);
            }
        for (; i < n; i++) dst[i] = half ? (float)BitConverter.UInt16BitsToHalf(src[i]) : BitConverter.UInt32BitsToSingle((uint)src[i] << 16);
    }

    // |h| << 13 puts the binary16 exponent and mantissa where float's are; × 2^112 (0x77800000) re-biases the exponent (15 → 127) and turns
    // binary16 subnormals (float subnormals after the shift) into the right normal floats. Exponent 31 (inf/NaN) gets 255.
    static Vector512<float> HalfBitsToSingle(Vector512<uint> h)
    {
        var shifted = (h & Vector512.Create(0x7FFFu)) << 13;
        var scaled = shifted.AsSingle() * Vector512.Create(0x77800000u).AsSingle();
        var special = Vector512.GreaterThanOrEqual(shifted, Vector512.Create(0x7C00u << 13));
        var magnitude = Vector512.ConditionalSelect(special.AsSingle(), (shifted | Vector512.Create(0x7F800000u)).AsSingle(), scaled);
        return magnitude | ((h & Vector512.Create(0x8000u)) << 16).AsSingle();
    }

    static Vector256<float> HalfBitsToSingle(Vector256<uint> h)
    {
        var shifted = (h & Vector256.Create(0x7FFFu)) << 13;
        var scaled = shifted.AsSingle() * Vector256.Create(0x77800000u).AsSingle();
        var special = Vector256.GreaterThanOrEqual(shifted, Vector256.Create(0x7C00u << 13));
        var magnitude = Vector256.ConditionalSelect(special.AsSingle(), (shifted | Vector256.Create(0x7F800000u)).AsSingle(), scaled);
        return magnitude | ((h & Vector256.Create(0x8000u)) << 16).AsSingle();
    }

    /// <summary>bfloat16 bits → float: bf16 is the top half of an f32, so widening is exact.</summary>
    public static unsafe void BFloat16ToSingle(ReadOnlySpan<ushort> src, Span<float> dst)
    {
        if (dst.Length < src.Length) throw new ArgumentException("Destination too short.", nameof(dst));
        fixed (ushort* ps = src) fixed (float* pd = dst) BFloat16ToSingle(ps, pd, src.Length);
    }

    internal static unsafe void BFloat16ToSingle(ushort* src, float* dst, int n) => Widen(half: false, src, dst, n);

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
