using System.Text.Json;
using MLNet.MemoryTokens.IO;
using MLNet.MemoryTokens.Model;
using Xunit;

namespace MLNet.MemoryTokens.Tests.Model;

/// <summary>The whole ViT forward against the PyTorch reference on a small random model (reference/vit_reference.py).</summary>
public class VitParityTests
{
    internal static VisionTransformer LoadRandom(int? imageSize = null)
    {
        var sd = SafeTensorsFile.Read(TestPaths.Fixture("parity", "vit_random.safetensors")).Tensors;
        var config = VitConfig.FromStateDict(sd, heads: 2);
        var weights = sd.ToDictionary(kv => kv.Key, kv => kv.Value);
        if (imageSize is int size && size != config.ImageSize)
        {
            int g = size / config.PatchSize;
            weights["pos_embed"] = PosEmbedResampler.Resample(weights["pos_embed"], 1, (config.GridSize, config.GridSize), (g, g));
            config = config with { ImageSize = size };
        }
        return new VisionTransformer(config, weights);
    }

    [Fact]
    public void FeaturesAndLogitsMatchPyTorch()
    {
        var model = LoadRandom();
        var io = Numerics.Parity("vit_random_io.safetensors");
        var features = model.ForwardFeatures(io["images"]);
        Assert.Equal(io["features"].Shape, features.Shape);
        Numerics.AssertClose(io["features"].Data, features.Data, 1e-4, 0, "features");
        var logits = model.ForwardHead(features);
        Numerics.AssertClose(io["logits"].Data, logits.Data, 1e-4, 0, "logits");
        // Forward takes only the class token through the last block's projection and MLP: the same logits up to rounding
        Numerics.AssertClose(io["logits"].Data, model.Forward(io["images"]).Data, 1e-4, 0, "logits (class token only past the last attention)");
        Numerics.AssertClose(logits.Data, model.Forward(io["images"]).Data, 1e-5, 1e-5, "Forward vs ForwardHead(ForwardFeatures)");
    }

    [Fact]
    public void ResampledPositionEmbeddingMatchesTimmAndRunsAtSmallerInput()
    {
        var model = LoadRandom(8);
        var io = Numerics.Parity("vit_random_io8.safetensors");
        Numerics.AssertClose(io["pos_embed"].Data, model.Parameters["pos_embed"].Data, 1e-6, 1e-5, "pos_embed 4x4→2x2");
        Numerics.AssertClose(io["logits"].Data, model.Forward(io["images"]).Data, 1e-4, 0, "logits at 8x8");
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(6)]
    public void PosEmbedResamplerMatchesTorchInterpolateAntialias(int grid)
    {
        var t = Numerics.Parity("kernels.safetensors");
        var actual = PosEmbedResampler.Resample(t["pos.src"], 1, (4, 4), (grid, grid));
        Numerics.AssertClose(t[$"pos.to{grid}"].Data, actual.Data, 1e-6, 1e-5, $"pos 4→{grid}");
    }

    [Fact]
    public void StrictConstructionListsEveryProblem()
    {
        var sd = SafeTensorsFile.Read(TestPaths.Fixture("parity", "vit_random.safetensors")).Tensors.ToDictionary(kv => kv.Key, kv => kv.Value);
        var config = VitConfig.FromStateDict(sd, heads: 2);
        sd.Remove("blocks.1.mlp.fc2.bias");
        sd["blocks.0.attn.qkv.weight"] = new Tensor([5, 5]);
        sd["extra.thing"] = new Tensor([1]);
        var ex = Assert.Throws<ArgumentException>(() => new VisionTransformer(config, sd));
        Assert.Contains("missing 'blocks.1.mlp.fc2.bias'", ex.Message);
        Assert.Contains("'blocks.0.attn.qkv.weight' has shape [5, 5], expected [96, 32]", ex.Message);
        Assert.Contains("unexpected 'extra.thing'", ex.Message);
    }

    [Fact]
    public void RejectsImagesOfTheWrongSize()
    {
        var model = LoadRandom();
        var ex = Assert.Throws<ArgumentException>(() => model.Forward(new Tensor([1, 3, 8, 8])));
        Assert.Contains("[B, 3, 16, 16]", ex.Message);
    }
}
