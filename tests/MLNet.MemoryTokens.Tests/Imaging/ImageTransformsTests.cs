using MLNet.MemoryTokens.Imaging;
using Xunit;
using Xunit.Abstractions;

namespace MLNet.MemoryTokens.Tests.Imaging;

public class ImageTransformsTests(ITestOutputHelper output)
{
    static readonly float[] Half = [0.5f, 0.5f, 0.5f];

    [Theory]
    [InlineData("bicubic", 224, 224)]
    [InlineData("bicubic", 17, 13)]
    [InlineData("bicubic", 100, 80)]
    [InlineData("bicubic", 61, 20)]
    [InlineData("bicubic", 30, 47)]
    [InlineData("bilinear", 17, 13)]
    [InlineData("bilinear", 100, 80)]
    [InlineData("bilinear", 61, 20)]
    [InlineData("bilinear", 30, 47)]
    [InlineData("nearest", 17, 13)]
    [InlineData("nearest", 100, 80)]
    [InlineData("nearest", 30, 47)]
    public void ResizeMatchesPil(string filter, int width, int height)
    {
        var src = ImageDecoder.Load(ImageAssert.Image("resize_src.png"));
        var expected = ImageDecoder.Load(ImageAssert.Image($"resize_{filter}_{width}x{height}.png"));
        var interpolation = filter switch { "bicubic" => Interpolation.Bicubic, "bilinear" => Interpolation.Bilinear, _ => Interpolation.Nearest };
        var actual = ImageTransforms.Resize(src, width, height, interpolation);
        int max = ImageAssert.Within(expected, actual, 1, $"{filter} 61x47 -> {width}x{height}");
        output.WriteLine($"{filter} {width}x{height}: max diff {max}");
    }

    [Theory]
    [InlineData(Interpolation.Bicubic, 345, 248, 60, 12, 224, 224)]
    [InlineData(Interpolation.Bicubic, 30, 47, 3, 0, 20, 47)]    // height unchanged: vertical pass skipped
    [InlineData(Interpolation.Bilinear, 61, 20, 10, 5, 40, 10)]  // width unchanged: columns only selected
    [InlineData(Interpolation.Bilinear, 17, 13, 0, 0, 17, 13)]
    [InlineData(Interpolation.Nearest, 100, 80, 7, 9, 50, 33)]
    [InlineData(Interpolation.Bicubic, 61, 47, 5, 6, 7, 8)]      // no resize at all: a plain crop
    public void ResizingOnlyTheWindowEqualsResizeThenCrop(Interpolation filter, int w, int h, int left, int top, int cw, int ch)
    {
        var src = ImageDecoder.Load(ImageAssert.Image("resize_src.png"));
        var full = ImageTransforms.Resize(src, w, h, filter);
        var expected = new RgbImage(cw, ch);
        for (int y = 0; y < ch; y++)
            full.Pixels.AsSpan(((top + y) * w + left) * 3, cw * 3).CopyTo(expected.Pixels.AsSpan(y * cw * 3));
        ImageAssert.Equal(expected, Resampler.ResizeWindow(src, w, h, filter, true, left, top, cw, ch), $"{filter} window");
    }

    [Theory]
    [InlineData(Interpolation.Bicubic, true)]
    [InlineData(Interpolation.Bicubic, false)]
    [InlineData(Interpolation.Bilinear, true)]
    public void TheVectorHorizontalPassEqualsTheScalarOne(Interpolation filter, bool antialias)
    {
        if (!System.Runtime.Intrinsics.X86.Avx512F.IsSupported) return;   // the vector pass runs only where AVX-512 does
        var rng = new Random(7);
        foreach (var (w, h, outW) in new[] { (500, 9, 331), (640, 7, 248), (37, 5, 11), (7, 3, 2), (226, 4, 590), (5, 2, 5 * 7), (1, 3, 4), (401, 3, 100) })
        {
            var src = new RgbImage(w, h);
            rng.NextBytes(src.Pixels);
            var kernel = Resampler.BuildKernel(w, outW, filter, antialias);
            foreach (int first in new[] { 0, outW / 3 })
            {
                var (a, b) = (new RgbImage(outW - first, h), new RgbImage(outW - first, h));
                Resampler.HorizontalPassScalar(src, 0, a, kernel, first);
                Resampler.HorizontalPass512(src, 0, b, kernel, first);
                ImageAssert.Equal(a, b, $"{filter} {w}x{h} -> {outW} from column {first}");
            }
        }
    }

    [Fact]
    public void SameSizeIsACopy()
    {
        var src = ImageDecoder.Load(ImageAssert.Image("resize_src.png"));
        var same = ImageTransforms.Resize(src, src.Width, src.Height, Interpolation.Bicubic);
        Assert.NotSame(src.Pixels, same.Pixels);
        Assert.Equal(src.Pixels, same.Pixels);
    }

