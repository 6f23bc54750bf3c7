using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MLNet.MemoryTokens.Kernels;

/// <summary>The integer formats <see cref="QuantizedGemm"/> runs.</summary>
public enum QuantizedFormat
{
    /// <summary>Weights 7-bit in int8, activations uint8: vpmaddubsw, then vpmaddwd against ones (64 products per two multiplies).</summary>
    Int8,
    /// <summary>Weights and activations in int16 with as many bits as int32 accumulation over K allows (12/11 bits at K = 192,
    /// 11/10 at 768, 10/9 at 3072): vpmaddwd (32 products per multiply).</summary>
    Int16,
}

/// <summary>The integer product of a frozen Linear layer at inference: y = x·Wᵀ + b with W quantised once per output channel
/// (symmetric) and x per row at run time (asymmetric: each row's own range and zero point), accumulated exactly in int32 by
/// AVX-512BW, then dequantised with the bias (and the residual, when accumulating) in the same pass.</summary>
/// <remarks>
/// Shapes: x [R, K] fp32, W [N, K] fp32 (PyTorch Linear layout), y [R, N].
/// Packed W: [panels = ⌈N/64⌉][K/G][64 columns][G k] (G = 4 int8 or 2 int16 values per Int32 lane), zero-padded; each step of a
/// panel is four Vector512s. Quantised x: [R rounded to MR][K/G·G], the K padding holding the row's zero point (it meets zero weights).
/// Dequantisation: y[r, j] = sx[r]·sw[j]·(acc[r, j] − zx[r]·Σ_k wq[j, k]) + b[j].
/// Int8's 7-bit weights: vpmaddubsw adds two u8·s8 products into a saturating int16; with |wq| ≤ 63 the largest pair,
/// 2·255·63 = 32,130, stays below 32,767 (ONNX Runtime's reduce_range exists for the same reason). Int16's bits: K·(2^ba − 1)·(2^bw − 1)
/// stays below 2^31, so Σ (q − zx)·w never overflows. Why not VNNI: this CPU has AVX-512 VNNI, but .NET 10 exposes only
/// AVX-VNNI (VEX) and AVX10, and reports neither here.
/// </remarks>
public static unsafe class QuantizedGemm
{
    const int NR = 64;  // columns per panel: four Vector512<int> accumulators per row
    const int MR = 6;   // rows per micro-tile: 24 accumulators + 4 weight vectors + ones + broadcast fit in 32 registers
    const int MB = 96;  // rows per block: their quantised rows stay in L2 while every panel passes

    /// <summary>True when this CPU runs the integer paths (AVX-512BW).</summary>
    public static bool IsSupported => Avx512BW.IsSupported;

    /// <summary>A Linear weight quantised and packed once.</summary>
    public sealed class Weights
    {
        internal readonly sbyte[]? Packed8;
        internal readonly short[]? Packed16;
        internal readonly float[] Scales;     // [N padded to 64]: sw[j] (0 in the padding)
        internal readonly int[] ColumnSums;   // [N padded to 64]: Σ_k wq[j, k]
        public QuantizedFormat Format { get; }
        /// <summary>In features.</summary>
        public int K { get; }
        /// <summary>Out features.</summary>
        public int N { get; }
        /// <summary>Largest |weight level|.</summary>
        public int WeightLevels { get; }
        /// <summary>Activation levels − 1 (a row's range is cut into this many steps) and the lowest level.</summary>
        public int ActivationSteps { get; }
        internal int ActivationMin { get; }
        internal int Group => Format == QuantizedFormat.Int8 ? 4 : 2;
        internal int KPadded => (K + Group - 1) / Group * Group;
        internal int Panels => (N + NR - 1) / NR;

        internal Weights(QuantizedFormat format, int k, int n, int weightLevels, int activationSteps, int activationMin, sbyte[]? p8, short[]? p16, float[] scales, int[] sums)
        {
            Format = format; K = k; N = n; WeightLevels = weightLevels; ActivationSteps = activationSteps; ActivationMin = activationMin;
            Packed8 = p8; Packed16 = p16; Scales = scales; ColumnSums = sums;
        }

