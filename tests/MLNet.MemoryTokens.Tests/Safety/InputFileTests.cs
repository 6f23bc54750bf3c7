using System.Diagnostics;
using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.Imaging;
using MLNet.MemoryTokens.IO;
using Xunit;
using static MLNet.MemoryTokens.Tests.Safety.SafetyFixtures;

namespace MLNet.MemoryTokens.Tests.Safety;

/// <summary>Input files: only regular files are read, within a size limit; folder walks survive symlink loops; every bad file
/// of a batch is named once with a summary; a truncated JPEG decodes as libjpeg does, with a warning.</summary>
public class InputFileTests
{
    [Fact]
    public void EachBadFileOfABatchIsNamedOnceWithASummary()
    {
        using var s = new Scratch();
        var ckpt = WriteCheckpoint(s["vit.safetensors"], TinyConfig(classes: 3));
        for (int i = 0; i < 3; i++) Image(s, $"photos/good{i}.ppm", i);
        File.WriteAllText(s["photos/bad1.jpg"], "not a picture");
        File.WriteAllBytes(s["photos/bad2.png"], [0x89, (byte)'P', (byte)'N', (byte)'G']);
        var run = RunCli(["predict", "--model", ckpt, "--json", s["photos"]]);
        Assert.True(run.ExitCode == 1, run.ToString());
        foreach (var bad in new[] { "bad1.jpg", "bad2.png" })
            Assert.Equal(1, run.Stderr.Split('\n').Count(l => l.Contains(bad)));
        Assert.Contains("2 of 5 images could not be read", run.Stderr);
        Assert.Equal(3, run.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);   // the good ones were predicted
        // training names every bad image together, before the first epoch
        var data = WriteColourFolder(s["data"], count: 9);
        File.WriteAllText(Path.Combine(data, "red", "broken.jpg"), "x");
        File.WriteAllText(Path.Combine(data, "blue", "broken.png"), "y");
        var train = RunCli(["train", "--model", WriteCheckpoint(s["trunk.safetensors"]), "--data", data, "--epochs", "1", "--out", s["adapter"]]);
        Assert.True(train.ExitCode == 1, train.ToString());
        Assert.Contains("2 of 11 images could not be used", train.Stderr);
        Assert.Contains("red/broken.jpg", train.Stderr);
        Assert.Contains("blue/broken.png", train.Stderr);
        Assert.DoesNotContain("   at ", train.Stderr);
    }

    [Fact]
    public void ATruncatedJpegDecodesAsLibjpegDoesWithAWarning()
    {
        var truncated = TestPaths.Fixture("images", "jpeg_truncated.jpg");
        var image = ImageDecoder.Load(truncated);
        Assert.NotNull(image.Warning);
        Assert.Contains("truncated", image.Warning);
        var expected = Imaging.ImageAssert.ReadExpectedPpm(TestPaths.Fixture("images", "jpeg_truncated.expected.ppm"));   // djpeg's own output
        Assert.Equal(0, Imaging.ImageAssert.MaxDiff(expected, image, "jpeg_truncated"));
        // complete files carry no warning
        foreach (var f in Directory.GetFiles(TestPaths.Fixture("images"), "jpeg_*.jpg").Where(f => !f.Contains("truncated") && !f.Contains("arith")))
            Assert.True(ImageDecoder.Load(f).Warning is null, $"{Path.GetFileName(f)} was reported as incomplete");
        // and the command line says so, and still predicts
        using var s = new Scratch();
        var ckpt = WriteCheckpoint(s["vit.safetensors"], TinyConfig(classes: 3));
        var run = RunCli(["predict", "--model", ckpt, truncated]);
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains($"warning: {truncated}", run.Stderr);
    }
}
