using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.TorchSharp.Training;
using MLNet.MemoryTokens.TorchSharp.Tuning;
using MLNet.MemoryTokens.Training;
using MLNet.MemoryTokens.Tuning;
using Xunit;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;
using MLNet.MemoryTokens.TorchSharp.Native;

namespace MLNet.MemoryTokens.TorchSharp.Tests;

/// <summary>Every method on TorchSharp against the managed engine, from the same seed: the starting tensors, the logits, every
/// trainable gradient, and the tensors after one clipped AdamW (and SGD) step of the device optimizer the trainer uses.</summary>
public class MethodParityTests
{
    public static TheoryData<string> Methods => new() { "head", "head-class", "memory", "memory-masked", "memory-extension", "full", "vqt", "vqt-memory", "vqt-memory-skip" };

    internal static TuningOptions Tuning(string method, Backbone backbone) => method switch
    {
        "head" => new TuningOptions { Method = TuningMethod.HeadOnly },
        "head-class" => new TuningOptions { Method = TuningMethod.HeadAndClassToken },
        "memory" => new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = 3 },
        "memory-masked" => new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = 3, Masked = true },
        "memory-extension" => new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = 2, Masked = true, Extends = [EarlierTask(backbone)] },
        "full" => new TuningOptions { Method = TuningMethod.Full },
        "vqt" => new TuningOptions { Method = TuningMethod.Vqt, QueryTokens = 2, QueryDropout = 0 },   // dropout masks come from different generators
        "vqt-memory" => new TuningOptions { Method = TuningMethod.VqtMemory, MemoryTokens = 2, QueryTokens = 2 },   // the queries read the memory (the default)
        "vqt-memory-skip" => new TuningOptions { Method = TuningMethod.VqtMemory, MemoryTokens = 2, QueryTokens = 2, QueriesReadMemory = false },   // the originals only
        _ => throw new ArgumentException(method),
    };

    /// <summary>A masked task (m = 3, 4 classes) with random values, as an adapter another task extends.</summary>
    internal static Adapter EarlierTask(Backbone backbone)
    {
        var tuning = new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = 3, Masked = true };
        var model = tuning.CreateModel(backbone.Model, 4, seed: 11);
        var rng = new Random(5);
        foreach (var p in model.Parameters) for (int i = 0; i < p.Value.Length; i++) p.Value.Data[i] += (float)(rng.NextDouble() - 0.5) * 0.2f;
        return Adapter.From(model, backbone, tuning, ["a", "b", "c", "d"], backbone.Preprocess);
    }

    /// <summary>Engine: gradients of the label-smoothed loss on a batch (cleared first).</summary>
    static double EngineLoss(ITunedModel model, MLNet.MemoryTokens.Tensor images, int[] labels, out MLNet.MemoryTokens.Tensor logits)
    {
        logits = model.Forward(images, keepForBackward: true);
        var dLogits = new MLNet.MemoryTokens.Tensor(logits.Shape);
        double loss = CrossEntropy.Compute(logits.Data, labels, model.NumClasses, 0.1f, dLogits.Data);
        model.ZeroGrad();
        model.Backward(dLogits);
        return loss;
    }

    static double TorchLoss(TorchTunedModel model, MLNet.MemoryTokens.Tensor images, int[] labels, out MLNet.MemoryTokens.Tensor logits)
    {
        using var scope = NewDisposeScope();
        foreach (var (_, p) in model.Trainable) p.grad?.zero_();
        var l = model.Forward(TorchTensors.ToTorch(images), training: true);
        var loss = F.cross_entropy(l, global::TorchSharp.torch.tensor(labels.Select(x => (long)x).ToArray()), label_smoothing: 0.1);
        loss.backward();
        logits = TorchTensors.ToEngine(l);
        return loss.item<float>();
    }

    static Dictionary<string, MLNet.MemoryTokens.Tensor> Grads(TorchTunedModel m) =>
        m.Trainable.ToDictionary(t => t.Name, t => TorchTensors.ToEngine(t.Value.grad ?? throw new InvalidOperationException($"no gradient for {t.Name}")));

    [Theory]
    [MemberData(nameof(Methods))]
    public void ForwardGradientsAndOneStepEqualTheEngines(string method)
    {
        var backbone = TinyModels.Backbone();
        var tuning = Tuning(method, backbone);
        const int classes = 5, seed = 7;
        var images = TinyModels.Images(4, 2);
        var labels = TinyModels.Labels(4, classes, 3);
        var engine = tuning.CreateModel(backbone.Model, classes, seed);
        using var wrapped = TinyModels.Torch(backbone, tuning, classes, seed);
        var torchModel = wrapped.Model;

        // same starting tensors (the engine's init, by name), same names, order and weight-decay flags
        var start = torchModel.AdapterTensors();
        Assert.Equal(engine.Parameters.Select(p => p.Name), torchModel.Trainable.Select(t => t.Name));
        Assert.Equal(engine.Parameters.Select(p => p.WeightDecay), wrapped.Parameters.Select(p => p.WeightDecay));
        foreach (var p in engine.Parameters) Assert.Equal(p.Value.Data, start[p.Name].Data);

        double lossE = EngineLoss(engine, images, labels, out var logitsE);
        double lossT = TorchLoss(torchModel, images, labels, out var logitsT);
        TinyModels.AssertClose(logitsE.Data, logitsT.Data, 1e-5, 1e-5, $"{method} logits");
        Assert.True(Math.Abs(lossE - lossT) < 1e-5, $"{method} loss: engine {lossE}, TorchSharp {lossT}");
        var gradsT = Grads(torchModel);
        foreach (var p in engine.Parameters)
            TinyModels.AssertClose(p.Grad.Data, gradsT[p.Name].Data, 1e-7, 2e-4, $"{method} gradient {p.Name}");

        // one clipped AdamW step with weight decay (clip norm below the gradient's so clipping acts): the engine's optimizer on
        // the host, the TorchSharp backend's (what the trainer uses with it) on the device
        const float lr = 1e-2f, clip = 0.05f, decay = 0.05f;
        var adam = Optimizer.Create(OptimizerKind.AdamW, engine.Parameters, decay);
        double normE = adam.ClipGradients(engine.Parameters, clip);
        adam.Step(engine.Parameters, lr);
        var adamT = TorchOptimizer.Create(OptimizerKind.AdamW, wrapped, decay);
        double normT = adamT.ClipGradients(wrapped.Parameters, clip);
        adamT.Step(wrapped.Parameters, lr);
        Assert.True(Math.Abs(normE - normT) <= 1e-5 * normE, $"{method} gradient norm: engine {normE}, TorchSharp {normT}");
        adamT.CopyParametersToHost();
        var after = wrapped.Parameters.ToDictionary(p => p.Name);
        // Adam's first step is lr·g/(|g| + ε) per entry: where |g| is near ε (a few of full fine-tuning's 30k weights) float32
        // rounding of g moves the step by a fraction of lr, so the bound is 1e-3·lr
        foreach (var p in engine.Parameters)
            TinyModels.AssertClose(p.Value.Data, after[p.Name].Value.Data, 1e-3 * lr, 1e-5, $"{method} AdamW step {p.Name}");
        // the optimizer state goes to checkpoints under the engine's names and shapes
        Assert.Equal(adam.State.Keys.Order(), adamT.State.Keys.Order());
        foreach (var (name, t) in adam.State) TinyModels.AssertClose(t.Data, adamT.State[name].Data, 1e-6, 1e-4, $"{method} AdamW state {name}");
    }

    [Fact]
    public void SgdStepEqualsTheEngines()
    {
        var backbone = TinyModels.Backbone();
        var tuning = new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = 2 };
        var images = TinyModels.Images(3, 4);
        var labels = TinyModels.Labels(3, 5, 5);
        var engine = tuning.CreateModel(backbone.Model, 5, 1);
        using var wrapped = TinyModels.Torch(backbone, tuning, 5, 1);
        var sgd = Optimizer.Create(OptimizerKind.Sgd, engine.Parameters, 0.01f, 0.9f);
        var sgdT = TorchOptimizer.Create(OptimizerKind.Sgd, wrapped, 0.01f, 0.9f);
        for (int step = 0; step < 2; step++)   // the second step uses the momentum buffer
        {
            EngineLoss(engine, images, labels, out _);
            sgdT.ClearGradients(wrapped.Parameters);
            TorchLoss(wrapped.Model, images, labels, out _);
            sgd.Step(engine.Parameters, 0.1f);
            sgdT.Step(wrapped.Parameters, 0.1f);
        }
        var after = wrapped.Model.AdapterTensors();
        foreach (var p in engine.Parameters) TinyModels.AssertClose(p.Value.Data, after[p.Name].Data, 1e-6, 1e-5, $"SGD step {p.Name}");
    }
}
