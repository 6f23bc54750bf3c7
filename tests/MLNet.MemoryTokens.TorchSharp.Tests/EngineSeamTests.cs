using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.TorchSharp.Tuning;
using MLNet.MemoryTokens.Training;
using MLNet.MemoryTokens.Tuning;
using Xunit;
using static TorchSharp.torch;
using MLNet.MemoryTokens.TorchSharp.Native;

namespace MLNet.MemoryTokens.TorchSharp.Tests;

/// <summary>The TorchSharp models behind the engine's <see cref="ITunedModel"/> (what the method table's backend seam takes):
/// the engine's own loss, optimizer and evaluation drive them and get the engine's numbers.</summary>
public class EngineSeamTests
{
    [Theory]
    [MemberData(nameof(MethodParityTests.Methods), MemberType = typeof(MethodParityTests))]
    public void EngineOptimizerOnTheTorchModelStepsAsOnTheEngineModel(string method)
    {
        var backbone = TinyModels.Backbone();
        var tuning = MethodParityTests.Tuning(method, backbone);
        var images = TinyModels.Images(4, 2);
        var labels = TinyModels.Labels(4, 5, 3);
        var engine = tuning.CreateModel(backbone.Model, 5, 7);
        using var wrapped = TinyModels.Torch(backbone, tuning, 5, 7);
        var optE = Optimizer.Create(OptimizerKind.AdamW, engine.Parameters, 0.05f);
        var optT = Optimizer.Create(OptimizerKind.AdamW, wrapped.Parameters, 0.05f);
        foreach (var (model, opt) in new (ITunedModel, Optimizer)[] { (engine, optE), (wrapped, optT) })
            for (int step = 0; step < 2; step++)
            {
                var logits = model.Forward(images, keepForBackward: true);
                var dLogits = new MLNet.MemoryTokens.Tensor(logits.Shape);
                CrossEntropy.Compute(logits.Data, labels, 5, 0.1f, dLogits.Data);
                model.ZeroGrad();
                model.Backward(dLogits);
                GradientClipping.ClipGlobalNorm(model.Parameters, 1f);
                opt.Step(model.Parameters, 1e-3f);
            }
        var after = wrapped.Parameters.ToDictionary(p => p.Name);
        foreach (var p in engine.Parameters)
            TinyModels.AssertClose(p.Value.Data, after[p.Name].Value.Data, 2e-5, 1e-5, $"{method} through ITunedModel, two engine AdamW steps: {p.Name}");
        var x = TinyModels.Images(3, 9);
        TinyModels.AssertClose(engine.Forward(x, false).Data, wrapped.Forward(x, false).Data, 1e-4, 1e-4, $"{method} through ITunedModel: logits after training");
    }

    /// <summary>Models, masks and caches live as long as the model, not as long as the dispose scope they were built or first
    /// run in: built inside a scope, every method still runs twice after it ends, with the same logits.</summary>
    [Theory]
    [MemberData(nameof(MethodParityTests.Methods), MemberType = typeof(MethodParityTests))]
    public void ModelsOutliveTheScopeTheyWereBuiltIn(string method)
    {
        var backbone = TinyModels.Backbone();
        var tuning = MethodParityTests.Tuning(method, backbone);
        using var x = TorchTensors.ToTorch(TinyModels.Images(2, 1));
        TorchEngineModel model;
        using (NewDisposeScope())
        {
            model = TinyModels.Torch(backbone, tuning, 5, 0);
            using var _ = no_grad();
            model.Model.Forward(x, training: false);
        }
        using (model)
        using (no_grad())
        {
            var first = TorchTensors.ToEngine(model.Model.Forward(x, training: false));
            var second = TorchTensors.ToEngine(model.Model.Forward(x, training: false));
            Assert.Equal(first.Data, second.Data);
        }
    }

    [Fact]
    public void EngineEvaluationScoresTheTorchModel()
    {
        var backbone = TinyModels.Backbone(classes: 0);
        var data = TrainingTests.Tiny(40);
        var tuning = new TuningOptions { Method = TuningMethod.Memory, MemoryTokens = 2 };
        using var model = TinyModels.Torch(backbone, tuning, 10, 0);
        var engine = tuning.CreateModel(backbone.Model, 10, 0);
        var viaTorch = Trainer.Evaluate(model, data, batchSize: 16);
        var viaEngine = Trainer.Evaluate(engine, data, batchSize: 16);
        Assert.Equal(viaEngine.Accuracy, viaTorch.Accuracy);
        Assert.Equal(viaEngine.LogLoss, viaTorch.LogLoss, 5);
    }
}
