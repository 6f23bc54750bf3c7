using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Tests;
using MLNet.MemoryTokens.TorchSharp.Model;
using MLNet.MemoryTokens.TorchSharp.Tuning;
using MLNet.MemoryTokens.Training;
using MLNet.MemoryTokens.Tuning;
using Xunit;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;
using MLNet.MemoryTokens.TorchSharp.Native;

namespace MLNet.MemoryTokens.TorchSharp.Tests;

/// <summary>The real ViT-Ti/16 (../shared): the TorchSharp backbone's ImageNet logits and every method's logits and gradients
/// against the engine's, at 112×112 (position embedding resampled, as the main job runs).</summary>
public class RealCheckpointParityTests
{
    static readonly Lazy<Backbone> Full = new(() => Backbone.Load(Checkpoint));
    static readonly Lazy<Backbone> At112 = new(() => Backbone.Load(Checkpoint, new BackboneOptions { ImageSize = 112, DropHead = true }));
    static string Checkpoint => Path.Combine(TestPaths.Shared!, "models", "vit_tiny_patch16_224.augreg_in21k_ft_in1k.safetensors");

    [SharedFact]
    public void BackboneLogitsEqualTheEngines()
    {
        var backbone = Full.Value;
        var images = TinyModels.Images(2, 1, size: 224);
        var expected = backbone.Model.Forward(images);
        using var vit = TorchVit.FromEngine(backbone.Model, CPU);
        using var _ = no_grad();
        using var x = TorchTensors.ToTorch(images);
        using var logits = vit.Forward(x);
        TinyModels.AssertClose(expected.Data, TorchTensors.ToEngine(logits).Data, 1e-4, 1e-5, "real ViT-Ti/16 logits (224)");
    }

    [SharedTheory]
    [InlineData("memory")]
    [InlineData("memory-masked")]
    [InlineData("head-class")]
    [InlineData("vqt")]
    [InlineData("vqt-memory")]
    [InlineData("full")]
    public void MethodLogitsAndGradientsEqualTheEngines(string method)
    {
        var backbone = At112.Value;
        var tuning = MethodParityTests.Tuning(method, backbone) with { MemoryTokens = 5 };
        if (method == "full") tuning = new TuningOptions { Method = TuningMethod.Full };
        var images = TinyModels.Images(2, 4, size: 112);
        int[] labels = [3, 7];
        var engine = tuning.CreateModel(backbone.Model, 10, 0);
        var logitsE = engine.Forward(images, keepForBackward: true);
        var dLogits = new MLNet.MemoryTokens.Tensor(logitsE.Shape);
        CrossEntropy.Compute(logitsE.Data, labels, 10, 0.1f, dLogits.Data);
        engine.ZeroGrad();
        engine.Backward(dLogits);
        using var wrapped = TinyModels.Torch(backbone, tuning, 10, 0);
        var model = wrapped.Model;
        using var scope = NewDisposeScope();
        var logits = model.Forward(TorchTensors.ToTorch(images), training: true);
        F.cross_entropy(logits, tensor(labels.Select(l => (long)l).ToArray()), label_smoothing: 0.1).backward();
        TinyModels.AssertClose(logitsE.Data, TorchTensors.ToEngine(logits).Data, 1e-4, 1e-4, $"real ViT-Ti {method} logits (112)");
        var grads = model.Trainable.ToDictionary(t => t.Name, t => TorchTensors.ToEngine(t.Value.grad!));
        foreach (var p in engine.Parameters)
            TinyModels.AssertClose(p.Grad.Data, grads[p.Name].Data, 1e-6, 1e-3, $"real ViT-Ti {method} gradient {p.Name}");
    }
}
