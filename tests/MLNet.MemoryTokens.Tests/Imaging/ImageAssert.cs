using System.IO.Compression;
using MLNet.MemoryTokens.Imaging;
using Xunit;

namespace MLNet.MemoryTokens.Tests.Imaging;

/// <summary>Helpers for the imaging tests: an independent P6 reader for expected outputs and per-channel comparisons.</summary>
internal static class ImageAssert
{
    public static string Image(string name) => TestPaths.Fixture("images", name);

    /// <summary>Reads the expected-output PPMs the fixture script writes (P6, maxval 255, no comments), without ImageDecoder.</summary>
    public static RgbImage ReadExpectedPpm(string path)
    {
        var data = File.ReadAllBytes(path);
        int pos = 0;
        string Token()
        {
            while (char.IsWhiteSpace((char)data[pos])) pos++;
            int start = pos;
            while (!char.IsWhiteSpace((char)data[pos])) pos++;
            return System.Text.Encoding.ASCII.GetString(data, start, pos - start);
        }
        Assert.Equal("P6", Token());
        int w = int.Parse(Token()), h = int.Parse(Token());
        Assert.Equal("255", Token());
        pos++;
        return new RgbImage(w, h, data.AsSpan(pos, w * h * 3).ToArray());
    }

    /// <summary>Reads a gzip-compressed little-endian float32 dump.</summary>
    public static float[] ReadFloatsGz(string path)
    {
        using var gz = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
        using var ms = new MemoryStream();
        gz.CopyTo(ms);
        var bytes = ms.ToArray();
        var floats = new float[bytes.Length / 4];
        Buffer.BlockCopy(bytes, 0, floats, 0, floats.Length * 4);
        return floats;
    }

    /// <summary>The largest absolute difference over all pixels and channels; sizes must agree.</summary>
    public static int MaxDiff(RgbImage expected, RgbImage actual, string what)
    {
        Assert.True(expected.Width == actual.Width && expected.Height == actual.Height,
            $"{what}: size {actual.Width}x{actual.Height}, expected {expected.Width}x{expected.Height}");
        int max = 0;
        var e = expected.Pixels;
        var a = actual.Pixels;
        for (int i = 0; i < e.Length; i++) max = Math.Max(max, Math.Abs(e[i] - a[i]));
        return max;
    }

    /// <summary>Asserts every channel of every pixel is within <paramref name="tolerance"/>, reporting the worst difference.</summary>
    public static int Within(RgbImage expected, RgbImage actual, int tolerance, string what)
    {
        int max = MaxDiff(expected, actual, what);
        Assert.True(max <= tolerance, $"{what}: max per-channel difference {max} > {tolerance}");
        return max;
    }

    public static void Equal(RgbImage expected, RgbImage actual, string what)
    {
        int max = MaxDiff(expected, actual, what);
        if (max == 0) return;
        var e = expected.Pixels;
        var a = actual.Pixels;
        int i = 0;
        while (e[i] == a[i]) i++;
        int pixel = i / 3;
        Assert.Fail($"{what}: first mismatch at ({pixel % expected.Width}, {pixel / expected.Width}) channel {i % 3}: " +
                    $"{a[i]} != expected {e[i]} (max diff {max})");
    }
}
