using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Training;
using MLNet.MemoryTokens.Tuning;
using MLNet.MemoryTokens.Tuning.Baselines;
using MLNet.MemoryTokens.Tuning.MemoryTokens;
using Xunit;

namespace MLNet.MemoryTokens.Tests.Tuning.MemoryTokens;

/// <summary>Memory-token, class-token, head and full fine-tuning gradients against PyTorch autograd
/// (reference/make_parity_fixtures.py: memory_tokens) and against finite differences.</summary>
public class MemoryTokenGradientTests
{
    static IReadOnlyDictionary<string, Tensor> F => Numerics.Parity("memory_tokens.safetensors");

    /// <summary>Plain or masked memory tokens (m = 3, class token trained), or full fine-tuning (the baseline the fixture also holds).</summary>
    static (ITunedModel Model, int[] Labels, Tensor Images) Build(string variant)
    {
        var backbone = MLNet.MemoryTokens.Tests.Model.VitParityTests.LoadRandom();
        ITunedModel model;
        Tensor headWeight, headBias;
        if (variant == "full")
        {
            var full = new BaselineVit(backbone, 4, new BaselineOptions { TrainBackbone = true }, seed: 0);
            (model, headWeight, headBias) = (full, full.HeadWeight, full.HeadBias);
        }
        else
        {
            var memory = new MemoryTokenVit(backbone, 4, new MemoryTokenOptions(3, Masked: variant == "masked"), seed: 0);
            F["memory"].Data.CopyTo(memory.Memory.Data, 0);
            (model, headWeight, headBias) = (memory, memory.HeadWeight, memory.HeadBias);
        }
        F["head.weight"].Data.CopyTo(headWeight.Data, 0);
        F["head.bias"].Data.CopyTo(headBias.Data, 0);
        return (model, F["labels"].Data.Select(v => (int)v).ToArray(), F["images"]);
    }

    [Theory]
    [InlineData("plain")]
    [InlineData("masked")]
    [InlineData("full")]
    public void GradientsMatchPyTorchAutograd(string variant)
    {
        var (model, labels, images) = Build(variant);
        var logits = model.Forward(images, keepForBackward: false);
        Numerics.AssertClose(F[$"{variant}.logits"].Data, logits.Data, 1e-4, 0, $"{variant} logits");
        double loss = Numerics.Loss(model, images, labels, backward: true);
        Assert.True(Math.Abs(loss - F[$"{variant}.loss"].Data[0]) < 1e-5, $"{variant} loss {loss} vs PyTorch {F[$"{variant}.loss"].Data[0]}");
        int compared = 0;
        foreach (var p in model.Parameters)
        {
            var expected = F[$"{variant}.grad.{p.Name}"].Data;
            double scale = expected.Max(v => Math.Abs(v));
            Numerics.AssertClose(expected, p.Grad.Data, 1e-4 * scale + 1e-9, 1e-4, $"{variant} d{p.Name}");
            compared++;
        }
        Assert.Equal(variant == "full" ? 2 + 4 + 12 * 2 + 2 : 4, compared);
    }

    [Theory]
    [InlineData("plain")]
    [InlineData("masked")]
    [InlineData("full")]
    public void GradientsMatchFiniteDifferences(string variant)
    {
        var (model, labels, images) = Build(variant);
        Numerics.Loss(model, images, labels, backward: true);
        foreach (var p in model.Parameters)
            Numerics.AssertDirectionalDerivatives(p.Value.Data, (float[])p.Grad.Data.Clone(), () => Numerics.Loss(model, images, labels, backward: false), $"d{p.Name}");
    }
}