    [Fact]
    public void WithoutAntialiasBilinearHalvingAveragesPixelPairs()
    {
        // Unscaled triangle support at scale 2: each output is the mean of the two inputs it straddles, per axis
        // (rounded half up after each pass). With antialias the support widens to 4 inputs and the result differs.
        var src = new RgbImage(4, 2, [.. Enumerable.Range(0, 24).Select(i => (byte)(i * 10))]);
        var plain = ImageTransforms.Resize(src, 2, 1, Interpolation.Bilinear, antialias: false);
        for (int x = 0; x < 2; x++)
        for (int c = 0; c < 3; c++)
        {
            int Avg(int a, int b) => (a + b + 1) / 2;
            int top = Avg(src.Pixels[(2 * x) * 3 + c], src.Pixels[(2 * x + 1) * 3 + c]);
            int bottom = Avg(src.Pixels[(4 + 2 * x) * 3 + c], src.Pixels[(4 + 2 * x + 1) * 3 + c]);
            Assert.Equal(Avg(top, bottom), plain.Pixels[x * 3 + c]);
        }
        var smooth = ImageTransforms.Resize(src, 2, 1, Interpolation.Bilinear);
        Assert.NotEqual(plain.Pixels, smooth.Pixels);
    }

    [Fact]
    public void UpscalingIgnoresTheAntialiasFlag()
    {
        var src = ImageDecoder.Load(ImageAssert.Image("resize_src.png"));
        var a = ImageTransforms.Resize(src, 100, 80, Interpolation.Bicubic, antialias: true);
        var b = ImageTransforms.Resize(src, 100, 80, Interpolation.Bicubic, antialias: false);
        Assert.Equal(a.Pixels, b.Pixels);
    }

    [Theory]
    [InlineData(320, 230, 248, 345, 248)] // torchvision: int(248 * 320 / 230) = 345
    [InlineData(230, 320, 248, 248, 345)]
    [InlineData(500, 375, 248, 330, 248)]
    [InlineData(100, 100, 248, 248, 248)]
    public void ShorterSideKeepsAspectLikeTorchvision(int w, int h, int size, int ew, int eh)
    {
        Assert.Equal((ew, eh), ImageTransforms.ShorterSideSize(w, h, size));
        var resized = ImageTransforms.ResizeShorterSide(new RgbImage(w, h), size, Interpolation.Bilinear);
        Assert.Equal((ew, eh), (resized.Width, resized.Height));
    }

    [Theory]
    [InlineData(345, 248, 224, 224, 60, 12)] // (345-224)/2 = 60.5 rounds half to even: 60
    [InlineData(347, 248, 224, 224, 62, 12)] // 61.5 -> 62
    [InlineData(10, 10, 14, 13, -2, -1)]     // padding: (14-10)//2 = 2 left, (13-10)//2 = 1 top
    [InlineData(10, 30, 13, 20, -1, 5)]      // pad one axis, crop the other
    public void CenterCropOffsetsMatchTorchvision(int w, int h, int cw, int ch, int left, int top)
    {
        Assert.Equal((left, top), ImageTransforms.CenterCropOffset(w, h, cw, ch));
    }

    [Fact]
    public void CenterCropCopiesTheWindowAndPadsWithZero()
    {
        var src = new RgbImage(3, 2, [.. Enumerable.Range(1, 18).Select(i => (byte)i)]);
        var crop = ImageTransforms.CenterCrop(src, 5, 4); // left = -1, top = -1
        Assert.Equal((5, 4), (crop.Width, crop.Height));
        for (int y = 0; y < 4; y++)
        for (int x = 0; x < 5; x++)
        {
            int sx = x - 1, sy = y - 1;
            bool inside = sx >= 0 && sx < 3 && sy >= 0 && sy < 2;
            for (int c = 0; c < 3; c++)
                Assert.Equal(inside ? src.Pixels[(sy * 3 + sx) * 3 + c] : 0, crop.Pixels[(y * 5 + x) * 3 + c]);
        }
    }

    [Fact]
    public void ToNormalizedChwIsPlanarAndExact()
    {
        var src = new RgbImage(2, 1, [0, 128, 255, 10, 20, 30]);
        float[] mean = [0.485f, 0.456f, 0.406f], std = [0.229f, 0.224f, 0.225f];
        var dest = new float[6];
        ImageTransforms.ToNormalizedChw(src, mean, std, dest);
        float F(int v, int c) => (v / 255f - mean[c]) / std[c];
        Assert.Equal([F(0, 0), F(10, 0), F(128, 1), F(20, 1), F(255, 2), F(30, 2)], dest);
        Assert.Throws<ArgumentException>(() => ImageTransforms.ToNormalizedChw(src, mean, std, new float[5]));
    }

    [Fact]
    public void PreprocessMatchesTimmEvalTransform()
    {
        // Reference: PIL resize(345x248, BICUBIC) -> crop at (60, 12) -> /255 -> (x - 0.5) / 0.5, written by numpy.
        var src = ImageDecoder.Load(ImageAssert.Image("preprocess_src.png"));
        var expected = ImageAssert.ReadFloatsGz(ImageAssert.Image("preprocess_timm_224.f32.gz"));
        var actual = new float[3 * 224 * 224];
        ImageTransforms.Preprocess(src, 224, 0.9, Interpolation.Bicubic, Half, Half, actual);
        Assert.Equal(expected.Length, actual.Length);
        float max = 0;
        for (int i = 0; i < actual.Length; i++) max = Math.Max(max, Math.Abs(actual[i] - expected[i]));
        output.WriteLine($"preprocess max abs diff {max}");
        Assert.True(max <= 0.02f, $"max abs diff {max} > 0.02");
    }
}
