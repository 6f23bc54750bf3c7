using System.Text.Json;
using MLNet.MemoryTokens.Imaging;
using MLNet.MemoryTokens.Model;
using Xunit;

namespace MLNet.MemoryTokens.Tests.Model;

/// <summary><c>mmt predict</c> decodes on background threads, batches ahead of the forward: its predictions are those of decoding
/// and predicting one file after another (the real ViT-Ti/16 and photos from ../shared; skipped without them).</summary>
public class StreamedPredictTests
{
    static string Checkpoint => Path.Combine(TestPaths.Shared!, "models", "vit_tiny_patch16_224.augreg_in21k_ft_in1k.safetensors");
    static string Photos => Path.Combine(TestPaths.Shared!, "testdata", "imagenet");

    [SharedFact]
    public void PredictionsEqualTheSequentialPathAndABadFileIsNamedWithANonZeroExit()
    {
        using var dir = new MLNet.MemoryTokens.Tests.Data.TempDir();
        // the photos twice, with an undecodable file between them: batches of 3 split the list unevenly
        var jpegs = Directory.GetFiles(Photos, "*.JPEG").Order(StringComparer.Ordinal).ToList();
        string bad = dir.Write("broken.jpg", [0xFF, 0xD8, 0xFF, 0xDB, 0x00]);
        string[] files = [.. jpegs, bad, .. jpegs];
        int exit = MLNet.MemoryTokens.Tests.Training.TrainerTests.Cli(["predict", "--model", Checkpoint, "--top-k", "3", "--batch", "3", "--json", .. files], out var output);
        Assert.Equal(1, exit);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.StartsWith('{')).ToList();
        Assert.Equal(2 * jpegs.Count, lines.Count);

        var backbone = Backbone.Load(Checkpoint);
        var expected = jpegs.Select(f =>
        {
            var logits = backbone.Model.Forward(backbone.PreprocessImages([ImageDecoder.Load(f)]));
            return Classification.Softmax(logits.Data);
        }).ToList();
        for (int i = 0; i < lines.Count; i++)
        {
            var o = JsonDocument.Parse(lines[i]).RootElement;
            Assert.Equal(files[i < jpegs.Count ? i : i + 1], o.GetProperty("file").GetString());
            var p = expected[i % jpegs.Count];
            var top = o.GetProperty("top").EnumerateArray().ToList();
            Assert.Equal(Classification.TopK(p, 3), top.Select(t => t.GetProperty("index").GetInt32()));
            // the same inputs; only the batch composition of the forward differs (3 images against 1)
            foreach (var t in top) Assert.Equal(p[t.GetProperty("index").GetInt32()], t.GetProperty("probability").GetSingle(), 5e-5f);
        }
    }
}