        internal long Index(int j, int k) => (((long)(j / NR) * (KPadded / Group) + k / Group) * NR + j % NR) * Group + k % Group;

        /// <summary>The dequantised weight wq[j, k]·sw[j] (tests compare it with the original).</summary>
        public float Dequantized(int j, int k) => (Packed8 is not null ? Packed8[Index(j, k)] : Packed16![Index(j, k)]) * Scales[j];
    }

    /// <summary>Quantises W [N, K] (PyTorch layout) per output channel and packs it.</summary>
    public static Weights Quantize(ReadOnlySpan<float> weight, int outFeatures, int inFeatures, QuantizedFormat format)
    {
        if (outFeatures < 1 || inFeatures < 1) throw new ArgumentOutOfRangeException(nameof(outFeatures), $"A quantised weight needs positive sizes, got [{outFeatures}, {inFeatures}].");
        if (weight.Length < (long)outFeatures * inFeatures) throw new ArgumentException($"The weight has {weight.Length} elements; [{outFeatures}, {inFeatures}] needed.", nameof(weight));
        if (!Enum.IsDefined(format)) throw new ArgumentOutOfRangeException(nameof(format), format, "Unknown quantised format.");
        int k = inFeatures, n = outFeatures;
        int wLevels, aSteps, aMin;
        if (format == QuantizedFormat.Int8)
        {
            (wLevels, aSteps, aMin) = (63, 255, 0);
            if ((long)k * 255 * 63 > int.MaxValue) throw new ArgumentException($"K = {k} is too large for int8 accumulation in int32 (at most {int.MaxValue / (255 * 63)}).", nameof(inFeatures));
        }
        else
        {
            // total bits T with K·2^T < 2^31, split: activations ⌈T/2⌉ bits (they vary per row), weights the rest
            int total = (int)Math.Floor(Math.Log2(int.MaxValue / (double)k));
            int ba = Math.Clamp((total + 1) / 2, 2, 15), bw = Math.Clamp(total - ba, 2, 15);
            if (total < 6) throw new ArgumentException($"K = {k} is too large for int16 accumulation in int32 (at most {int.MaxValue >> 6}).", nameof(inFeatures));
            (wLevels, aSteps, aMin) = ((1 << bw) - 1, (1 << ba) - 1, -(1 << (ba - 1)));
        }
        var layout = new Weights(format, k, n, wLevels, aSteps, aMin, null, null, [], []);
        long length = Limits.CheckElements("A quantised weight", (long)layout.Panels * NR * layout.KPadded);
        var p8 = format == QuantizedFormat.Int8 ? new sbyte[length] : null;
        var p16 = format == QuantizedFormat.Int16 ? new short[length] : null;
        var scales = new float[layout.Panels * NR];
        var sums = new int[layout.Panels * NR];
        for (int j = 0; j < n; j++)
        {
            var row = weight.Slice(j * k, k);
            float amax = MathF.Abs(TensorPrimitives.MaxMagnitude(row));   // MaxMagnitude keeps the sign
            if (!float.IsFinite(amax)) throw new ArgumentException($"Weight row {j} holds a non-finite value; it cannot be quantised.", nameof(weight));
            float scale = amax > 0 ? amax / wLevels : 1f, inv = 1f / scale;
            scales[j] = amax > 0 ? scale : 0f;
            int sum = 0;
            for (int kk = 0; kk < k; kk++)
            {
                int q = Math.Clamp((int)MathF.Round(row[kk] * inv), -wLevels, wLevels);
                if (p8 is not null) p8[layout.Index(j, kk)] = (sbyte)q; else p16![layout.Index(j, kk)] = (short)q;
                sum += q;
            }
            sums[j] = sum;
        }
        return new Weights(format, k, n, wLevels, aSteps, aMin, p8, p16, scales, sums);
    }

