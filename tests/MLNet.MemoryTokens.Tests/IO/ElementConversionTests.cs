using MLNet.MemoryTokens.IO;
using Xunit;

namespace MLNet.MemoryTokens.Tests.IO;

public class ElementConversionTests
{
    [Fact]
    public void HalfWideningIsExactForEveryBitPattern()
    {
        // all 65,536 patterns, at every offset of a vector (runs of 1 to 70 take the 32-, 16-wide and scalar paths)
        var bits = Enumerable.Range(0, 65536).Select(i => (ushort)i).ToArray();
        var expected = bits.Select(b => (float)BitConverter.UInt16BitsToHalf(b)).ToArray();
        var got = new float[bits.Length];
        ElementConversion.HalfToSingle(bits, got);
        for (int i = 0; i < bits.Length; i++)
            Assert.True(BitConverter.SingleToUInt32Bits(expected[i]) == BitConverter.SingleToUInt32Bits(got[i]) || (float.IsNaN(expected[i]) && float.IsNaN(got[i])),
                $"0x{bits[i]:X4}: expected {expected[i]}, got {got[i]}");
        for (int n = 1; n <= 70; n++)
        {
            var run = new float[n];
            ElementConversion.HalfToSingle(bits.AsSpan(0x3C00 - n / 2, n), run);
            Assert.Equal(expected.AsSpan(0x3C00 - n / 2, n).ToArray(), run);
        }
    }

    [Fact]
    public void HalfNaNsKeepTheirPayload()
    {
        ushort[] nans = [0x7C01, 0x7E00, 0xFE00, 0x7FFF];
        var got = new float[nans.Length];
        ElementConversion.HalfToSingle(nans, got);
        for (int i = 0; i < nans.Length; i++)
            Assert.Equal(BitConverter.SingleToUInt32Bits((float)BitConverter.UInt16BitsToHalf(nans[i])), BitConverter.SingleToUInt32Bits(got[i]));
    }

    [Fact]
    public void BFloat16WideningIsTheTopHalfOfAFloat()
    {
        var bits = Enumerable.Range(0, 65536).Select(i => (ushort)i).ToArray();
        var got = new float[bits.Length];
        ElementConversion.BFloat16ToSingle(bits, got);
        for (int i = 0; i < bits.Length; i++) Assert.Equal((uint)bits[i] << 16, BitConverter.SingleToUInt32Bits(got[i]));
    }

    [Fact]
    public void ShortDestinationIsRefused() =>
        Assert.Throws<ArgumentException>(() => ElementConversion.HalfToSingle(new ushort[4], new float[3]));
}
