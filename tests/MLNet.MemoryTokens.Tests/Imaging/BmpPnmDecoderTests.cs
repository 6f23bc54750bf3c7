using MLNet.MemoryTokens.Imaging;
using Xunit;

namespace MLNet.MemoryTokens.Tests.Imaging;

public class BmpPnmDecoderTests
{
    public static TheoryData<string> Fixtures() =>
    [
        "bmp_24_pil.bmp", "bmp_8_pil.bmp", "bmp_1_pil.bmp", "bmp_24_topdown.bmp", "bmp_24_v4.bmp", "bmp_24_core.bmp",
        "bmp_32.bmp", "bmp_32_v5_bitfields.bmp", "bmp_32_bitfields_rgbx.bmp", "bmp_16_565.bmp", "bmp_16_555.bmp",
        "bmp_4.bmp", "bmp_8_topdown.bmp",
        "pnm_p6.ppm", "pnm_p5.pgm", "pnm_p6_maxval100.ppm", "pnm_p6_16bit.ppm", "pnm_p5_12bit.pgm",
    ];

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void DecodesExactly(string file)
    {
        string stem = file[..file.LastIndexOf('.')];
        var expected = ImageAssert.ReadExpectedPpm(ImageAssert.Image(stem + ".expected.ppm"));
        ImageAssert.Equal(expected, ImageDecoder.Load(ImageAssert.Image(file)), file);
    }

    [Fact]
    public void RleBmpIsNotSupported()
    {
        var data = File.ReadAllBytes(ImageAssert.Image("bmp_8_pil.bmp"));
        data[30] = 1; // biCompression = BI_RLE8
        var e = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(data, "rle.bmp"));
        Assert.True(e.IsNotSupported);
        Assert.Contains("rle.bmp", e.Message);
        Assert.Contains("RLE", e.Message);
    }

    [Fact]
    public void AsciiPnmIsNotSupported()
    {
        var e = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode("P3\n1 1\n255\n0 0 0\n"u8, "plain.ppm"));
        Assert.True(e.IsNotSupported);
        Assert.Contains("plain.ppm", e.Message);
    }

    [Fact]
    public void PnmHeaderErrorsSayWhere()
    {
        var e = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode("P6\n4 x\n255\n"u8, "bad.ppm"));
        Assert.Contains("bad.ppm: PNM: expected the height at offset 5", e.Message);
        e = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode("P5 4 4 255\n\0\0"u8, "short.pgm"));
        Assert.Contains("truncated", e.Message);
    }
}
