using System.Runtime.InteropServices;
using System.Security.Cryptography;
using MLNet.MemoryTokens.Imaging;
using Xunit;

namespace MLNet.MemoryTokens.Tests.Imaging;

/// <summary>The decoder's and the resize's fast paths (the block decoder's local bit buffer, the AVX-512 horizontal pass) give
/// the same bits as the code before them: digests of every fixture JPEG's pixels and eval-transform inputs, written with that
/// code (tests/fixtures/images/decoded-digests.txt).</summary>
public class DecodedDigestTests
{
    static string Digest(ReadOnlySpan<byte> bytes) => Convert.ToHexString(SHA256.HashData(bytes))[..16];

    public static TheoryData<string> Images() =>
        [.. File.ReadLines(ImageAssert.Image("decoded-digests.txt")).Where(l => !l.StartsWith('#')).Select(l => l.Split(' ')[0])];

    [Theory]
    [MemberData(nameof(Images))]
    public void PixelsAndEvalInputsAreBitIdenticalToTheCodeBeforeTheFastPaths(string name)
    {
        var line = File.ReadLines(ImageAssert.Image("decoded-digests.txt")).Single(l => l.StartsWith(name + " ")).Split(' ');
        var img = ImageDecoder.Load(ImageAssert.Image(name));
        var x = new float[3 * 224 * 224];
        ImageTransforms.Preprocess(img, 224, 0.9, Interpolation.Bicubic, [.5f, .5f, .5f], [.5f, .5f, .5f], x);
        var y = new float[3 * 200 * 200];
        ImageTransforms.Preprocess(img, 200, 0.875, Interpolation.Bilinear, [.5f, .5f, .5f], [.5f, .5f, .5f], y);
        Assert.Equal(line[1], $"{img.Width}x{img.Height}");
        Assert.Equal(line[2], Digest(img.Pixels));
        Assert.Equal(line[3], Digest(MemoryMarshal.AsBytes(x.AsSpan())));
        Assert.Equal(line[4], Digest(MemoryMarshal.AsBytes(y.AsSpan())));
    }
}
