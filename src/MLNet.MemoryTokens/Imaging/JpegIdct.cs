using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MLNet.MemoryTokens.Imaging;

/// <summary>
/// The 8×8 inverse DCT (ITU T.81 A.3.3) in 32-bit fixed point, using the Loeffler–Ligtenberg–Moschytz factorisation with
/// 13-bit constants and 2 extra bits between passes: the same arithmetic as libjpeg's default "islow" method, so decoded
/// samples are bit-identical to djpeg's and PIL's rather than merely close.
/// </summary>
internal static class JpegIdct
{
    const int ConstBits = 13;
    const int Pass1Bits = 2;

    // Rotation constants √2·(cosine combinations), c_k = cos(kπ/16), in ConstBits fixed point.
    static readonly double Sqrt2 = Math.Sqrt(2);
    static double C(int k) => Math.Cos(k * Math.PI / 16);
    static int Fix(double x) => (int)(x * (1 << ConstBits) + 0.5);
    static readonly int F0541 = Fix(Sqrt2 * C(6));                       // 0.541196100
    static readonly int F0765 = Fix(Sqrt2 * (C(2) - C(6)));              // 0.765366865
    static readonly int F1847 = Fix(Sqrt2 * (C(2) + C(6)));              // 1.847759065
    static readonly int F1175 = Fix(Sqrt2 * C(3));                       // 1.175875602
    static readonly int F0298 = Fix(Sqrt2 * (-C(1) + C(3) + C(5) - C(7))); // 0.298631336
    static readonly int F2053 = Fix(Sqrt2 * (C(1) + C(3) - C(5) + C(7))); // 2.053119869
    static readonly int F3072 = Fix(Sqrt2 * (C(1) + C(3) + C(5) - C(7))); // 3.072711026
    static readonly int F1501 = Fix(Sqrt2 * (C(1) + C(3) - C(5) - C(7))); // 1.501321110
    static readonly int F0899 = Fix(Sqrt2 * (C(3) - C(7)));              // 0.899976223
    static readonly int F2562 = Fix(Sqrt2 * (C(1) + C(3)));              // 2.562915447
    static readonly int F1961 = Fix(Sqrt2 * (C(3) + C(5)));              // 1.961570560
    static readonly int F0390 = Fix(Sqrt2 * (C(3) - C(5)));              // 0.390180644

    /// <summary>
    /// Dequantises <paramref name="coefs"/> (natural order) with <paramref name="quant"/> (natural order), inverse transforms,
    /// level-shifts by 128 and writes the range-limited 8×8 samples to <paramref name="dest"/> at <paramref name="offset"/>.
    /// </summary>
    public static void Transform(ReadOnlySpan<short> coefs, ReadOnlySpan<int> quant, byte[] dest, int offset, int stride)
    {
        if (coefs.Length < 64 || quant.Length < 64) throw new ArgumentException("an IDCT block needs 64 coefficients");
        if (offset < 0 || offset + 7 * stride + 8 > dest.Length) throw new ArgumentOutOfRangeException(nameof(offset));

        if (IsDcOnly(coefs))
        {
            // Both passes reduce to (DC·q·4 + 16) >> 5, i.e. DC·q/8 rounded half up.
            byte v = RangeLimit((coefs[0] * quant[0] * 4 + 16) >> 5);
            for (int y = 0; y < 8; y++) dest.AsSpan(offset + y * stride, 8).Fill(v);
            return;
        }

        if (Avx2.IsSupported)
        {
            TransformAvx2(coefs, quant, dest, offset, stride);
            return;
        }
        Span<int> ws = stackalloc int[64];
        for (int x = 0; x < 8; x++) Column(coefs, quant, ws, x);
        for (int y = 0; y < 8; y++) Row(ws.Slice(y * 8, 8), dest.AsSpan(offset + y * stride, 8));
    }

    /// <summary>Fills an 8×8 block with the mid-grey of an all-zero block (what libjpeg leaves where data ran out).</summary>
    public static void FillGrey(byte[] dest, int offset, int stride)
    {
        for (int y = 0; y < 8; y++) dest.AsSpan(offset + y * stride, 8).Fill(128);
    }

    static bool IsDcOnly(ReadOnlySpan<short> coefs)
    {
        var words = MemoryMarshal.Cast<short, ulong>(coefs[..64]);
        ulong any = words[0] & ~0xFFFFUL; // little-endian: the low 16 bits of the first word are the DC term
        for (int i = 1; i < 16; i++) any |= words[i];
        return any == 0;
    }

