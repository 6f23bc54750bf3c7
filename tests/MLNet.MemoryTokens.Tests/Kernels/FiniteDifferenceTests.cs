using MLNet.MemoryTokens.Kernels;
using Xunit;

namespace MLNet.MemoryTokens.Tests.Kernels;

/// <summary>Each backward against central finite differences of L = Σ out ⊙ r (float32 forward, double-accumulated loss).</summary>
public class FiniteDifferenceTests
{
    const float H = 1e-2f;

    static void CheckAll(float[] x, float[] analytic, Func<double> loss, string what, double tol = 2e-3)
    {
        for (int i = 0; i < x.Length; i++)
        {
            double fd = Numerics.FiniteDifference(x, i, loss, H);
            double err = Math.Abs(fd - analytic[i]) / Math.Max(1.0, Math.Abs(fd));
            Assert.True(err < tol, $"{what}[{i}]: analytic {analytic[i]:G6}, finite difference {fd:G6}");
        }
    }

    [Fact]
    public void LayerNorm()
    {
        int rows = 3, c = 11;
        var x = Numerics.Random(rows * c, 1, 2f); var w = Numerics.Random(c, 2); var b = Numerics.Random(c, 3); var r = Numerics.Random(rows * c, 4);
        var y = new float[rows * c]; var mean = new float[rows]; var rstd = new float[rows];
        double Loss() { MLNet.MemoryTokens.Kernels.LayerNorm.Forward(y, mean, rstd, x, w, b, rows, c, 1e-6f); return Numerics.Dot(y, r); }
        Loss();
        var dx = new float[rows * c]; var dw = new float[c]; var db = new float[c];
        MLNet.MemoryTokens.Kernels.LayerNorm.Backward(dx, dw, db, r, x, w, mean, rstd, rows, c);
        CheckAll(x, dx, Loss, "ln.dx");
        CheckAll(w, dw, Loss, "ln.dw");
        CheckAll(b, db, Loss, "ln.db");
    }

    [Fact]
    public void Gelu()
    {
        var x = Numerics.Random(40, 5, 4f); var r = Numerics.Random(40, 6); var y = new float[40];
        double Loss() { MLNet.MemoryTokens.Kernels.Gelu.Forward(y, x); return Numerics.Dot(y, r); }
        var dx = new float[40];
        MLNet.MemoryTokens.Kernels.Gelu.Backward(dx, x, r);
        CheckAll(x, dx, Loss, "gelu.dx");
    }

    [Fact]
    public void Softmax()
    {
        var x = Numerics.Random(3 * 9, 7, 3f); var r = Numerics.Random(27, 8); var p = new float[27];
        double Loss() { MLNet.MemoryTokens.Kernels.Softmax.Forward(p, x, 3, 9, 0.5f); return Numerics.Dot(p, r); }
        Loss();
        var dx = new float[27];
        MLNet.MemoryTokens.Kernels.Softmax.Backward(dx, p, r, 3, 9, 0.5f);
        CheckAll(x, dx, Loss, "softmax.dx");
    }

    [Fact]
    public void Linear()
    {
        int rows = 4, k = 6, n = 5;
        var x = Numerics.Random(rows * k, 9); var w = Numerics.Random(n * k, 10); var b = Numerics.Random(n, 11); var r = Numerics.Random(rows * n, 12);
        var y = new float[rows * n];
        double Loss() { MLNet.MemoryTokens.Kernels.Linear.Forward(y, x, w, b, rows, k, n); return Numerics.Dot(y, r); }
        var dx = new float[rows * k]; var dw = new float[n * k]; var db = new float[n];
        MLNet.MemoryTokens.Kernels.Linear.Backward(dx, dw, db, r, x, w, rows, k, n);
        CheckAll(x, dx, Loss, "linear.dx");
        CheckAll(w, dw, Loss, "linear.dw");
        CheckAll(b, db, Loss, "linear.db");
    }

    [Theory]
    [InlineData(0, 5, 0, 5)]   // self-attention
    [InlineData(0, 4, 0, 6)]   // memory: two extra key/value rows
    [InlineData(4, 2, 0, 4)]   // read-only queries
    public void Attention(int q0, int nq, int k0, int nk)
    {
        var layout = new MLNet.MemoryTokens.Kernels.Attention.Layout(2, 6, 2, 3, q0, nq, k0, nk);
        var qkv = Numerics.Random(2 * 6 * 18, 13, 1.5f); var r = Numerics.Random(2 * nq * 6, 14);
        var output = new float[2 * nq * 6]; var probs = new float[2 * 2 * nq * nk];
        double Loss() { MLNet.MemoryTokens.Kernels.Attention.Forward(output, probs, qkv, layout); return Numerics.Dot(output, r); }
        Loss();
        var dqkv = new float[qkv.Length];
        MLNet.MemoryTokens.Kernels.Attention.Backward(dqkv, r, probs, qkv, layout);
        CheckAll(qkv, dqkv, Loss, $"attn({q0},{nq},{k0},{nk}).dqkv");
    }
}
