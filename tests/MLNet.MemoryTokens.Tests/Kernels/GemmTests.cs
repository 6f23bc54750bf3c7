using MLNet.MemoryTokens.Kernels;
using Xunit;

namespace MLNet.MemoryTokens.Tests.Kernels;

public class GemmTests
{
    public static IEnumerable<object[]> Kernels() =>
        new[] { GemmKernel.Scalar, GemmKernel.Vector256, GemmKernel.Vector512 }.Where(Gemm.IsSupported).Select(k => new object[] { k });

    static readonly (int M, int N, int K)[] Shapes =
    [
        (1, 1, 1), (1, 7, 3), (5, 1, 9), (3, 5, 0), (7, 33, 17), (8, 32, 16), (9, 31, 257), (17, 65, 63), (31, 47, 129),
        (64, 64, 64), (193, 97, 33), (200, 37, 770), (13, 576, 192), (197, 197, 64), (197, 64, 197), (250, 300, 1000), (5, 1100, 40),
    ];

    [Theory]
    [MemberData(nameof(Kernels))]
    public void MatchesReferenceOverShapesTranspositionsAndBeta(GemmKernel kernel)
    {
        int seed = 0;
        foreach (var (m, n, k) in Shapes)
            foreach (bool ta in new[] { false, true })
                foreach (bool tb in new[] { false, true })
                    foreach (float beta in new[] { 0f, 1f, 0.5f })
                    {
                        // Leading dimensions larger than the rows, to catch stride bugs.
                        int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 1, ldc = n + 2;
                        var a = Numerics.Random(Math.Max(1, (ta ? k : m) * lda), ++seed);
                        var b = Numerics.Random(Math.Max(1, (tb ? n : k) * ldb), ++seed);
                        var c0 = Numerics.Random(Math.Max(1, m * ldc), ++seed);
                        var expected = (float[])c0.Clone();
                        var actual = (float[])c0.Clone();
                        GemmReference.Multiply(ta, tb, m, n, k, a, lda, b, ldb, expected, ldc, beta);
                        Gemm.Multiply(ta, tb, m, n, k, a, lda, b, ldb, actual, ldc, beta, parallel: (m * n) % 2 == 0, kernel: kernel);
                        Numerics.AssertClose(expected, actual, 1e-5 * Math.Sqrt(k + 1), 1e-5, $"{kernel} M={m} N={n} K={k} tA={ta} tB={tb} beta={beta}");
                    }
    }

    [Theory]
    [MemberData(nameof(Kernels))]
    public void PackedWeightsWithBiasEpilogueMatchReference(GemmKernel kernel)
    {
        foreach (var (m, n, k) in new[] { (1, 1, 1), (37, 45, 19), (100, 576, 192), (65, 192, 768), (9, 33, 1000) })
        {
            var x = Numerics.Random(m * k, 1);
            var w = Numerics.Random(n * k, 2);          // [N, K] Linear layout
            var bias = Numerics.Random(n, 3);
            var expected = new float[m * n];
            GemmReference.Multiply(false, true, m, n, k, x, k, w, k, expected, n);
            for (int i = 0; i < m; i++) for (int j = 0; j < n; j++) expected[i * n + j] += bias[j];
            var packed = Gemm.Pack(true, k, n, w, k, kernel);
            var actual = new float[m * n];
            Linear.Forward(actual, x, packed, bias, m);
            Numerics.AssertClose(expected, actual, 1e-5 * Math.Sqrt(k), 1e-5, $"packed {kernel} {m}x{n}x{k}");
            // accumulate = residual add fused: out = out + x·Wᵀ + b
            var resid = Numerics.Random(m * n, 4);
            var acc = (float[])resid.Clone();
            Linear.Forward(acc, x, packed, bias, m, accumulate: true);
            for (int i = 0; i < resid.Length; i++) resid[i] += expected[i];
            Numerics.AssertClose(resid, acc, 1e-5 * Math.Sqrt(k), 1e-5, $"packed accumulate {kernel} {m}x{n}x{k}");
        }
    }

    [Theory]
    [InlineData(37, 45, 19)]     // edge tiles in both directions
    [InlineData(64, 768, 192)]   // full tiles, ViT's FC1 shape
    [InlineData(1, 33, 7)]
    public void GeluEpiloguesEqualSeparatePassesBitForBit(int m, int n, int k)
    {
        var x = Numerics.Random(m * k, 1, 2f); var w = Numerics.Random(n * k, 2); var bias = Numerics.Random(n, 3);
        var packed = Gemm.Pack(true, k, n, w, k);
        // forward: separate GEMM + GELU (+ its derivative) vs the fused epilogue (with and without keeping the derivative)
        // the reference GELU runs on a buffer padded to whole vectors: the fused path is the vector arithmetic everywhere
        int padded = (m * n + 15) / 16 * 16;
        var pre = new float[padded]; var post = new float[padded]; var slope = new float[padded];
        Linear.Forward(pre, x, packed, bias, m);
        Gelu.Forward(post, pre);
        Gelu.Derivative(slope, pre);
        pre = pre[..(m * n)]; post = post[..(m * n)]; slope = slope[..(m * n)];
        var fusedSlope = new float[m * n]; var fusedPost = new float[m * n]; var onlyPost = new float[m * n];
        Linear.ForwardGelu(fusedSlope, fusedPost, x, packed, bias, m);
        Linear.ForwardGelu(default, onlyPost, x, packed, bias, m);
        Assert.Equal(slope, fusedSlope); Assert.Equal(post, fusedPost); Assert.Equal(post, onlyPost);
        // backward: dHidden = (dy · W) ⊙ gelu'(pre), W [k, n] packed untransposed, gelu' as the forward kept it
        var dy = Numerics.Random(m * k, 4);
        var packedT = Gemm.Pack(false, k, n, w, n);
        var expected = new float[padded];
        Linear.BackwardInput(expected, dy, packedT, m, accumulate: false);
        Gelu.Backward(expected, [.. pre, .. new float[padded - m * n]], expected, accumulate: false);
        expected = expected[..(m * n)];
        var fused = new float[m * n];
        Linear.BackwardInputGelu(fused, dy, packedT, fusedSlope, m);
        Assert.Equal(expected, fused);
    }

    [Fact]
    public void RejectsBuffersTooSmallAndBadStrides()
    {
        var a = new float[6]; var b = new float[6]; var c = new float[4];
        Assert.Throws<ArgumentException>(() => Gemm.Multiply(false, false, 2, 2, 4, a, 4, b, 2, c, 2));   // A needs 8
        Assert.Throws<ArgumentException>(() => Gemm.Multiply(false, false, 2, 2, 3, a, 2, b, 2, c, 2));   // lda < K
        Assert.Throws<ArgumentException>(() => Gemm.Multiply(false, false, 2, 3, 3, a, 3, b, 3, c, 3));   // C needs 6
        Assert.Throws<ArgumentOutOfRangeException>(() => Gemm.Multiply(false, false, -1, 2, 3, a, 3, b, 2, c, 2));
    }
}
