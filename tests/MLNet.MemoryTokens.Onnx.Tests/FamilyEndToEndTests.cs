using System.Text.Json;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Tests;
using MLNet.MemoryTokens.Tuning;
using Xunit;
using static MLNet.MemoryTokens.Onnx.Tests.OnnxFixtures;

namespace MLNet.MemoryTokens.Onnx.Tests;

/// <summary>Memory tokens on the shipped Fashion-MNIST sample with backbones in the DINOv2 and CLIP layouts — Hugging Face model
/// folders (model.safetensors + config.json) holding the tiny random weights of reference/make_family_fixtures.py — through
/// <c>mmt train</c> → <c>mmt evaluate</c> → <c>mmt export-onnx</c> → ONNX Runtime: the same predictions, and ONNX Runtime's
/// accuracy is the one evaluate reports.</summary>
public class FamilyEndToEndTests
{
    static string Fixture(string file) => Path.Combine(TestPaths.RepoRoot, "tests", "fixtures", "parity", "families", file);

    /// <summary>A Hugging Face model folder as <c>snapshot_download</c> leaves it: the weights and the config the weights cannot tell.</summary>
    static string ModelFolder(TempFolder dir, string name, string weights, string config)
    {
        var folder = Directory.CreateDirectory(dir.PathOf(name)).FullName;
        File.Copy(Fixture(weights), Path.Combine(folder, "model.safetensors"));
        File.WriteAllText(Path.Combine(folder, "config.json"), config);
        return Path.Combine(folder, "model.safetensors");
    }

    public static TheoryData<string, string, string, string?, VitActivation> Backbones => new()
    {
        // Dinov2Model (LayerScale, patch 14), at its own 28 px
        { "dinov2", "dinov2.hf.safetensors", """{"model_type": "dinov2", "num_attention_heads": 2, "hidden_act": "gelu", "layer_norm_eps": 1e-6}""", null, VitActivation.Gelu },
        // Dinov2WithRegistersModel (registers without position), at its own 28 px
        { "dinov2-registers", "dinov2_reg.hf.safetensors", """{"model_type": "dinov2_with_registers", "num_attention_heads": 2, "hidden_act": "gelu", "layer_norm_eps": 1e-6}""", null, VitActivation.Gelu },
        // CLIPVisionModelWithProjection (norm_pre, QuickGELU, patch 8) in a CLIPModel folder, at 32 px: position embedding resampled
        { "clip", "clip.hf.safetensors", """{"model_type": "clip", "vision_config": {"num_attention_heads": 2, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5}}""", "32", VitActivation.QuickGelu },
    };

    [Theory]
    [MemberData(nameof(Backbones))]
    public void MemoryTokensTrainEvaluateExportAndRunInOnnxRuntimeWithEqualPredictions(string name, string weights, string config, string? imageSize, VitActivation activation)
    {
        using var dir = new TempFolder();
        string ckpt = ModelFolder(dir, name, weights, config);
        string data = Path.Combine(TestPaths.RepoRoot, "samples", "data", "fashion-mnist-2k");
        string adapter = dir.PathOf("fashion");
        string[] size = imageSize is null ? [] : ["--image-size", imageSize];
        Assert.Equal(0, ExportOnnxCommandTests.Cli(["train", "--model", ckpt, "--data", data, "--limit", "300", "--method", "memory", "--tokens", "2",
            "--epochs", "2", "--lr", "3e-3", "--validation-fraction", "0", "--out", adapter, .. size], out _, out var err));
        Assert.True(err.Length == 0 || !err.Contains("error"), err);
        Assert.Equal(0, ExportOnnxCommandTests.Cli(["evaluate", "--model", ckpt, "--adapter", adapter, "--data", data + ":test", "--limit", "200", "--json"], out var evaluation, out _));
        Assert.Equal(0, ExportOnnxCommandTests.Cli(["export-onnx", "--model", ckpt, "--adapter", adapter, "--out", dir.PathOf("fashion.onnx")], out _, out _));

        // the backbone as the commands loaded it: the family from the weights, heads and activation from config.json
        var a = Adapter.Load(adapter);
        var backbone = Backbone.Load(ckpt, new BackboneOptions { ImageSize = a.Config.ImageSize, DropHead = true });
        Assert.Equal(activation, backbone.Model.Config.Activation);
        Assert.Equal(2, backbone.Model.Config.Heads);
        // the test images as evaluate prepares them, through ours and through ONNX Runtime
        var test = MLNet.MemoryTokens.Data.PreparedImages.From(MLNet.MemoryTokens.Data.ImageDatasets.Take(MLNet.MemoryTokens.Data.ImageDatasets.Open(data + ":test"), 200),
            a.Config.Preprocess with { InputSize = a.Config.ImageSize });
        var x = test.Batch(Enumerable.Range(0, test.Count).ToArray());
        var ours = a.CreateModel(backbone).Forward(x, keepForBackward: false).Data;
        using var s = Session(dir.PathOf("fashion.onnx"));
        var onnx = Run(s, x)["fashion"];
        AssertClose(ours, onnx, 1e-4, $"{name}: memory tokens on Fashion-MNIST");
        int classes = a.Config.ClassLabels.Length, correct = 0;
        for (int i = 0; i < test.Count; i++)
        {
            int predicted = Classification.TopK(onnx.AsSpan(i * classes, classes), 1)[0];
            Assert.Equal(Classification.TopK(ours.AsSpan(i * classes, classes), 1)[0], predicted);
            if (a.Config.ClassLabels[predicted] == test.ClassNames[test.Labels[i]]) correct++;
        }
        using var json = JsonDocument.Parse(evaluation);
        Assert.Equal(json.RootElement.GetProperty("accuracy").GetDouble(), (double)correct / test.Count, 1e-9);
    }
}