    /// <summary>y[R, N] = x[R, K]·Wᵀ + bias, or y += … when <paramref name="accumulate"/> (the residual add fused), or
    /// y = gelu(x·Wᵀ + bias) with <paramref name="gelu"/> (applied to each tile as it is dequantised, not in a second pass).</summary>
    public static void Forward(Span<float> output, ReadOnlySpan<float> input, Weights weight, ReadOnlySpan<float> bias, int rows, bool accumulate = false, bool gelu = false)
    {
        if (accumulate && gelu) throw new ArgumentException("GELU and accumulation do not combine: y = gelu(x·Wᵀ + b) is a fresh output.");
        if (!IsSupported) throw new PlatformNotSupportedException("The integer paths need AVX-512BW.");
        int n = weight.N, k = weight.K;
        if (rows < 0) throw new ArgumentOutOfRangeException(nameof(rows), rows, "The row count cannot be negative.");
        if (input.Length < (long)rows * k || output.Length < (long)rows * n)
            throw new ArgumentException($"The quantised Linear expects input [{rows}, {k}] and output [{rows}, {n}]; got {input.Length} and {output.Length} elements.");
        if (!bias.IsEmpty && bias.Length != n) throw new ArgumentException($"The quantised Linear's bias has {bias.Length} elements, expected {n}.");
        if (rows == 0) return;
        fixed (float* po = output) fixed (float* pi = input) fixed (float* pb = bias)
            Multiply(pi, rows, weight, bias.IsEmpty ? null : pb, po, accumulate, gelu);
    }

    static void Multiply(float* x, int rows, Weights w, float* bias, float* y, bool accumulate, bool gelu)
    {
        int strips = (rows + MR - 1) / MR, elementBytes = w.Format == QuantizedFormat.Int8 ? 1 : 2;
        long qFloats = ((long)strips * MR * w.KPadded * elementBytes + 3) / 4;
        // one buffer: the quantised rows, then per row its scale (float) and zero point (int)
        fixed (float* scratch = Scratch.Get(Scratch.Slot.QuantizedActivations, qFloats + 2L * strips * MR))
        {
            byte* q = (byte*)scratch;
            float* rowScale = scratch + qFloats;
            int* rowZero = (int*)(rowScale + strips * MR);
            int blocks = (rows + MB - 1) / MB;
            Parallelism.ForChunks(blocks, 1, (b0, b1) => MultiplyBlocks(b0, b1, x, rows, w, bias, y, accumulate, gelu, q, rowScale, rowZero));
        }
    }

