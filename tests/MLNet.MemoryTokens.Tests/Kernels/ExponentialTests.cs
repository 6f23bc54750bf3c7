using System.Runtime.Intrinsics;
using MLNet.MemoryTokens.Kernels;
using Xunit;

namespace MLNet.MemoryTokens.Tests.Kernels;

public class ExponentialTests
{
    [Fact]
    public void MatchesDoublePrecisionExpAndTheScalarTwinBitForBit()
    {
        // every 97th float bit pattern in [-90, 90], plus the edges
        var xs = new List<float> { -87.33654f, 88.37626f, -88f, 89f, 0f, -0f, 1e-30f, -1e-30f };
        for (float x = -90f; x <= 90f; x = MathF.BitIncrement(x) is var n && n > x + 1e-4f ? n : x + 1.7e-3f) xs.Add(x);
        double worst = 0;
        for (int i = 0; i + 16 <= xs.Count; i += 16)
        {
            var v = Exponential.Exp(Vector512.Create(xs.GetRange(i, 16).ToArray()));
            for (int j = 0; j < 16; j++)
            {
                float x = xs[i + j];
                Assert.Equal(BitConverter.SingleToInt32Bits(Exponential.Exp(x)), BitConverter.SingleToInt32Bits(v[j]));
                double e = Math.Exp(x);
                if (x < -87.33654f) { Assert.Equal(0f, v[j]); continue; }
                if (x > 88.37626f) { Assert.Equal(float.PositiveInfinity, v[j]); continue; }
                worst = Math.Max(worst, Math.Abs(v[j] - e) / e);
            }
        }
        Assert.True(worst < 3e-7, $"worst relative error {worst:E2}");
    }

    [Fact]
    public void NaNAndInfinitiesGoWhereExpSendsThem()
    {
        var v = Exponential.Exp(Vector512.Create([float.NaN, float.NegativeInfinity, float.PositiveInfinity, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f]));
        Assert.True(float.IsNaN(v[0]));
        Assert.Equal(0f, v[1]);
        Assert.Equal(float.PositiveInfinity, v[2]);
        Assert.Equal(1f, v[3]);
        Assert.True(float.IsNaN(Exponential.Exp(float.NaN)));
    }
}
