using MLNet.MemoryTokens.Imaging;
using Xunit;
using Xunit.Abstractions;

namespace MLNet.MemoryTokens.Tests.Imaging;

public class JpegDecoderTests(ITestOutputHelper output)
{
    /// <summary>JPEGs of synthetic pictures (cjpeg; CMYK/YCCK written by PIL), each beside djpeg's (CMYK/YCCK: PIL's) decode.</summary>
    static readonly string[] CjpegNames =
    [
        "jpeg_444", "jpeg_420", "jpeg_422", "jpeg_440", "jpeg_411", "jpeg_mixed", "jpeg_optimize", "jpeg_gray", "jpeg_rgb",
        "jpeg_restart1", "jpeg_restart3b", "jpeg_prog_420", "jpeg_prog_444", "jpeg_prog_gray", "jpeg_prog_restart",
        "jpeg_odd_420", "jpeg_odd_prog_422", "jpeg_multiscan", "jpeg_prog_sa", "jpeg_cmyk", "jpeg_ycck", "jpeg_truncated",
    ];

    public static TheoryData<string> CjpegFixtures() => new(CjpegNames);

    [Theory]
    [MemberData(nameof(CjpegFixtures))]
    public void DecodesLikeDjpeg(string name)
    {
        var expected = ImageAssert.ReadExpectedPpm(ImageAssert.Image(name + ".expected.ppm"));
        var actual = ImageDecoder.Load(ImageAssert.Image(name + ".jpg"));
        int max = ImageAssert.Within(expected, actual, 3, name);
        output.WriteLine($"{name}: {actual.Width}x{actual.Height}, max diff {max}");
    }

    [Fact]
    public void ReproducesLibjpegTurboBitExactly()
    {
        // Same integer IDCT (islow), fancy upsampling and fixed-point YCbCr as libjpeg-turbo: every djpeg fixture matches
        // exactly. (The ±3 above is the contract; this pins down the stronger property so a regression is noticed.)
        var worst = CjpegNames
            .Select(name => (name, diff: ImageAssert.MaxDiff(ImageAssert.ReadExpectedPpm(ImageAssert.Image(name + ".expected.ppm")),
                ImageDecoder.Load(ImageAssert.Image(name + ".jpg")), name)))
            .Where(r => r.diff != 0)
            .ToList();
        Assert.True(worst.Count == 0, "not bit-exact: " + string.Join(", ", worst.Select(w => $"{w.name} ({w.diff})")));
    }

    [Fact]
    public void TruncatedProgressiveDecodesWhatArrived()
    {
        // Cut inside the sixth scan (a luma AC refinement). libjpeg additionally smooths blocks whose AC coefficients
        // are still incomplete (its "block smoothing"); we show the coefficients as received, so only closeness holds.
        var expected = ImageAssert.ReadExpectedPpm(ImageAssert.Image("jpeg_prog_truncated.expected.ppm"));
        var actual = ImageDecoder.Load(ImageAssert.Image("jpeg_prog_truncated.jpg"));
        int max = ImageAssert.MaxDiff(expected, actual, "jpeg_prog_truncated");
        double mean = expected.Pixels.Zip(actual.Pixels, (a, b) => Math.Abs(a - b)).Average();
        output.WriteLine($"jpeg_prog_truncated: max diff {max}, mean {mean:F2}");
        Assert.True(mean < 5 && max < 40, $"mean diff {mean:F2}, max {max}");
    }

    [Fact]
    public void ArithmeticCodingIsNotSupported()
    {
        var e = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Load(ImageAssert.Image("jpeg_arith.jpg")));
        Assert.True(e.IsNotSupported);
        Assert.Contains("jpeg_arith.jpg", e.Message);
        Assert.Contains("arithmetic-coded JPEG (SOF marker 0xFFC9) is not supported", e.Message);
    }

    [Theory]
    [InlineData(12, "12-bit sample precision is not supported")]
    [InlineData(16, "invalid sample precision 16")]
    public void OnlyEightBitPrecision(int precision, string message)
    {
        var data = File.ReadAllBytes(ImageAssert.Image("jpeg_444.jpg"));
        int sof = data.AsSpan().IndexOf([(byte)0xFF, (byte)0xC0]);
        data[sof + 4] = (byte)precision;
        var e = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(data, "p.jpg"));
        Assert.Contains(message, e.Message);
        Assert.Contains($"at byte offset {sof}", e.Message);
    }

    [Fact]
    public void LosslessIsNotSupported()
    {
        var data = File.ReadAllBytes(ImageAssert.Image("jpeg_444.jpg"));
        data[data.AsSpan().IndexOf([(byte)0xFF, (byte)0xC0]) + 1] = 0xC3;
        var e = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(data, "l.jpg"));
        Assert.True(e.IsNotSupported);
        Assert.Contains("lossless", e.Message);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(6)]
    [InlineData(7)]
    [InlineData(8)]
    public void AppliesExifOrientation(int orientation)
    {
        string name = $"jpeg_exif_{orientation}";
        var path = ImageAssert.Image(name + ".jpg");
        Assert.Equal(orientation, ExifOrientation.ReadFromJpeg(File.ReadAllBytes(path)));
        var expected = ImageAssert.ReadExpectedPpm(ImageAssert.Image(name + ".expected.ppm"));
        var actual = ImageDecoder.Load(path);
        int max = ImageAssert.Within(expected, actual, 3, name);
        output.WriteLine($"{name}: {actual.Width}x{actual.Height}, max diff {max}");
    }

    [Fact]
    public void CanKeepStoredOrientation()
    {
        var upright = ImageDecoder.Load(ImageAssert.Image("jpeg_exif_1.jpg"));
        var raw = ImageDecoder.Load(ImageAssert.Image("jpeg_exif_6.jpg"), applyExifOrientation: false);
        Assert.Equal((upright.Width, upright.Height), (raw.Width, raw.Height));
        Assert.Equal(upright.Pixels, raw.Pixels);
    }
}
