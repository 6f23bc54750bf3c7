using System.Text.Json;
using MLNet.MemoryTokens.Model;
using Xunit;

namespace MLNet.MemoryTokens.Tests.Model;

/// <summary>The real ImageNet ViT-Ti/16 from ../shared on real photos (skipped without ../shared).</summary>
public class RealCheckpointTests
{
    static string Checkpoint => Path.Combine(TestPaths.Shared!, "models", "vit_tiny_patch16_224.augreg_in21k_ft_in1k.safetensors");
    static string Photos => Path.Combine(TestPaths.Shared!, "testdata", "imagenet");

    [SharedFact]
    public void PredictPutsTheTrueClassFirstForSevenOfEightPhotosAndInTheTopFiveForAll()
    {
        var truth = File.ReadAllLines(Path.Combine(Photos, "labels.csv")).Skip(1).Select(l => l.Split(','))
            .ToDictionary(f => f[0], f => int.Parse(f[2]));
        var jpegs = truth.Keys.Select(f => Path.Combine(Photos, f)).ToArray();
        int exit = MLNet.MemoryTokens.Tests.Training.TrainerTests.Cli(["predict", "--model", Checkpoint, "--labels", Path.Combine(Photos, "imagenet1k_class_names.txt"),
            "--top-k", "5", "--json", .. jpegs], out var output);
        Assert.Equal(0, exit);
        int top1 = 0, top5 = 0, lines = 0;
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var o = JsonDocument.Parse(line).RootElement;
            int expected = truth[Path.GetFileName(o.GetProperty("file").GetString()!)];
            var top = o.GetProperty("top").EnumerateArray().Select(t => t.GetProperty("index").GetInt32()).ToArray();
            Assert.Equal(5, top.Length);
            Assert.True(o.GetProperty("top")[0].GetProperty("probability").GetDouble() is > 0 and <= 1);
            top1 += top[0] == expected ? 1 : 0;
            top5 += top.Contains(expected) ? 1 : 0;
            lines++;
        }
        Assert.Equal(8, lines);
        Assert.True(top1 >= 7, $"top-1 correct for {top1} of 8");
        Assert.Equal(8, top5);
    }

    [SharedFact]
    public void LoadsAtAnotherInputSizeByResamplingThePositionEmbedding()
    {
        var backbone = Backbone.Load(Checkpoint, new BackboneOptions { ImageSize = 112 });
        Assert.Equal(112, backbone.Model.Config.ImageSize);
        Assert.Equal([1, 50, 192], backbone.Model.Parameters["pos_embed"].Shape);
        Assert.Equal(3, backbone.Model.Config.Heads);
        Assert.Equal(0.9, backbone.Preprocess.CropFraction);
        var other = Backbone.Load(Checkpoint);
        Assert.Equal(backbone.Fingerprint, other.Fingerprint);   // the fingerprint is of the checkpoint, not the resampled model
    }

    [Fact]
    public void AModelIdThatCannotBeDownloadedGivesAClearError()
    {
        var old = Environment.GetEnvironmentVariable("MMT_CACHE_DIR");
        var dir = Directory.CreateTempSubdirectory("mmt-hub-").FullName;
        Environment.SetEnvironmentVariable("MMT_CACHE_DIR", dir);
        Environment.SetEnvironmentVariable("MMT_HUB_ENDPOINT", "http://127.0.0.1:9");   // a closed local port: the download fails at once
        try
        {
            var ex = Assert.Throws<IOException>(() => MLNet.MemoryTokens.IO.ModelHub.Resolve("no_such_model_" + Guid.NewGuid().ToString("N"), TimeSpan.FromSeconds(20)));
            Assert.Contains("--model path/to/model.safetensors", ex.Message);
            Assert.Contains("http://127.0.0.1:9/timm/", ex.Message);
            Assert.Contains(dir, ex.Message);
            Assert.Empty(Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories));   // nothing half-written in the cache
        }
        finally
        {
            Environment.SetEnvironmentVariable("MMT_CACHE_DIR", old);
            Environment.SetEnvironmentVariable("MMT_HUB_ENDPOINT", null);
            Directory.Delete(dir, true);
        }
    }
}
