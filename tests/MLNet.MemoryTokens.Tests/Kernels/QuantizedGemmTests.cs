using MLNet.MemoryTokens.Kernels;
using Xunit;

namespace MLNet.MemoryTokens.Tests.Kernels;

/// <summary>The integer Linear (int8 and int16): exact on inputs its levels represent exactly (packing, padding, zero points,
/// no saturation at the extremes), within the quantisation error bound on any input, NaN kept.</summary>
public class QuantizedGemmTests
{
    // both formats always (an empty theory fails in xUnit 2); each test returns at once on a CPU without AVX-512BW
    public static IEnumerable<object[]> Formats() => [[QuantizedFormat.Int8], [QuantizedFormat.Int16]];

    // rows, K, N: edges of every blocking (rows not a multiple of the 6-row tile or 96-row block, K not of 4, N not of 64;
    // 1,000 rows: eleven blocks over the threads)
    static readonly (int Rows, int K, int N)[] Shapes =
        [(1, 4, 1), (5, 7, 3), (7, 16, 70), (13, 192, 64), (97, 33, 130), (200, 768, 192), (31, 3072, 65), (1000, 40, 200)];

    /// <summary>Weights d_j·q with integer q in [−W, W] reaching ±W, and rows s_r·(q − z_r) with q spanning every level: what the
    /// quantiser maps to itself exactly (s, d powers of two), so the integer result equals the exact product.</summary>
    static (float[] X, float[] W) Representable(QuantizedGemm.Weights layout, int rows, int k, int n, int seed, bool extremes = false)
    {
        var rng = new Random(seed);
        int levels = layout.WeightLevels, qMin = layout.ActivationMin, qMax = qMin + layout.ActivationSteps;
        var w = new float[n * k];
        for (int j = 0; j < n; j++)
        {
            float d = MathF.Pow(2, -rng.Next(4, 9));
            for (int i = 0; i < k; i++) w[j * k + i] = d * (extremes ? levels : rng.Next(-levels, levels + 1));
            w[j * k + rng.Next(k)] = d * (rng.Next(2) == 0 ? levels : -levels);   // the row's largest magnitude is exactly W·d
        }
        var x = new float[rows * k];
        for (int r = 0; r < rows; r++)
        {
            float s = MathF.Pow(2, -rng.Next(2, 7));
            int z = extremes ? qMin : rng.Next(qMin, qMax + 1);
            for (int i = 0; i < k; i++) x[r * k + i] = s * ((extremes ? qMax : rng.Next(qMin, qMax + 1)) - z);
            if (!extremes && k >= 2) { x[r * k] = s * (qMin - z); x[r * k + 1] = s * (qMax - z); }   // both ends of the range present
        }
        return (x, w);
    }

