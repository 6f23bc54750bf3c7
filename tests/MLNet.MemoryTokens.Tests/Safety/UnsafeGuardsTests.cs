using MLNet.MemoryTokens.IO;
using MLNet.MemoryTokens.Kernels;
using MLNet.MemoryTokens.Tuning.QueryTuning;
using Xunit;
using static MLNet.MemoryTokens.Tests.Safety.SafetyFixtures;

namespace MLNet.MemoryTokens.Tests.Safety;

/// <summary>Every public entry to pointer code checks its spans first: a wrong size is an exception, never a write past a buffer
/// (the list of what was reviewed is in docs/reliability.md).</summary>
public class UnsafeGuardsTests
{
    [Fact]
    public void FusedGeluBackwardChecksEverySpan()
    {
        var w = Gemm.Pack(false, 8, 16, new float[8 * 16], 16);   // K = 8 out features, N = 16 in features
        var ex = Assert.Throws<ArgumentException>(() => Linear.BackwardInputGelu(new float[4 * 16 - 1], new float[4 * 8], w, new float[4 * 16], 4));
        Assert.Contains("dHidden", ex.Message);
        Assert.Throws<ArgumentException>(() => Linear.BackwardInputGelu(new float[4 * 16], new float[4 * 8 - 1], w, new float[4 * 16], 4));
    }

    [Fact]
    public void LayerNormBackwardChecksTheWeightAndItsGradients()
    {
        float[] x = new float[2 * 8], mean = new float[2], rstd = new float[2];
        LayerNorm.Forward(new float[16], mean, rstd, x, new float[8], new float[8], 2, 8, 1e-6f);
        Assert.Throws<ArgumentException>(() => LayerNorm.Backward(new float[16], default, default, new float[16], x, new float[7], mean, rstd, 2, 8));
        Assert.Throws<ArgumentException>(() => LayerNorm.Backward(new float[16], new float[7], default, new float[16], x, new float[8], mean, rstd, 2, 8));
    }

    [Fact]
    public void GemmPackRefusesNegativeSizes() =>
        Assert.ThrowsAny<ArgumentException>(() => Gemm.Pack(false, -1, 4, new float[4], 4));

    [Fact]
    public void AVqtCacheRefusesAnIndexOutsideItAndAnyUseAfterDispose()
    {
        var c = TinyConfig();
        var cache = new KeyValueCache(2, c, TensorDType.F16, 1 << 20, null, "id");
        Assert.Throws<InvalidOperationException>(() => cache.Load([2]));
        Assert.Throws<ArgumentOutOfRangeException>(() => cache.StoreClassToken(-1, new float[c.Dim]));
        cache.StoreClassToken(0, new float[c.Dim]);
        var batch = cache.Load([0]);
        Assert.Throws<ArgumentOutOfRangeException>(() => batch.Layer(0).ReadHead(0, c.Heads, c.HeadDim, new float[c.NumTokens * c.HeadDim], new float[c.NumTokens * c.HeadDim]));
        cache.Dispose();
        Assert.Throws<ObjectDisposedException>(() => batch.Layer(0).ReadHead(0, 0, c.HeadDim, new float[c.NumTokens * c.HeadDim], new float[c.NumTokens * c.HeadDim]));
        Assert.Throws<ObjectDisposedException>(() => cache.StoreClassToken(1, new float[c.Dim]));
    }

    [Fact]
    public void SoftmaxBackwardRowsMustMatch() =>
        Assert.Throws<ArgumentException>(() => Softmax.RowBackward(new float[3], new float[4], new float[4], 1f));
}
