using MLNet.MemoryTokens.IO;
using MLNet.MemoryTokens.Model;
using Xunit;

namespace MLNet.MemoryTokens.Tests.Model;

/// <summary>Loading the families stays strict: what does not fit is named, with shapes; a layout's head that reads something
/// other than the class token is refused with the reason.</summary>
public class FamilyLoadingTests
{
    static Dictionary<string, Tensor> Timm(string family) => CheckpointReader.ReadTimmStateDict(FamilyParityTests.WeightsPath(family));

    [Fact]
    public void AMissingLayerScaleOrAStrayDistillationHeadIsNamed()
    {
        var sd = Timm("dinov2");
        sd.Remove("blocks.1.ls2.gamma");
        sd["head_dist.weight"] = new Tensor([5, 8]);
        var config = VitConfig.FromStateDict(sd, heads: 2);
        var ex = Assert.Throws<ArgumentException>(() => new VisionTransformer(config, sd));
        Assert.Contains("missing 'blocks.1.ls2.gamma' [8]", ex.Message);
        Assert.Contains("unexpected 'head_dist.weight'", ex.Message);
    }

    [Fact]
    public void APositionEmbeddingThatFitsNoGridIsRefused()
    {
        var sd = Timm("dinov2_reg");
        sd["pos_embed"] = new Tensor([1, 7, 8]);
        var ex = Assert.Throws<ArgumentException>(() => VitConfig.FromStateDict(sd));
        Assert.Contains("pos_embed has 7 rows", ex.Message);
    }

    [Fact]
    public void HuggingFaceDinov2ClassifierOverTwoFeaturesIsRefusedWithTheReason()
    {
        var hf = SafeTensorsFile.Read(FamilyParityTests.WeightsPath("dinov2", ".hf")).Tensors.ToDictionary(kv => "dinov2." + kv.Key, kv => kv.Value);
        hf["classifier.weight"] = new Tensor([3, 16]);
        hf["classifier.bias"] = new Tensor([3]);
        var ex = Assert.Throws<CheckpointException>(() => CheckpointMapper.ToTimm(hf));
        Assert.Contains("'classifier.weight' has shape [3, 16]", ex.Message);
        Assert.Contains("patch mean", ex.Message);
    }

    [Fact]
    public void KnownIdsCarryWhatTheWeightsCannotTell()
    {
        var clip = PretrainedModels.Find("vit_base_patch16_clip_quickgelu_224.openai")!;
        Assert.Equal(VitActivation.QuickGelu, clip.Architecture.Activation);
        Assert.Equal("timm/vit_base_patch16_clip_224.openai", clip.HubRepo);   // the same weights as timm's GELU name
        Assert.Equal(VitActivation.Gelu, PretrainedModels.Find("vit_base_patch16_clip_224.openai")!.Architecture.Activation);
        var reg = PretrainedModels.Find("timm/vit_small_patch14_reg4_dinov2")!.Architecture;
        Assert.Equal((4, true, true, 518, 14), (reg.RegisterTokens, reg.NoEmbedClass, reg.LayerScale, reg.ImageSize, reg.PatchSize));
        Assert.Equal(1e-12f, PretrainedModels.Find("google/vit-base-patch16-224")!.Architecture.LayerNormEps);
        // every registered architecture is a valid ViT, and ViT-Ti to ViT-L are there
        foreach (var p in PretrainedModels.All) p.Architecture.Validate();
        Assert.Equal([192, 384, 768, 1024], PretrainedModels.All.Where(p => p.Id.Contains("augreg")).Select(p => p.Architecture.Dim).Distinct().Order());
    }
}
