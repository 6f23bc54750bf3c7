using MLNet.MemoryTokens.Model;

namespace MLNet.MemoryTokens.Tuning.Baselines;

/// <summary>The linear probe in the method table: a new head on the frozen backbone's final class token, trained on features
/// computed once (<see cref="LinearProbeStep"/>).</summary>
internal sealed class LinearProbeMethod : TuningMethodDefinition, IMethodCompute
{
    public override TuningMethod Method => TuningMethod.HeadOnly;
    public override string Name => "head";
    public override string Summary => "a new head on the frozen backbone's class token (linear probe)";
    public override IMethodCompute Managed => this;

    public ITunedModel CreateModel(VisionTransformer backbone, TuningOptions o, int classes, int seed) => new BaselineVit(backbone, classes, new BaselineOptions(), seed);

    public ITrainingStep CreateTrainingStep(ITunedModel model, StepContext context) => new LinearProbeStep((BaselineVit)model, context);
}

/// <summary>Head + class token in the method table.</summary>
internal sealed class HeadAndClassTokenMethod : TuningMethodDefinition, IMethodCompute
{
    public override TuningMethod Method => TuningMethod.HeadAndClassToken;
    public override string Name => "head-class";
    public override string Summary => "a new head and the class token";
    public override IMethodCompute Managed => this;

    public override AdapterConfig DescribeAdapter(AdapterConfig config, TuningOptions o) => config with { TrainClassToken = true };

    public ITunedModel CreateModel(VisionTransformer backbone, TuningOptions o, int classes, int seed) =>
        new BaselineVit(backbone, classes, new BaselineOptions { TrainClassToken = true }, seed);
}

/// <summary>Full fine-tuning in the method table: every backbone weight and a new head, on a copy of the backbone (the one
/// given stays as loaded); the adapter holds every weight as <c>backbone.*</c>.</summary>
internal sealed class FullFineTuningMethod : TuningMethodDefinition, IMethodCompute
{
    public override TuningMethod Method => TuningMethod.Full;
    public override string Name => "full";
    public override string Summary => "every backbone weight and a new head";
    public override bool TrainsBackbone => true;
    public override IMethodCompute Managed => this;

    public ITunedModel CreateModel(VisionTransformer backbone, TuningOptions o, int classes, int seed) =>
        new BaselineVit(backbone.Clone(), classes, new BaselineOptions { TrainBackbone = true }, seed);
}