    /// <summary>Row blocks [b0, b1): quantise each block's rows, then every panel × strip tile.</summary>
    static void MultiplyBlocks(int b0, int b1, float* x, int rows, Weights w, float* bias, float* y, bool accumulate, bool gelu, byte* q, float* rowScale, int* rowZero)
    {
        int n = w.N, kp = w.KPadded, strips = (rows + MR - 1) / MR, elementBytes = w.Format == QuantizedFormat.Int8 ? 1 : 2;
        float* tile = stackalloc float[MR * NR];   // a partial panel (N not a multiple of 64) is dequantised here first
        float* biasTile = stackalloc float[NR];
        fixed (sbyte* packed8 = w.Packed8) fixed (short* packed16 = w.Packed16) fixed (float* scales = w.Scales) fixed (int* sums = w.ColumnSums)
            for (int blk = b0; blk < b1; blk++)
            {
                int r0 = blk * MB, r1 = Math.Min(rows, r0 + MB);
                // pad to whole strips with zero rows (their outputs are never stored)
                int padded = Math.Min(strips * MR, r0 + ((r1 - r0 + MR - 1) / MR) * MR);
                QuantizeRows(x, w, r0, r1, padded, q, rowScale, rowZero);
                for (int p = 0; p < w.Panels; p++)
                {
                    int cols = Math.Min(NR, n - p * NR);
                    long panel = (long)p * kp * NR;
                    float* bp = bias == null ? null : bias + p * NR;
                    if (cols < NR && bp != null)
                    {
                        new Span<float>(biasTile, NR).Clear();
                        new Span<float>(bp, cols).CopyTo(new Span<float>(biasTile, NR));
                        bp = biasTile;
                    }
                    for (int s = r0; s < r1; s += MR)
                    {
                        int valid = Math.Min(MR, r1 - s);
                        bool full = cols == NR;
                        float* dst = full ? y + (long)s * n + p * NR : tile;
                        byte* qs = q + (long)s * kp * elementBytes;
                        if (w.Format == QuantizedFormat.Int8)
                            MicroTileInt8(qs, kp, packed8 + panel, scales + p * NR, sums + p * NR, bp, rowScale + s, rowZero + s, valid, dst, full ? n : NR, full && accumulate, gelu);
                        else
                            MicroTileInt16((short*)qs, kp, packed16 + panel, scales + p * NR, sums + p * NR, bp, rowScale + s, rowZero + s, valid, dst, full ? n : NR, full && accumulate, gelu);
                        if (full) continue;
                        for (int r = 0; r < valid; r++)
                        {
                            var from = new ReadOnlySpan<float>(tile + r * NR, cols);
                            var to = new Span<float>(y + (long)(s + r) * n + p * NR, cols);
                            if (accumulate) TensorPrimitives.Add(to, from, to); else from.CopyTo(to);
                        }
                    }
                }
            }
    }

    /// <summary>Rows [r0, r1) of x → integer levels with each row's scale and zero point; rows [r1, padded) zeroed.</summary>
    static void QuantizeRows(float* x, Weights w, int r0, int r1, int padded, byte* q, float* scale, int* zero)
    {
        int k = w.K, kp = w.KPadded, steps = w.ActivationSteps, qMin = w.ActivationMin, qMax = qMin + steps;
        bool bytes = w.Format == QuantizedFormat.Int8;
        for (int r = r0; r < padded; r++)
        {
            byte* dst8 = q + (long)r * kp; short* dst16 = (short*)q + (long)r * kp;
            if (r >= r1)
            {
                if (bytes) new Span<byte>(dst8, kp).Clear(); else new Span<short>(dst16, kp).Clear();
                scale[r] = 0; zero[r] = 0;
                continue;
            }
            var (lo, hi) = Range(x + (long)r * k, k);
            // a row with a NaN or ∞: scale NaN, so its outputs come out NaN as fp32's would (never a silent finite answer)
            float s = float.IsNaN(lo) ? float.NaN : hi > lo ? (hi - lo) / steps : 1f;
            if (float.IsInfinity(s)) s = float.NaN;   // finite values whose range overflows float
            int zp = float.IsNaN(s) ? 0 : Math.Clamp(qMin - (int)MathF.Round(lo / s), qMin, qMax);
            scale[r] = s; zero[r] = zp;
            var inv = Vector512.Create(1f / s);
            var z = Vector512.Create(zp);
            var min = Vector512.Create(qMin); var max = Vector512.Create(qMax);
            float* src = x + (long)r * k;
            int kk = 0;
            for (; kk <= k - 16; kk += 16)
            {
                var v = Vector512.Min(Vector512.Max(Avx512F.ConvertToVector512Int32(Vector512.Load(src + kk) * inv) + z, min), max);   // round to nearest even
                if (bytes) Vector128.Store(Avx512F.ConvertToVector128Byte(v), dst8 + kk);
                else Vector256.Store(Avx512F.ConvertToVector256Int16(v), dst16 + kk);
            }
            for (; kk < kp; kk++)
            {
                int v = kk < k ? Math.Clamp((int)MathF.Round(src[kk] / s) + zp, qMin, qMax) : zp;
                if (bytes) dst8[kk] = (byte)v; else dst16[kk] = (short)v;
            }
        }
    }

