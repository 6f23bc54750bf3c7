using System.Diagnostics;
using MLNet.MemoryTokens.Imaging;
using Xunit;
using Xunit.Abstractions;

namespace MLNet.MemoryTokens.Tests.Imaging;

/// <summary>The eight real ImageNet photos in ../shared, against the PPMs PIL/libjpeg decoded from them.</summary>
public class SharedPhotoTests(ITestOutputHelper output)
{
    public static TheoryData<string> Photos() =>
    [
        "n01514668_10054", "n01687978_10071", "n01847000_10087", "n02113978_10037",
        "n02231487_1002", "n03032252_101298", "n03240683_10240", "n03764736_10075",
    ];

    static string Photo(string name, string ext) => Path.Combine(TestPaths.Shared!, "testdata", "imagenet", name + ext);

    [SharedTheory]
    [MemberData(nameof(Photos))]
    public void DecodesLikePil(string name)
    {
        var expected = ImageAssert.ReadExpectedPpm(Photo(name, ".ppm"));
        var actual = ImageDecoder.Load(Photo(name, ".JPEG"));
        int max = ImageAssert.Within(expected, actual, 3, name);
        output.WriteLine($"{name}: {actual.Width}x{actual.Height}, max diff {max}");
    }

    [SharedFact]
    public void DecodingAPhotoTakesMilliseconds()
    {
        // Reported rather than asserted tightly: CI machines vary. The bound only catches pathological slowdowns.
        var data = File.ReadAllBytes(Photo("n02231487_1002", ".JPEG"));
        for (int i = 0; i < 20; i++) ImageDecoder.Decode(data);
        double best = double.MaxValue;
        for (int round = 0; round < 5; round++)
        {
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < 10; i++) ImageDecoder.Decode(data);
            best = Math.Min(best, sw.Elapsed.TotalMilliseconds / 10);
        }
        output.WriteLine($"n02231487_1002.JPEG (500x375 baseline 4:4:4): {best:F2} ms per decode");
        Assert.True(best < 100, $"{best:F1} ms per decode");
    }
}
