using System.Diagnostics;
using MLNet.MemoryTokens.IO;
using Xunit;
using Xunit.Abstractions;
using static MLNet.MemoryTokens.Tests.IO.CheckpointTestSupport;

namespace MLNet.MemoryTokens.Tests.IO;

public class CheckpointReaderTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("vit_tiny_timm_f32.safetensors")]
    [InlineData("vit_tiny_hf.safetensors")]
    [InlineData("vit_tiny_bigvision.npz")]
    [InlineData("vit_tiny_bigvision_compressed.npz")]
    public void Every_layout_reads_back_exactly_the_timm_weights(string file)
    {
        var timm = SafeTensorsFile.Read(Fixture("vit_tiny_timm_f32.safetensors")).Tensors;

        var state = CheckpointReader.ReadTimmStateDict(Fixture(file));

        AssertSameStateDict(timm, state);
        StateDictValidator.EnsureStrict(file, TinyVitShapes(), state);
    }

    [Fact]
    public void Unrecognised_bytes_are_refused_with_the_file_name()
    {
        using var dir = new TempDir();
        var path = dir.Write("model.bin", [0x80, 0x02, (byte)'}', (byte)'q', 0x00, (byte)'(', (byte)'X', 0x07, 0x00, .. new byte[32]]);  // a raw pickle
        var ex = Assert.Throws<CheckpointException>(() => CheckpointReader.ReadTimmStateDict(path));
        Assert.Contains("model.bin", ex.Message);
        Assert.Contains("neither a safetensors file", ex.Message);
    }

    [Fact]
    public void Mapping_errors_are_attributed_to_the_file()
    {
        using var dir = new TempDir();
        var hf = new Dictionary<string, Tensor>(SafeTensorsFile.Read(Fixture("vit_tiny_hf.safetensors")).Tensors);
        hf.Remove("vit.encoder.layer.0.attention.attention.key.bias");
        var path = dir.File("broken_hf.safetensors");
        SafeTensorsFile.Write(path, hf);

        var ex = Assert.Throws<CheckpointException>(() => CheckpointReader.ReadTimmStateDict(path));

        Assert.Equal(path, ex.FilePath);
        Assert.Contains("broken_hf.safetensors", ex.Message);
        Assert.Contains("no key bias", ex.Message);
    }

    [SharedFact]
    public void Real_vit_tiny_checkpoint_reads_with_timm_shapes()
    {
        var path = Path.Combine(TestPaths.Shared!, "models", "vit_tiny_patch16_224.augreg_in21k_ft_in1k.safetensors");
        CheckpointReader.ReadTimmStateDict(path);  // warm up the JIT and the page cache before timing

        var clock = Stopwatch.StartNew();
        var state = CheckpointReader.ReadTimmStateDict(path);
        clock.Stop();
        output.WriteLine($"read {state.Count} tensors, {state.Values.Sum(t => (long)t.Length) * 4 / 1e6:F1} MB in {clock.Elapsed.TotalMilliseconds:F1} ms");

        Assert.Equal(152, state.Count);
        Assert.Equal([1, 1, 192], state["cls_token"].Shape);
        Assert.Equal([1, 197, 192], state["pos_embed"].Shape);
        Assert.Equal([576, 192], state["blocks.11.attn.qkv.weight"].Shape);
        Assert.Equal([1000, 192], state["head.weight"].Shape);
        StateDictValidator.EnsureStrict(path, VitShapes(dim: 192, depth: 12, patch: 16, tokens: 197, mlp: 768, classes: 1000), state);
        Assert.All(state, p => Assert.True(p.Value.Data.All(float.IsFinite), p.Key));
    }

    [SharedFact]
    public void Real_checkpoint_survives_a_write_read_round_trip()
    {
        var path = Path.Combine(TestPaths.Shared!, "models", "vit_tiny_patch16_224.augreg_in21k_ft_in1k.safetensors");
        var original = SafeTensorsFile.Read(path);
        using var dir = new TempDir();
        var copy = dir.File("copy.safetensors");

        SafeTensorsFile.Write(copy, original.Tensors, original.Metadata);
        var back = SafeTensorsFile.Read(copy);

        AssertSameStateDict(original.Tensors, back.Tensors);
        Assert.Equal(original.Metadata, back.Metadata);
    }
}
