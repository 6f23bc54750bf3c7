using MLNet.MemoryTokens.Model;

namespace MLNet.MemoryTokens.Tuning.Baselines;

/// <summary>The linear probe in the method table: a new head on the frozen backbone's pooled output (its final-norm class token, or what its pooling gives), trained on features
/// computed once (<see cref="LinearProbeStep"/>).</summary>
internal sealed class LinearProbeMethod : TuningMethodDefinition, IMethodCompute
{
    public override TuningMethod Method => TuningMethod.HeadOnly;
    public override string Name => "head";
    public override string Summary => "a new head on the frozen backbone's pooled output (linear probe)";
    public override IMethodCompute Managed => this;

    public ITunedModel CreateModel(VisionTransformer backbone, TuningOptions o, int classes, int seed) => new BaselineVit(backbone, classes, new BaselineOptions(), seed);

    /// <summary>The backbone's forward as it is; the new head on its pooled output.</summary>
    public override AdaptedForward DescribeForward(Adapter adapter, VitConfig backbone, string where, IReadOnlyList<Adapter> extends) => new();

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

    public override void Validate(TuningOptions o, Backbone backbone)
    {
        if (!backbone.Model.Config.ClassToken)
            throw new ArgumentException($"Backbone {backbone.Source} has no class token (it pools the patch tokens by average): head + class token needs one; train the head alone, or memory tokens.");
    }

    /// <summary>The trained class token in row 0; the new head on the pooled output.</summary>
    public override AdaptedForward DescribeForward(Adapter adapter, VitConfig backbone, string where, IReadOnlyList<Adapter> extends) =>
        new() { ClassToken = adapter.Need("cls_token", where, 1, 1, backbone.Dim) };

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

    /// <summary>Every trunk weight is the adapter's (<c>backbone.&lt;timm name&gt;</c>); the new head on the pooled output.</summary>
    public override AdaptedForward DescribeForward(Adapter adapter, VitConfig backbone, string where, IReadOnlyList<Adapter> extends) => new()
    {
        Trunk = backbone.StateDictShapes().Where(kv => !VitConfig.IsHeadWeight(kv.Key)).ToDictionary(kv => kv.Key, kv => adapter.Need("backbone." + kv.Key, where, kv.Value)),
    };
}