    /// <summary>
    /// libjpeg's post-IDCT range limit: value + 128 clamped to 0..255 for |value| &lt; 512; beyond that (only corrupt data
    /// gets there) its 10-bit table index wraps, which we reproduce so even damaged files decode identically.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static byte RangeLimit(int x)
    {
        int v = ((x + 512) & 1023) - 384; // the low 10 bits as a signed value, plus 128
        return (byte)(v < 0 ? 0 : v > 255 ? 255 : v);
    }

    /// <summary>Pass 1 for one column x: dequantise, 1-D IDCT, keep Pass1Bits extra bits of precision.</summary>
    static void Column(ReadOnlySpan<short> c, ReadOnlySpan<int> q, Span<int> ws, int x)
    {
        if (c[8 + x] == 0 && c[16 + x] == 0 && c[24 + x] == 0 && c[32 + x] == 0 && c[40 + x] == 0 && c[48 + x] == 0 && c[56 + x] == 0)
        {
            int dc = c[x] * q[x] << Pass1Bits;
            for (int y = 0; y < 8; y++) ws[y * 8 + x] = dc;
            return;
        }
        // Even part.
        int z2 = c[16 + x] * q[16 + x], z3 = c[48 + x] * q[48 + x];
        int z1 = (z2 + z3) * F0541;
        int tmp2 = z1 - z3 * F1847;
        int tmp3 = z1 + z2 * F0765;
        z2 = c[x] * q[x];
        z3 = c[32 + x] * q[32 + x];
        int tmp0 = (z2 + z3) << ConstBits;
        int tmp1 = (z2 - z3) << ConstBits;
        int tmp10 = tmp0 + tmp3, tmp13 = tmp0 - tmp3, tmp11 = tmp1 + tmp2, tmp12 = tmp1 - tmp2;
        // Odd part.
        tmp0 = c[56 + x] * q[56 + x];
        tmp1 = c[40 + x] * q[40 + x];
        tmp2 = c[24 + x] * q[24 + x];
        tmp3 = c[8 + x] * q[8 + x];
        Odd(ref tmp0, ref tmp1, ref tmp2, ref tmp3);
        const int shift = ConstBits - Pass1Bits, round = 1 << (shift - 1);
        ws[x] = (tmp10 + tmp3 + round) >> shift;
        ws[56 + x] = (tmp10 - tmp3 + round) >> shift;
        ws[8 + x] = (tmp11 + tmp2 + round) >> shift;
        ws[48 + x] = (tmp11 - tmp2 + round) >> shift;
        ws[16 + x] = (tmp12 + tmp1 + round) >> shift;
        ws[40 + x] = (tmp12 - tmp1 + round) >> shift;
        ws[24 + x] = (tmp13 + tmp0 + round) >> shift;
        ws[32 + x] = (tmp13 - tmp0 + round) >> shift;
    }

    /// <summary>The odd half of the 1-D IDCT: inputs at frequencies 7, 5, 3, 1 become the four odd-part outputs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Odd(ref int tmp0, ref int tmp1, ref int tmp2, ref int tmp3)
    {
        int z1 = tmp0 + tmp3, z2 = tmp1 + tmp2, z3 = tmp0 + tmp2, z4 = tmp1 + tmp3;
        int z5 = (z3 + z4) * F1175;
        tmp0 *= F0298;
        tmp1 *= F2053;
        tmp2 *= F3072;
        tmp3 *= F1501;
        z1 *= -F0899;
        z2 *= -F2562;
        z3 = z3 * -F1961 + z5;
        z4 = z4 * -F0390 + z5;
        tmp0 += z1 + z3;
        tmp1 += z2 + z4;
        tmp2 += z2 + z3;
        tmp3 += z1 + z4;
    }

