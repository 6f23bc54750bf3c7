using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Tuning;
using Xunit;

namespace MLNet.MemoryTokens.Tests.Tuning;

/// <summary>The attention-masked multi-task pass: the original head is untouched bit for bit, and each task equals its adapter alone.</summary>
public class MultiTaskTests
{
    static Backbone RandomBackbone()
    {
        var model = MLNet.MemoryTokens.Tests.Model.VitParityTests.LoadRandom();
        return new Backbone(model, new PreprocessConfig { InputSize = 16 }, "vit_random", Backbone.ComputeFingerprint(model.Parameters));
    }

    static Adapter MaskedAdapter(Backbone backbone, int seed, int classes, int tokens)
    {
        var tuning = new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = tokens, Masked = true };
        var model = tuning.CreateModel(backbone.Model, classes, seed);
        var rng = new Random(seed);
        // trained-looking values: memory and class token far from their init, so the test sees them matter
        foreach (var p in model.Parameters)
            for (int i = 0; i < p.Value.Length; i++) p.Value.Data[i] += (float)(rng.NextDouble() - 0.5);
        return Adapter.From(model, backbone, tuning, Enumerable.Range(0, classes).Select(i => $"c{i}").ToArray(), backbone.Preprocess);
    }

    static Tensor Images(int batch, int seed) => new([batch, 3, 16, 16], Numerics.Random(batch * 3 * 16 * 16, seed, 2f));

    [Theory]
    [InlineData(MultiTaskMode.Concatenation)]
    [InlineData(MultiTaskMode.Extension)]
    public void OriginalLogitsAreBitwiseIdenticalWithZeroOneAndFiveTasks(MultiTaskMode mode)
    {
        var backbone = RandomBackbone();
        var x = Images(3, 1);
        var plain = backbone.Model.Forward(x).Data;
        foreach (int count in new[] { 0, 1, 5 })
        {
            var tasks = Enumerable.Range(0, count).Select(i => ($"t{i}", MaskedAdapter(backbone, 10 + i, 2 + i, 1 + i))).ToList();
            var (original, outputs) = new MultiTaskVit(backbone, tasks, mode).Forward(x);
            Assert.Equal(plain, original!.Data);
            Assert.Equal(count, outputs.Length);
        }
    }

    [Fact]
    public void EachTaskEqualsItsAdapterRunAloneInConcatenationMode()
    {
        var backbone = RandomBackbone();
        var x = Images(2, 2);
        var adapters = Enumerable.Range(0, 4).Select(i => ($"t{i}", MaskedAdapter(backbone, 20 + i, 3 + i, 2 + i))).ToList();
        var (_, outputs) = new MultiTaskVit(backbone, adapters, MultiTaskMode.Concatenation).Forward(x);
        for (int t = 0; t < adapters.Count; t++)
        {
            var alone = adapters[t].Item2.CreateModel(backbone, adapters[t].Item1).Forward(x, keepForBackward: false);
            Assert.Equal(alone.Data, outputs[t].Data);
        }
    }

    [Fact]
    public void ExtensionModeLetsLaterTasksReadEarlierOnes()
    {
        var backbone = RandomBackbone();
        var x = Images(2, 3);
        var a = ("a", MaskedAdapter(backbone, 30, 3, 2));
        var b = ("b", MaskedAdapter(backbone, 31, 3, 2));
        var (_, concat) = new MultiTaskVit(backbone, [a, b], MultiTaskMode.Concatenation).Forward(x);
        var (_, extend) = new MultiTaskVit(backbone, [a, b], MultiTaskMode.Extension).Forward(x);
        Assert.Equal(concat[0].Data, extend[0].Data);        // the first task has nothing earlier to read
        Assert.NotEqual(concat[1].Data, extend[1].Data);     // the second reads the first task's tokens
    }

    [Fact]
    public void RefusesUnmaskedAdaptersAndForeignBackbones()
    {
        var backbone = RandomBackbone();
        var tuning = new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = 2 };
        var unmasked = Adapter.From(tuning.CreateModel(backbone.Model, 2, 0), backbone, tuning, ["a", "b"], backbone.Preprocess);
        var ex = Assert.Throws<ArgumentException>(() => new MultiTaskVit(backbone, [("plain", unmasked)]));
        Assert.Contains("train with --masked", ex.Message);
        var other = new Backbone(backbone.Model, backbone.Preprocess, "other", new string('0', 64));
        var masked = MaskedAdapter(backbone, 1, 2, 1);
        var ex2 = Assert.Throws<InvalidOperationException>(() => new MultiTaskVit(other, [("t", masked)]));
        Assert.Contains("fingerprint", ex2.Message);
    }
}
