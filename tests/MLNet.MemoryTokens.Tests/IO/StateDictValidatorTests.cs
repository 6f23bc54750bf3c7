using MLNet.MemoryTokens.IO;
using Xunit;
using static MLNet.MemoryTokens.Tests.IO.CheckpointTestSupport;

namespace MLNet.MemoryTokens.Tests.IO;

public class StateDictValidatorTests
{
    static Dictionary<string, Tensor> Matching() => TinyVitShapes().ToDictionary(p => p.Key, p => new Tensor(p.Value));

    [Fact]
    public void Matching_state_dict_is_clean()
    {
        var report = StateDictValidator.Compare(TinyVitShapes(), Matching());
        Assert.True(report.IsClean);
        StateDictValidator.EnsureStrict("model.safetensors", TinyVitShapes(), Matching());
    }

    [Fact]
    public void Missing_unexpected_and_wrong_shapes_are_all_listed_in_one_message()
    {
        var actual = Matching();
        actual.Remove("blocks.1.norm2.bias");
        actual.Remove("head.weight");
        actual["dist_token"] = new Tensor([1, 1, 8]);
        actual["pos_embed"] = new Tensor([1, 197, 8]);

        var report = StateDictValidator.Compare(TinyVitShapes(), actual);
        var ex = Assert.Throws<CheckpointException>(() => StateDictValidator.EnsureStrict("/models/vit.safetensors", TinyVitShapes(), actual));

        Assert.False(report.IsClean);
        Assert.Equal(["blocks.1.norm2.bias", "head.weight"], report.Missing);
        Assert.Equal(["dist_token"], report.Unexpected);
        Assert.Equal("pos_embed", Assert.Single(report.WrongShape).Key);
        Assert.StartsWith("/models/vit.safetensors: ", ex.Message);
        Assert.Contains("2 missing: blocks.1.norm2.bias [8], head.weight [5, 8]", ex.Message);
        Assert.Contains("1 unexpected: dist_token [1, 1, 8]", ex.Message);
        Assert.Contains("1 wrong shape: pos_embed expected [1, 5, 8] got [1, 197, 8]", ex.Message);
    }
}
