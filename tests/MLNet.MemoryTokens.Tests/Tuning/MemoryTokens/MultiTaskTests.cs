using MLNet.MemoryTokens.Imaging;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Tuning;
using MLNet.MemoryTokens.Tuning.MemoryTokens;
using Xunit;

namespace MLNet.MemoryTokens.Tests.Tuning.MemoryTokens;

/// <summary>The attention-masked multi-task pass: the original head is untouched bit for bit, and each task equals its adapter alone.</summary>
public class MultiTaskTests
{
    static Backbone RandomBackbone()
    {
        var model = MLNet.MemoryTokens.Tests.Model.VitParityTests.LoadRandom();
        return new Backbone(model, new PreprocessConfig { InputSize = 16 }, "vit_random", Backbone.ComputeFingerprint(model.Parameters));
    }

    static Adapter MaskedAdapter(Backbone backbone, int seed, int classes, int tokens, IReadOnlyList<Adapter>? extends = null)
    {
        var tuning = new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = tokens, Masked = true, Extends = extends ?? [] };
        var model = tuning.CreateModel(backbone.Model, classes, seed);
        var rng = new Random(seed);
        // trained-looking values: memory and class token far from their init, so the test sees them matter
        foreach (var p in model.Parameters)
            for (int i = 0; i < p.Value.Length; i++) p.Value.Data[i] += (float)(rng.NextDouble() - 0.5);
        return Adapter.From(model, backbone, tuning, Enumerable.Range(0, classes).Select(i => $"c{i}").ToArray(), backbone.Preprocess);
    }

    /// <summary>Tasks trained one on top of the other (model extension): task i extends tasks 0..i−1.</summary>
    static List<(string, Adapter)> ExtensionChain(Backbone backbone, int count, int seed)
    {
        var chain = new List<(string, Adapter)>();
        for (int i = 0; i < count; i++) chain.Add(($"t{i}", MaskedAdapter(backbone, seed + i, 2 + i, 1 + i, chain.Select(c => c.Item2).ToArray())));
        return chain;
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
            var tasks = mode == MultiTaskMode.Extension ? ExtensionChain(backbone, count, 10)
                : Enumerable.Range(0, count).Select(i => ($"t{i}", MaskedAdapter(backbone, 10 + i, 2 + i, 1 + i))).ToList();
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
    public void EachTaskOfAnExtensionChainEqualsItsAdapterOnTopOfTheEarlierOnes()
    {
        var backbone = RandomBackbone();
        var x = Images(2, 3);
        var chain = ExtensionChain(backbone, 3, 30);
        var (_, outputs) = new MultiTaskVit(backbone, chain, MultiTaskMode.Extension).Forward(x);
        for (int t = 0; t < chain.Count; t++)
        {
            var alone = chain[t].Item2.CreateModel(backbone, chain[t].Item1, chain.Take(t).Select(c => c.Item2).ToArray()).Forward(x, keepForBackward: false);
            Assert.Equal(alone.Data, outputs[t].Data);
        }
        // the later tasks really read the earlier ones: the same tensors without them give other logits
        var asAlone = new Adapter(chain[2].Item2.Config with { Extends = [] }, chain[2].Item2.Tensors);
        Assert.NotEqual(asAlone.CreateModel(backbone).Forward(x, false).Data, outputs[2].Data);
    }

    [Fact]
    public void ExtensionsRunOnlyOnTopOfTheTasksTheyWereTrainedOn()
    {
        var backbone = RandomBackbone();
        var chain = ExtensionChain(backbone, 2, 40);
        var other = ("other", MaskedAdapter(backbone, 99, 2, 1));
        var ex = Assert.Throws<ArgumentException>(() => new MultiTaskVit(backbone, [chain[1]], MultiTaskMode.Concatenation));
        Assert.Contains("extension mode", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => new MultiTaskVit(backbone, [other, chain[1]], MultiTaskMode.Extension));
        Assert.Contains("trained (--extends) on tasks 1..t−1", ex.Message);
        Assert.Throws<InvalidOperationException>(() => chain[1].Item2.CreateModel(backbone, "t1", [other.Item2]));   // wrong fingerprint
        var missing = Assert.Throws<FileNotFoundException>(() => chain[1].Item2.CreateModel(backbone, "t1"));          // built in memory: nothing to load
        Assert.Contains("give the adapters it extends", missing.Message);
    }

    [Fact]
    public void AnExtensionsGradientsMatchFiniteDifferences()
    {
        var backbone = RandomBackbone();
        var chain = ExtensionChain(backbone, 2, 50);
        var tuning = new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = 2, Masked = true, Extends = chain.Select(c => c.Item2).ToArray() };
        var model = (MemoryTokenVit)tuning.CreateModel(backbone.Model, 3, seed: 5);
        var x = Images(2, 4);
        int[] labels = [0, 2];
        double Loss(bool backward) => Numerics.Loss(model, x, labels, backward, labelSmoothing: 0f);
        Loss(backward: true);
        Assert.Equal(["memory", "cls_token", "head.weight", "head.bias"], model.Parameters.Select(p => p.Name));   // the earlier tasks stay frozen
        foreach (var p in model.Parameters)
            Numerics.AssertDirectionalDerivatives(p.Value.Data, (float[])p.Grad.Data.Clone(), () => Loss(backward: false), $"d{p.Name}", h: 1e-3f);   // the perturbed earlier tasks make this loss curved: a shorter step
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
