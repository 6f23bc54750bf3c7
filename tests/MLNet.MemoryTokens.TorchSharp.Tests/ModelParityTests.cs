using MLNet.MemoryTokens.TorchSharp.Model;
using Xunit;
using static TorchSharp.torch;
using MLNet.MemoryTokens.TorchSharp.Native;

namespace MLNet.MemoryTokens.TorchSharp.Tests;

/// <summary>The TorchSharp ViT against the engine's: same weights by timm name, same logits.</summary>
public class ModelParityTests
{
    [Fact]
    public void RandomVitLogitsEqualTheEngines()
    {
        var backbone = TinyModels.Backbone();
        var images = TinyModels.Images(3, 1);
        var expected = backbone.Model.Forward(images);
        using var vit = TorchVit.FromEngine(backbone.Model, CPU);
        using var x = TorchTensors.ToTorch(images);
        using var _ = no_grad();
        using var logits = vit.Forward(x);
        TinyModels.AssertClose(expected.Data, TorchTensors.ToEngine(logits).Data, 1e-5, 1e-5, "random ViT logits");
    }

    [Fact]
    public void StrictLoadNamesWhatIsWrong()
    {
        var backbone = TinyModels.Backbone();
        var sd = backbone.Model.Parameters.ToDictionary(kv => kv.Key, kv => kv.Value);
        sd.Remove("blocks.1.mlp.fc2.bias");
        sd["extra.weight"] = new MLNet.MemoryTokens.Tensor([2]);
        var e = Assert.Throws<ArgumentException>(() => new TorchVit(backbone.Model.Config, sd, CPU));
        Assert.Contains("missing 'blocks.1.mlp.fc2.bias'", e.Message);
        Assert.Contains("unexpected 'extra.weight'", e.Message);
    }
}
