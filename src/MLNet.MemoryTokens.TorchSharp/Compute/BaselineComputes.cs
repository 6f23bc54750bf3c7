using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.TorchSharp.Model;
using MLNet.MemoryTokens.TorchSharp.Training;
using MLNet.MemoryTokens.Tuning;
using MLNet.MemoryTokens.TorchSharp.Tuning;

namespace MLNet.MemoryTokens.TorchSharp.Compute;

/// <summary>The linear probe on TorchSharp: the frozen backbone's final-norm class tokens computed once on the device
/// (<see cref="TorchFeatureStep"/>), then only the head trains.</summary>
internal sealed class TorchLinearProbeCompute : TorchMethodCompute
{
    public override TuningMethod Method => TuningMethod.HeadOnly;

    protected override TorchTunedModel Build(VisionTransformer backbone, TuningOptions o, int classes, IReadOnlyDictionary<string, Tensor> initial, int seed) =>
        new TorchAdaptedVit(Frozen(backbone), classes, 0, false, fullFineTune: false, 0, [], initial);

    public override ITrainingStep CreateTrainingStep(ITunedModel model, StepContext context) => new TorchFeatureStep(Engine(model), context);
}

/// <summary>Head + class token on TorchSharp.</summary>
internal sealed class TorchHeadAndClassTokenCompute : TorchMethodCompute
{
    public override TuningMethod Method => TuningMethod.HeadAndClassToken;

    protected override TorchTunedModel Build(VisionTransformer backbone, TuningOptions o, int classes, IReadOnlyDictionary<string, Tensor> initial, int seed) =>
        new TorchAdaptedVit(Frozen(backbone), classes, 0, false, fullFineTune: false, 0, [], initial);
}

/// <summary>Full fine-tuning on TorchSharp: a trainable copy of every backbone weight on the device (the head left out: the task's
/// new head replaces it), with the optimizer's state there too (<see cref="TorchOptimizer"/>).</summary>
internal sealed class TorchFullFineTuningCompute : TorchMethodCompute
{
    public override TuningMethod Method => TuningMethod.Full;

    protected override TorchTunedModel Build(VisionTransformer backbone, TuningOptions o, int classes, IReadOnlyDictionary<string, Tensor> initial, int seed)
    {
        var trainable = new TorchVit(backbone.Config with { NumClasses = 0 },
            backbone.Parameters.Where(p => !VitConfig.IsHeadWeight(p.Key)).ToDictionary(), Device, trainable: true) { Precision = Precision };
        return new TorchAdaptedVit(trainable, classes, 0, false, fullFineTune: true, 0, [], initial);
    }
}