    /// <summary>
    /// Both passes with AVX2, one 1-D transform per vector lane: pass 1 works on rows of coefficients (a lane per column),
    /// then the 8×8 workspace is transposed so pass 2 can do the same for rows, and transposed back for output.
    /// Integer operations are the scalar ones, so results are identical.
    /// </summary>
    static void TransformAvx2(ReadOnlySpan<short> c, ReadOnlySpan<int> q, byte[] dest, int offset, int stride)
    {
        var r0 = Load(c, q, 0);
        var r1 = Load(c, q, 1);
        var r2 = Load(c, q, 2);
        var r3 = Load(c, q, 3);
        var r4 = Load(c, q, 4);
        var r5 = Load(c, q, 5);
        var r6 = Load(c, q, 6);
        var r7 = Load(c, q, 7);
        Idct1D(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7, ConstBits - Pass1Bits);
        Transpose(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7);
        Idct1D(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7, ConstBits + Pass1Bits + 3);
        Transpose(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7);

        // Range limit (see RangeLimit): sign-extend the low 10 bits, add 128, clamp; then pack four rows per vector.
        var rows0123 = Vector256.Narrow(Vector256.Narrow(Limit(r0), Limit(r1)), Vector256.Narrow(Limit(r2), Limit(r3))).AsUInt64();
        var rows4567 = Vector256.Narrow(Vector256.Narrow(Limit(r4), Limit(r5)), Vector256.Narrow(Limit(r6), Limit(r7))).AsUInt64();
        ref byte o = ref dest[offset];
        for (int y = 0; y < 4; y++)
        {
            Unsafe.WriteUnaligned(ref Unsafe.Add(ref o, y * stride), rows0123.GetElement(y));
            Unsafe.WriteUnaligned(ref Unsafe.Add(ref o, (y + 4) * stride), rows4567.GetElement(y));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<uint> Limit(Vector256<int> x)
    {
        var v = ((x + Vector256.Create(512)) & Vector256.Create(1023)) - Vector256.Create(384);
        return Vector256.Min(Vector256.Max(v, Vector256<int>.Zero), Vector256.Create(255)).AsUInt32();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<int> Load(ReadOnlySpan<short> c, ReadOnlySpan<int> q, int row)
    {
        var s = Vector128.Create(c.Slice(row * 8, 8));
        return Vector256.Create(Vector128.WidenLower(s), Vector128.WidenUpper(s)) * Vector256.Create(q.Slice(row * 8, 8));
    }

    /// <summary>The 1-D transform of <see cref="Column"/>/<see cref="Row"/> on eight lanes, rounded and shifted right by <paramref name="shift"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Idct1D(ref Vector256<int> i0, ref Vector256<int> i1, ref Vector256<int> i2, ref Vector256<int> i3,
        ref Vector256<int> i4, ref Vector256<int> i5, ref Vector256<int> i6, ref Vector256<int> i7, [ConstantExpected] int shift)
    {
        var z1 = (i2 + i6) * F0541;
        var tmp2 = z1 - i6 * F1847;
        var tmp3 = z1 + i2 * F0765;
        var tmp0 = Vector256.ShiftLeft(i0 + i4, ConstBits);
        var tmp1 = Vector256.ShiftLeft(i0 - i4, ConstBits);
        var tmp10 = tmp0 + tmp3;
        var tmp13 = tmp0 - tmp3;
        var tmp11 = tmp1 + tmp2;
        var tmp12 = tmp1 - tmp2;

        tmp0 = i7;
        tmp1 = i5;
        tmp2 = i3;
        tmp3 = i1;
        z1 = tmp0 + tmp3;
        var z2 = tmp1 + tmp2;
        var z3 = tmp0 + tmp2;
        var z4 = tmp1 + tmp3;
        var z5 = (z3 + z4) * F1175;
        tmp0 *= F0298;
        tmp1 *= F2053;
        tmp2 *= F3072;
        tmp3 *= F1501;
        z1 *= -F0899;
        z2 *= -F2562;
        z3 = z3 * -F1961 + z5;
        z4 = z4 * -F0390 + z5;
        tmp0 += z1 + z3;
        tmp1 += z2 + z4;
        tmp2 += z2 + z3;
        tmp3 += z1 + z4;

        var round = Vector256.Create(1 << (shift - 1));
        i0 = Vector256.ShiftRightArithmetic(tmp10 + tmp3 + round, shift);
        i7 = Vector256.ShiftRightArithmetic(tmp10 - tmp3 + round, shift);
        i1 = Vector256.ShiftRightArithmetic(tmp11 + tmp2 + round, shift);
        i6 = Vector256.ShiftRightArithmetic(tmp11 - tmp2 + round, shift);
        i2 = Vector256.ShiftRightArithmetic(tmp12 + tmp1 + round, shift);
        i5 = Vector256.ShiftRightArithmetic(tmp12 - tmp1 + round, shift);
        i3 = Vector256.ShiftRightArithmetic(tmp13 + tmp0 + round, shift);
        i4 = Vector256.ShiftRightArithmetic(tmp13 - tmp0 + round, shift);
    }

    /// <summary>8×8 transpose of 32-bit lanes: pairwise interleaves of 32 then 64 bits, then swaps of 128-bit halves.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Transpose(ref Vector256<int> r0, ref Vector256<int> r1, ref Vector256<int> r2, ref Vector256<int> r3,
        ref Vector256<int> r4, ref Vector256<int> r5, ref Vector256<int> r6, ref Vector256<int> r7)
    {
        var t0 = Avx2.UnpackLow(r0, r1).AsInt64();
        var t1 = Avx2.UnpackHigh(r0, r1).AsInt64();
        var t2 = Avx2.UnpackLow(r2, r3).AsInt64();
        var t3 = Avx2.UnpackHigh(r2, r3).AsInt64();
        var t4 = Avx2.UnpackLow(r4, r5).AsInt64();
        var t5 = Avx2.UnpackHigh(r4, r5).AsInt64();
        var t6 = Avx2.UnpackLow(r6, r7).AsInt64();
        var t7 = Avx2.UnpackHigh(r6, r7).AsInt64();
        var u0 = Avx2.UnpackLow(t0, t2).AsInt32();
        var u1 = Avx2.UnpackHigh(t0, t2).AsInt32();
        var u2 = Avx2.UnpackLow(t1, t3).AsInt32();
        var u3 = Avx2.UnpackHigh(t1, t3).AsInt32();
        var u4 = Avx2.UnpackLow(t4, t6).AsInt32();
        var u5 = Avx2.UnpackHigh(t4, t6).AsInt32();
        var u6 = Avx2.UnpackLow(t5, t7).AsInt32();
        var u7 = Avx2.UnpackHigh(t5, t7).AsInt32();
        r0 = Avx2.Permute2x128(u0, u4, 0x20);
        r4 = Avx2.Permute2x128(u0, u4, 0x31);
        r1 = Avx2.Permute2x128(u1, u5, 0x20);
        r5 = Avx2.Permute2x128(u1, u5, 0x31);
        r2 = Avx2.Permute2x128(u2, u6, 0x20);
        r6 = Avx2.Permute2x128(u2, u6, 0x31);
        r3 = Avx2.Permute2x128(u3, u7, 0x20);
        r7 = Avx2.Permute2x128(u3, u7, 0x31);
    }

    /// <summary>Pass 2 for one row: 1-D IDCT, drop all fractional bits (rounding half up), level shift and range limit.</summary>
    static void Row(ReadOnlySpan<int> w, Span<byte> o)
    {
        const int shift = ConstBits + Pass1Bits + 3, round = 1 << (shift - 1);
        if (w[1] == 0 && w[2] == 0 && w[3] == 0 && w[4] == 0 && w[5] == 0 && w[6] == 0 && w[7] == 0)
        {
            o[..8].Fill(RangeLimit((w[0] + (1 << (Pass1Bits + 2))) >> (Pass1Bits + 3)));
            return;
        }
        int z2 = w[2], z3 = w[6];
        int z1 = (z2 + z3) * F0541;
        int tmp2 = z1 - z3 * F1847;
        int tmp3 = z1 + z2 * F0765;
        int tmp0 = (w[0] + w[4]) << ConstBits;
        int tmp1 = (w[0] - w[4]) << ConstBits;
        int tmp10 = tmp0 + tmp3, tmp13 = tmp0 - tmp3, tmp11 = tmp1 + tmp2, tmp12 = tmp1 - tmp2;
        tmp0 = w[7];
        tmp1 = w[5];
        tmp2 = w[3];
        tmp3 = w[1];
        Odd(ref tmp0, ref tmp1, ref tmp2, ref tmp3);
        o[0] = RangeLimit((tmp10 + tmp3 + round) >> shift);
        o[7] = RangeLimit((tmp10 - tmp3 + round) >> shift);
        o[1] = RangeLimit((tmp11 + tmp2 + round) >> shift);
        o[6] = RangeLimit((tmp11 - tmp2 + round) >> shift);
        o[2] = RangeLimit((tmp12 + tmp1 + round) >> shift);
        o[5] = RangeLimit((tmp12 - tmp1 + round) >> shift);
        o[3] = RangeLimit((tmp13 + tmp0 + round) >> shift);
        o[4] = RangeLimit((tmp13 - tmp0 + round) >> shift);
    }
}