    /// <summary>(min(0, min x), max(0, max x)) in one pass (0 always representable: padding and ReLU-like zeros stay exact);
    /// NaN for both when the row holds a NaN or an infinity.</summary>
    static (float Lo, float Hi) Range(float* x, int k)
    {
        var lo = Vector512<float>.Zero; var hi = Vector512<float>.Zero; var bad = Vector512<float>.Zero;
        int i = 0;
        for (; i <= k - 16; i += 16)
        {
            var v = Vector512.Load(x + i);
            lo = Vector512.Min(lo, v); hi = Vector512.Max(hi, v);
            bad |= v - v;   // 0 for finite values, NaN for NaN and ±∞ (Min/Max alone may drop a NaN)
        }
        // horizontal reductions by halves (indexing the 16 lanes one by one cost more than the row's quantisation at K = 192)
        var lo128 = Vector128.Min(Vector256.Min(lo.GetLower(), lo.GetUpper()).GetLower(), Vector256.Min(lo.GetLower(), lo.GetUpper()).GetUpper());
        var hi128 = Vector128.Max(Vector256.Max(hi.GetLower(), hi.GetUpper()).GetLower(), Vector256.Max(hi.GetLower(), hi.GetUpper()).GetUpper());
        float l = Math.Min(Math.Min(lo128[0], lo128[1]), Math.Min(lo128[2], lo128[3]));
        float h = Math.Max(Math.Max(hi128[0], hi128[1]), Math.Max(hi128[2], hi128[3]));
        float nonFinite = Vector512.Sum(bad);
        for (; i < k; i++) { l = Math.Min(l, x[i]); h = Math.Max(h, x[i]); nonFinite += x[i] - x[i]; }
        return float.IsNaN(nonFinite) ? (float.NaN, float.NaN) : (l, h);
    }

