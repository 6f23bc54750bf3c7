using MLNet.MemoryTokens.Kernels;
using Xunit;

namespace MLNet.MemoryTokens.Tests.Kernels;

/// <summary>Each kernel's forward and backward against the PyTorch autograd dump (reference/make_parity_fixtures.py).</summary>
public class KernelParityTests
{
    static IReadOnlyDictionary<string, Tensor> T => Numerics.Parity("kernels.safetensors");
    static float[] D(string key) => T[key].Data;

    [Fact]
    public void LayerNormMatchesPyTorch()
    {
        int r = 6, c = 37;
        var y = new float[r * c]; var mean = new float[r]; var rstd = new float[r];
        LayerNorm.Forward(y, mean, rstd, D("ln.x"), D("ln.w"), D("ln.b"), r, c, 1e-6f);
        Numerics.AssertClose(D("ln.y"), y, 1e-5, 1e-5, "ln.y");
        var dx = new float[r * c]; var dw = new float[c]; var db = new float[c];
        LayerNorm.Backward(dx, dw, db, D("ln.dy"), D("ln.x"), D("ln.w"), mean, rstd, r, c);
        Numerics.AssertClose(D("ln.dx"), dx, 1e-5, 1e-4, "ln.dx");
        Numerics.AssertClose(D("ln.dw"), dw, 1e-5, 1e-4, "ln.dw");
        Numerics.AssertClose(D("ln.db"), db, 1e-5, 1e-4, "ln.db");
    }

    [Fact]
    public void GeluMatchesPyTorch()
    {
        var x = D("gelu.x");
        var y = new float[x.Length];
        Gelu.Forward(y, x);
        Numerics.AssertClose(D("gelu.y"), y, 2e-6, 2e-6, "gelu.y");
        var dx = new float[x.Length];
        Gelu.Backward(dx, x, D("gelu.dy"));
        Numerics.AssertClose(D("gelu.dx"), dx, 2e-6, 2e-6, "gelu.dx");
        // The scalar tail path agrees with the vector path (odd lengths exercise both).
        var ys = new float[7];
        Gelu.Forward(ys, x.AsSpan(3, 7));
        Numerics.AssertClose(y.AsSpan(3, 7), ys, 1e-7, 1e-6, "gelu tail");
        // gelu' (what a training forward keeps for backward) times dy is PyTorch's dx, on the vector path and the scalar tail
        var slope = new float[x.Length];
        Gelu.Derivative(slope, x);
        Numerics.AssertClose(D("gelu.dx"), slope.Zip(D("gelu.dy"), (g, dy) => g * dy).ToArray(), 2e-6, 2e-6, "gelu' · dy");
        var slopeTail = new float[7];
        Gelu.Derivative(slopeTail, x.AsSpan(3, 7));
        Numerics.AssertClose(slope.AsSpan(3, 7), slopeTail, 1e-7, 1e-6, "gelu' tail");
    }

    [Fact]
    public void SoftmaxMatchesPyTorch()
    {
        var p = new float[7 * 33];
        Softmax.Forward(p, D("softmax.x"), 7, 33, 0.37f);
        Numerics.AssertClose(D("softmax.p"), p, 1e-6, 1e-5, "softmax.p");
        var dx = new float[7 * 33];
        Softmax.Backward(dx, p, D("softmax.dy"), 7, 33, 0.37f);
        Numerics.AssertClose(D("softmax.dx"), dx, 1e-6, 1e-4, "softmax.dx");
    }

    [Fact]
    public void LinearMatchesPyTorch()
    {
        int r = 13, k = 19, n = 23;
        var y = new float[r * n];
        Linear.Forward(y, D("linear.x"), D("linear.w"), D("linear.b"), r, k, n);
        Numerics.AssertClose(D("linear.y"), y, 1e-5, 1e-5, "linear.y");
        var dx = new float[r * k]; var dw = new float[n * k]; var db = new float[n];
        Linear.Backward(dx, dw, db, D("linear.dy"), D("linear.x"), D("linear.w"), r, k, n);
        Numerics.AssertClose(D("linear.dx"), dx, 1e-5, 1e-4, "linear.dx");
        Numerics.AssertClose(D("linear.dw"), dw, 1e-5, 1e-4, "linear.dw");
        Numerics.AssertClose(D("linear.db"), db, 1e-5, 1e-4, "linear.db");
        // The packed-transpose input-gradient path (frozen backbone) gives the same dx.
        var dx2 = new float[r * k];
        Linear.BackwardInput(dx2, D("linear.dy"), Gemm.Pack(false, n, k, D("linear.w"), k), r);
        Numerics.AssertClose(D("linear.dx"), dx2, 1e-5, 1e-4, "linear.dx packed");
    }

    [Theory]
    [InlineData("self")]
    [InlineData("memory")]
    [InlineData("readonly")]
    public void AttentionMatchesPyTorch(string name)
    {
        var lay = D($"attn.{name}.layout");
        var layout = new Attention.Layout(2, 11, 2, 8, (int)lay[0], (int)lay[1], (int)lay[2], (int)lay[3]);
        var qkv = D("attn.qkv");
        var output = new float[2 * layout.Queries * 16];
        var probs = new float[2 * 2 * layout.Queries * layout.Keys];
        Attention.Forward(output, probs, qkv, layout);
        Numerics.AssertClose(D($"attn.{name}.out"), output, 1e-5, 1e-5, $"attn.{name}.out");
        var noProbs = new float[output.Length];
        Attention.Forward(noProbs, default, qkv, layout);
        Assert.Equal(output, noProbs);   // inference path (scratch scores) computes the same bits
        var dqkv = new float[qkv.Length];
        Attention.Backward(dqkv, D($"attn.{name}.dout"), probs, qkv, layout);
        Numerics.AssertClose(D($"attn.{name}.dqkv"), dqkv, 1e-5, 1e-4, $"attn.{name}.dqkv");
    }
}
