using MLNet.MemoryTokens.IO;
using Xunit;
using static MLNet.MemoryTokens.Tests.IO.CheckpointTestSupport;

namespace MLNet.MemoryTokens.Tests.IO;

public class CheckpointMapperTests
{
    static readonly IReadOnlyDictionary<string, Tensor> Timm = SafeTensorsFile.Read(Fixture("vit_tiny_timm_f32.safetensors")).Tensors;
    static readonly IReadOnlyDictionary<string, Tensor> Hf = SafeTensorsFile.Read(Fixture("vit_tiny_hf.safetensors")).Tensors;
    static readonly Dictionary<string, Tensor> BigVision = NpzFile.Read(Fixture("vit_tiny_bigvision.npz"));

    [Fact]
    public void Detects_each_layout()
    {
        Assert.Equal(CheckpointLayout.Timm, CheckpointMapper.Detect(Timm.Keys.ToArray()));
        Assert.Equal(CheckpointLayout.HuggingFace, CheckpointMapper.Detect(Hf.Keys.ToArray()));
        Assert.Equal(CheckpointLayout.BigVision, CheckpointMapper.Detect(BigVision.Keys));
        var ex = Assert.Throws<CheckpointException>(() => CheckpointMapper.Detect(["model.fc.weight", "model.fc.bias"]));
        Assert.Contains("'model.fc.weight'", ex.Message);
    }

    [Fact]
    public void Timm_passes_through_unchanged()
    {
        var mapped = CheckpointMapper.ToTimm(Timm, out var ignored);
        AssertSameStateDict(Timm, mapped);
        Assert.Empty(ignored);
    }

    [Fact]
    public void Hugging_face_classification_keys_map_to_timm_with_qkv_stacked()
    {
        AssertSameStateDict(Timm, CheckpointMapper.FromHuggingFace(Hf));
    }

    [Fact]
    public void Bare_ViTModel_keys_map_and_the_pooler_is_reported_as_ignored()
    {
        var bare = Hf.Where(p => !p.Key.StartsWith("classifier.")).ToDictionary(p => p.Key["vit.".Length..], p => p.Value);
        bare["pooler.dense.weight"] = new Tensor([8, 8]);
        bare["pooler.dense.bias"] = new Tensor([8]);

        var mapped = CheckpointMapper.ToTimm(bare, out var ignored);

        Assert.Equal(["pooler.dense.weight", "pooler.dense.bias"], ignored);
        AssertSameStateDict(Timm.Where(p => !p.Key.StartsWith("head.")).ToDictionary(), mapped);
    }

    [Fact]
    public void Hugging_face_unknown_keys_pass_through_for_the_strict_check()
    {
        var raw = new Dictionary<string, Tensor>(Hf) { ["vit.embeddings.extra_token"] = new Tensor([1, 1, 8]) };
        var report = StateDictValidator.Compare(TinyVitShapes(), CheckpointMapper.ToTimm(raw));
        Assert.Equal(["vit.embeddings.extra_token"], report.Unexpected);
        Assert.Empty(report.Missing);
    }

    [Fact]
    public void Hugging_face_missing_value_projection_is_named()
    {
        var raw = new Dictionary<string, Tensor>(Hf);
        raw.Remove("vit.encoder.layer.1.attention.attention.value.weight");

        var ex = Assert.Throws<CheckpointException>(() => CheckpointMapper.FromHuggingFace(raw));

        Assert.Contains("'vit.encoder.layer.1.attention.attention.query.weight'", ex.Message);
        Assert.Contains("no value weight", ex.Message);
        Assert.Contains("blocks.1.attn.qkv.weight", ex.Message);
    }

    [Fact]
    public void Hugging_face_mismatched_projection_shapes_are_named()
    {
        var raw = new Dictionary<string, Tensor>(Hf) { ["vit.encoder.layer.0.attention.attention.key.weight"] = new Tensor([8, 4]) };
        var ex = Assert.Throws<CheckpointException>(() => CheckpointMapper.FromHuggingFace(raw));
        Assert.Contains("'vit.encoder.layer.0.attention.attention.key.weight' [8, 4]", ex.Message);
    }

    [Fact]
    public void Big_vision_maps_to_timm_with_kernels_transposed_and_heads_merged()
    {
        AssertSameStateDict(Timm, CheckpointMapper.FromBigVision(BigVision));
    }

    [Fact]
    public void Big_vision_prefix_is_detected_and_optimizer_state_ignored()
    {
        var raw = BigVision.ToDictionary(p => "params/" + p.Key, p => p.Value);
        raw["opt/state/momentum/cls"] = new Tensor([1, 1, 8]);

        var mapped = CheckpointMapper.ToTimm(raw, out var ignored);

        Assert.Equal(["opt/state/momentum/cls"], ignored);
        AssertSameStateDict(Timm, mapped);
    }

    [Fact]
    public void Big_vision_pre_logits_is_refused_clearly()
    {
        var raw = new Dictionary<string, Tensor>(BigVision) { ["pre_logits/kernel"] = new Tensor([8, 8]) };
        var ex = Assert.Throws<CheckpointException>(() => CheckpointMapper.ToTimm(raw));
        Assert.Equal("pre_logits/kernel", ex.Key);
        Assert.Contains("pre_logits", ex.Message);
        Assert.Contains("not supported", ex.Message);
    }

    [Fact]
    public void Big_vision_wrong_rank_kernel_is_named()
    {
        var raw = new Dictionary<string, Tensor>(BigVision) { ["embedding/kernel"] = new Tensor([48, 8]) };
        var ex = Assert.Throws<CheckpointException>(() => CheckpointMapper.FromBigVision(raw));
        Assert.Contains("'embedding/kernel' has shape [48, 8]", ex.Message);
    }

    [Fact]
    public void Permute_follows_numpy_transpose()
    {
        var t = new Tensor([2, 3, 4], Enumerable.Range(0, 24).Select(i => (float)i).ToArray());
        var p = MLNet.MemoryTokens.IO.TensorLayout.Permute(t, 2, 0, 1);  // out[k, i, j] = in[i, j, k]
        Assert.Equal([4, 2, 3], p.Shape);
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++)
                for (int k = 0; k < 4; k++)
                    Assert.Equal(t.Data[(i * 3 + j) * 4 + k], p.Data[(k * 2 + i) * 3 + j]);
    }
}