    // Micro-kernels: one MR×64 tile over all of K, MR quantised rows (kp values each, from q) times one packed panel (wp),
    // dequantised into dst (row stride ld). Pointers only, no fixed or stackalloc, no closure: the 24 accumulators stay in
    // registers (a fixed or a captured local made the JIT write each one to the stack every step). Each Int32 lane holds G
    // consecutive k of one column: int8 pairs them into int16 (vpmaddubsw), then int32 against ones (vpmaddwd); int16 goes
    // to int32 in one vpmaddwd.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void MicroTileInt8(byte* q, int kp, sbyte* wp, float* sw, int* cs, float* bias, float* rowScale, int* rowZero, int validRows, float* dst, int ld, bool add, bool gelu)
    {
        var ones = Vector512.Create((short)1);
        Vector512<int> c00 = default, c01 = default, c02 = default, c03 = default,
            c10 = default, c11 = default, c12 = default, c13 = default,
            c20 = default, c21 = default, c22 = default, c23 = default,
            c30 = default, c31 = default, c32 = default, c33 = default,
            c40 = default, c41 = default, c42 = default, c43 = default,
            c50 = default, c51 = default, c52 = default, c53 = default;
        byte* a0 = q, a1 = q + kp, a2 = q + 2 * kp, a3 = q + 3 * kp, a4 = q + 4 * kp, a5 = q + 5 * kp;
        for (int o = 0; o < kp; o += 4, wp += NR * 4)
        {
            var w0 = Vector512.Load(wp); var w1 = Vector512.Load(wp + 64); var w2 = Vector512.Load(wp + 128); var w3 = Vector512.Load(wp + 192);
            var b = Vector512.Create(*(int*)(a0 + o)).AsByte();
            c00 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(b, w0), ones);
            c01 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(b, w1), ones);
            c02 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(b, w2), ones);
            c03 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(b, w3), ones);
            b = Vector512.Create(*(int*)(a1 + o)).AsByte();
            c10 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(b, w0), ones);
            c11 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(b, w1), ones);
            c12 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(b, w2), ones);
            c13 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(b, w3), ones);
            b = Vector512.Create(*(int*)(a2 + o)).AsByte();
            c20 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(b, w0), ones);
            c21 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(b, w1), ones);
            c22 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(b, w2), ones);
            c23 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(b, w3), ones);
            b = Vector512.Create(*(int*)(a3 + o)).AsByte();
            c30 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(b, w0), ones);
            c31 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(b, w1), ones);
            c32 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(b, w2), ones);
            c33 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(b, w3), ones);
            b = Vector512.Create(*(int*)(a4 + o)).AsByte();
            c40 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(b, w0), ones);
            c41 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(b, w1), ones);
            c42 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(b, w2), ones);
            c43 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(b, w3), ones);
            b = Vector512.Create(*(int*)(a5 + o)).AsByte();
            c50 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(b, w0), ones);
            c51 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(b, w1), ones);
            c52 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(b, w2), ones);
            c53 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(b, w3), ones);
        }
        Dequantize(c00, c01, c02, c03, rowScale[0], rowZero[0], sw, cs, bias, dst + 0L * ld, add, gelu);
        if (validRows > 1) Dequantize(c10, c11, c12, c13, rowScale[1], rowZero[1], sw, cs, bias, dst + 1L * ld, add, gelu);
        if (validRows > 2) Dequantize(c20, c21, c22, c23, rowScale[2], rowZero[2], sw, cs, bias, dst + 2L * ld, add, gelu);
        if (validRows > 3) Dequantize(c30, c31, c32, c33, rowScale[3], rowZero[3], sw, cs, bias, dst + 3L * ld, add, gelu);
        if (validRows > 4) Dequantize(c40, c41, c42, c43, rowScale[4], rowZero[4], sw, cs, bias, dst + 4L * ld, add, gelu);
        if (validRows > 5) Dequantize(c50, c51, c52, c53, rowScale[5], rowZero[5], sw, cs, bias, dst + 5L * ld, add, gelu);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void MicroTileInt16(short* q, int kp, short* wp, float* sw, int* cs, float* bias, float* rowScale, int* rowZero, int validRows, float* dst, int ld, bool add, bool gelu)
    {
        Vector512<int> c00 = default, c01 = default, c02 = default, c03 = default,
            c10 = default, c11 = default, c12 = default, c13 = default,
            c20 = default, c21 = default, c22 = default, c23 = default,
            c30 = default, c31 = default, c32 = default, c33 = default,
            c40 = default, c41 = default, c42 = default, c43 = default,
            c50 = default, c51 = default, c52 = default, c53 = default;
        short* a0 = q, a1 = q + kp, a2 = q + 2 * kp, a3 = q + 3 * kp, a4 = q + 4 * kp, a5 = q + 5 * kp;
        for (int o = 0; o < kp; o += 2, wp += NR * 2)
        {
            var w0 = Vector512.Load(wp); var w1 = Vector512.Load(wp + 32); var w2 = Vector512.Load(wp + 64); var w3 = Vector512.Load(wp + 96);
            var b = Vector512.Create(*(int*)(a0 + o)).AsInt16();
            c00 += Avx512BW.MultiplyAddAdjacent(b, w0);
            c01 += Avx512BW.MultiplyAddAdjacent(b, w1);
            c02 += Avx512BW.MultiplyAddAdjacent(b, w2);
            c03 += Avx512BW.MultiplyAddAdjacent(b, w3);
            b = Vector512.Create(*(int*)(a1 + o)).AsInt16();
            c10 += Avx512BW.MultiplyAddAdjacent(b, w0);
            c11 += Avx512BW.MultiplyAddAdjacent(b, w1);
            c12 += Avx512BW.MultiplyAddAdjacent(b, w2);
            c13 += Avx512BW.MultiplyAddAdjacent(b, w3);
            b = Vector512.Create(*(int*)(a2 + o)).AsInt16();
            c20 += Avx512BW.MultiplyAddAdjacent(b, w0);
            c21 += Avx512BW.MultiplyAddAdjacent(b, w1);
            c22 += Avx512BW.MultiplyAddAdjacent(b, w2);
            c23 += Avx512BW.MultiplyAddAdjacent(b, w3);
            b = Vector512.Create(*(int*)(a3 + o)).AsInt16();
            c30 += Avx512BW.MultiplyAddAdjacent(b, w0);
            c31 += Avx512BW.MultiplyAddAdjacent(b, w1);
            c32 += Avx512BW.MultiplyAddAdjacent(b, w2);
            c33 += Avx512BW.MultiplyAddAdjacent(b, w3);
            b = Vector512.Create(*(int*)(a4 + o)).AsInt16();
            c40 += Avx512BW.MultiplyAddAdjacent(b, w0);
            c41 += Avx512BW.MultiplyAddAdjacent(b, w1);
            c42 += Avx512BW.MultiplyAddAdjacent(b, w2);
            c43 += Avx512BW.MultiplyAddAdjacent(b, w3);
            b = Vector512.Create(*(int*)(a5 + o)).AsInt16();
            c50 += Avx512BW.MultiplyAddAdjacent(b, w0);
            c51 += Avx512BW.MultiplyAddAdjacent(b, w1);
            c52 += Avx512BW.MultiplyAddAdjacent(b, w2);
            c53 += Avx512BW.MultiplyAddAdjacent(b, w3);
        }
        Dequantize(c00, c01, c02, c03, rowScale[0], rowZero[0], sw, cs, bias, dst + 0L * ld, add, gelu);
        if (validRows > 1) Dequantize(c10, c11, c12, c13, rowScale[1], rowZero[1], sw, cs, bias, dst + 1L * ld, add, gelu);
        if (validRows > 2) Dequantize(c20, c21, c22, c23, rowScale[2], rowZero[2], sw, cs, bias, dst + 2L * ld, add, gelu);
        if (validRows > 3) Dequantize(c30, c31, c32, c33, rowScale[3], rowZero[3], sw, cs, bias, dst + 3L * ld, add, gelu);
        if (validRows > 4) Dequantize(c40, c41, c42, c43, rowScale[4], rowZero[4], sw, cs, bias, dst + 4L * ld, add, gelu);
        if (validRows > 5) Dequantize(c50, c51, c52, c53, rowScale[5], rowZero[5], sw, cs, bias, dst + 5L * ld, add, gelu);
    }

    /// <summary>One row of a tile: y[j] (+)= sx·sw[j]·(acc[j] − zx·Σwq[j]) + b[j] for the 64 columns.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Dequantize(Vector512<int> v0, Vector512<int> v1, Vector512<int> v2, Vector512<int> v3, float sx, int zx, float* sw, int* cs, float* bias, float* y, bool accumulate, bool gelu)
    {
        var z = Vector512.Create(zx); var s = Vector512.Create(sx);
        Column(v0, z, s, sw, cs, bias, y, accumulate, gelu);
        Column(v1, z, s, sw + 16, cs + 16, bias == null ? null : bias + 16, y + 16, accumulate, gelu);
        Column(v2, z, s, sw + 32, cs + 32, bias == null ? null : bias + 32, y + 32, accumulate, gelu);
        Column(v3, z, s, sw + 48, cs + 48, bias == null ? null : bias + 48, y + 48, accumulate, gelu);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Column(Vector512<int> v, Vector512<int> z, Vector512<float> s, float* sw, int* cs, float* bias, float* y, bool accumulate, bool gelu)
    {
        var f = Avx512F.ConvertToVector512Single(v - z * Vector512.Load(cs)) * (s * Vector512.Load(sw));
        if (bias != null) f += Vector512.Load(bias);
        if (gelu) f = Gelu.Forward(f);
        if (accumulate) f += Vector512.Load(y);
        Vector512.Store(f, y);
    }
}
