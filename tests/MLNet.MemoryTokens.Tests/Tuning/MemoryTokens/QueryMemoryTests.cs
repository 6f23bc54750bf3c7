using MLNet.MemoryTokens.Tuning;
using MLNet.MemoryTokens.Tuning.MemoryTokens;
using Xunit;

namespace MLNet.MemoryTokens.Tests.Tuning.MemoryTokens;

/// <summary>VQT composed with memory tokens: all four trainable parts against PyTorch autograd and directional finite differences.</summary>
public class QueryMemoryTests
{
    static IReadOnlyDictionary<string, Tensor> F => Numerics.Parity("vqt.safetensors");

    static (QueryMemoryVit Model, int[] Labels, Tensor Images) Build()
    {
        var backbone = MLNet.MemoryTokens.Tests.Model.VitParityTests.LoadRandom();
        var model = (QueryMemoryVit)new TuningOptions { Method = TuningMethod.VqtMemory, MemoryTokens = 3, QueryTokens = 2 }.CreateModel(backbone, 4, 0);
        F["memory.memory"].Data.CopyTo(model.Memory.Data, 0);
        F["queries"].Data.CopyTo(model.Queries.Data, 0);
        F["head.weight"].Data.CopyTo(model.HeadWeight.Data, 0);
        F["head.bias"].Data.CopyTo(model.HeadBias.Data, 0);
        return (model, F["labels"].Data.Select(v => (int)v).ToArray(), F["images"]);
    }

    [Fact]
    public void GradientsMatchPyTorchAutogradAndFiniteDifferences()
    {
        var (model, labels, images) = Build();
        double loss = Numerics.Loss(model, images, labels, backward: true);
        Assert.True(Math.Abs(loss - F["memory.loss"].Data[0]) < 1e-5, $"loss {loss} vs PyTorch {F["memory.loss"].Data[0]}");
        Assert.Equal(["memory", "cls_token", "queries", "head.weight", "head.bias"], model.Parameters.Select(p => p.Name));
        foreach (var p in model.Parameters)
        {
            var expected = F[$"memory.grad.{p.Name}"].Data;
            double scale = expected.Max(v => Math.Abs(v));
            Numerics.AssertClose(expected, p.Grad.Data, 1e-4 * scale + 1e-9, 1e-4, $"vqt+memory d{p.Name}");
        }
        foreach (var p in model.Parameters)
            Numerics.AssertDirectionalDerivatives(p.Value.Data, (float[])p.Grad.Data.Clone(), () => Numerics.Loss(model, images, labels, backward: false), $"d{p.Name}");
    }
}