    static double[] Exact(float[] x, float[] w, float[] bias, int rows, int k, int n)
    {
        var y = new double[rows * n];
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < n; j++)
            {
                double s = bias.Length > 0 ? bias[j] : 0;
                for (int i = 0; i < k; i++) s += (double)x[r * k + i] * w[j * k + i];
                y[r * n + j] = s;
            }
        return y;
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void EqualsTheExactProductOnRepresentableInputsForEveryShapeWithBiasAccumulationAndGelu(QuantizedFormat format)
    {
        if (!QuantizedGemm.IsSupported) return;
        int seed = 0;
        foreach (var (rows, k, n) in Shapes)
        {
            var layout = QuantizedGemm.Quantize(new float[n * k], n, k, format);
            var (x, w) = Representable(layout, rows, k, n, ++seed);
            var q = QuantizedGemm.Quantize(w, n, k, format);
            for (int j = 0; j < n; j += Math.Max(1, n / 5))
                for (int i = 0; i < k; i += Math.Max(1, k / 7)) Assert.Equal(w[j * k + i], q.Dequantized(j, i));
            foreach (bool withBias in new[] { false, true })
            {
                var bias = withBias ? Numerics.Random(n, ++seed) : [];
                var exact = Exact(x, w, bias, rows, k, n);
                var y = new float[rows * n];
                QuantizedGemm.Forward(y, x, q, bias, rows);
                for (int e = 0; e < y.Length; e++)
                    Assert.True(Math.Abs(y[e] - exact[e]) <= 1e-6 * (1 + Math.Abs(exact[e])), $"{format} [{rows}, {k}]·[{k}, {n}] bias={withBias} element {e}: {y[e]} vs exact {exact[e]}");

                var start = Numerics.Random(rows * n, ++seed);
                var acc = (float[])start.Clone();
                QuantizedGemm.Forward(acc, x, q, bias, rows, accumulate: true);
                for (int e = 0; e < y.Length; e++) Assert.True(Math.Abs(acc[e] - (start[e] + exact[e])) <= 1e-6 * (1 + Math.Abs(exact[e]) + Math.Abs(start[e])), $"{format} accumulate element {e}");

                var gelu = new float[rows * n];
                QuantizedGemm.Forward(gelu, x, q, bias, rows, gelu: true);
                var expected = exact.Select(v => (float)v).ToArray();
                Gelu.Forward(expected, expected);
                Numerics.AssertClose(expected, gelu, 1e-6, 1e-6, $"{format} GELU [{rows}, {k}, {n}]");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void TheLargestProductsDoNotSaturateOrOverflow(QuantizedFormat format)
    {
        if (!QuantizedGemm.IsSupported) return;
        // every activation at its top level, every weight at +W: the pair sums and K-long accumulations at their largest
        foreach (int k in new[] { 192, 768, 3072 })
        {
            const int rows = 7, n = 64;
            var layout = QuantizedGemm.Quantize(new float[n * k], n, k, format);
            var (x, w) = Representable(layout, rows, k, n, k, extremes: true);
            var q = QuantizedGemm.Quantize(w, n, k, format);
            var y = new float[rows * n];
            QuantizedGemm.Forward(y, x, q, default, rows);
            var exact = Exact(x, w, [], rows, k, n);
            for (int e = 0; e < y.Length; e++)
                Assert.True(Math.Abs(y[e] - exact[e]) <= 1e-6 * Math.Abs(exact[e]), $"{format} K={k} element {e}: {y[e]} vs exact {exact[e]} (saturated or overflowed)");
        }
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void StaysWithinTheQuantisationErrorBoundOnAnyInput(QuantizedFormat format)
    {
        if (!QuantizedGemm.IsSupported) return;
        // |y − x·wᵀ| ≤ Σ_k (|Δx_k|·|w_k| + |x_k|·|Δw_k| + |Δx_k|·|Δw_k|), each Δ at most half a step of its own scale
        int seed = 100;
        foreach (var (rows, k, n) in Shapes)
        {
            var x = Numerics.Random(rows * k, ++seed, 3f);
            for (int i = 0; i < x.Length; i += 5) x[i] = MathF.Abs(x[i]) * 4;   // skewed rows, as after GELU
            var w = Numerics.Random(n * k, ++seed, 0.1f);
            var q = QuantizedGemm.Quantize(w, n, k, format);
            var y = new float[rows * n];
            QuantizedGemm.Forward(y, x, q, default, rows);
            var exact = Exact(x, w, [], rows, k, n);
            for (int r = 0; r < rows; r++)
            {
                var row = x.AsSpan(r * k, k);
                double lo = Math.Min(0, row.ToArray().Min()), hi = Math.Max(0, row.ToArray().Max());
                double dx = (hi - lo) / q.ActivationSteps / 2;
                double sumAbsX = row.ToArray().Sum(v => Math.Abs((double)v));
                for (int j = 0; j < n; j++)
                {
                    var wj = w.AsSpan(j * k, k).ToArray();
                    double dw = wj.Max(v => Math.Abs((double)v)) / q.WeightLevels / 2;
                    double bound = dx * wj.Sum(v => Math.Abs((double)v)) + dw * sumAbsX + k * dx * dw + 1e-5 * (1 + Math.Abs(exact[r * n + j]));
                    double err = Math.Abs(y[r * n + j] - exact[r * n + j]);
                    Assert.True(err <= bound, $"{format} [{rows}, {k}, {n}] ({r}, {j}): error {err} above the bound {bound}");
                }
            }
        }
    }

    [Fact]
    public void Int16ErrsFarLessThanInt8()
    {
        if (!QuantizedGemm.IsSupported) return;
        const int rows = 64, k = 768, n = 192;
        var x = Numerics.Random(rows * k, 7, 2f); var w = Numerics.Random(n * k, 8, 0.05f);
        var exact = Exact(x, w, [], rows, k, n);
        double Error(QuantizedFormat f)
        {
            var y = new float[rows * n];
            QuantizedGemm.Forward(y, x, QuantizedGemm.Quantize(w, n, k, f), default, rows);
            return y.Select((v, e) => Math.Abs(v - exact[e])).Max();
        }
        double e8 = Error(QuantizedFormat.Int8), e16 = Error(QuantizedFormat.Int16);
        Assert.True(e16 * 8 < e8, $"int16 error {e16} is not 8× below int8's {e8} (each operand has 3 bits more at K = 768)");
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void ARowWithANaNOrInfinityGivesNaNOutputsAndLeavesTheOtherRowsRight(QuantizedFormat format)
    {
        if (!QuantizedGemm.IsSupported) return;
        const int rows = 9, k = 40, n = 70;
        var x = Numerics.Random(rows * k, 3); var w = Numerics.Random(n * k, 4, 0.1f);
        x[2 * k + 17] = float.NaN;
        x[5 * k + 39] = float.PositiveInfinity;   // in the scalar tail of the row
        var y = new float[rows * n];
        QuantizedGemm.Forward(y, x, QuantizedGemm.Quantize(w, n, k, format), default, rows);
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < n; j++)
                if (r is 2 or 5) Assert.True(float.IsNaN(y[r * n + j]), $"row {r} column {j} is {y[r * n + j]}, not NaN");
                else Assert.True(float.IsFinite(y[r * n + j]), $"row {r} column {j} is {y[r * n + j]}");
    }

    [Fact]
    public void RefusesBadShapesAndNonFiniteWeights()
    {
        if (!QuantizedGemm.IsSupported) return;
        Assert.Throws<ArgumentOutOfRangeException>(() => QuantizedGemm.Quantize(new float[4], 0, 4, QuantizedFormat.Int8));
        Assert.Throws<ArgumentException>(() => QuantizedGemm.Quantize(new float[3], 1, 4, QuantizedFormat.Int16));
        Assert.Contains("K = 140000", Assert.Throws<ArgumentException>(() => QuantizedGemm.Quantize(new float[140_000], 1, 140_000, QuantizedFormat.Int8)).Message);
        var bad = new float[8]; bad[5] = float.NaN;
        Assert.Contains("row 1", Assert.Throws<ArgumentException>(() => QuantizedGemm.Quantize(bad, 2, 4, QuantizedFormat.Int8)).Message);
        var q = QuantizedGemm.Quantize(new float[8], 2, 4, QuantizedFormat.Int8);
        Assert.Throws<ArgumentException>(() => QuantizedGemm.Forward(new float[3], new float[8], q, default, 2));      // output too small
        Assert.Throws<ArgumentException>(() => QuantizedGemm.Forward(new float[4], new float[7], q, default, 2));      // input too small
        Assert.Throws<ArgumentException>(() => QuantizedGemm.Forward(new float[4], new float[8], q, new float[3], 2));  // bias of the wrong size
        Assert.Throws<ArgumentException>(() => QuantizedGemm.Forward(new float[4], new float[8], q, default, 2, accumulate: true, gelu: true));
    }
}
