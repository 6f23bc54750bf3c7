using Microsoft.ML.Runtime;
using MLNet.MemoryTokens.Tuning;

namespace MLNet.MemoryTokens.ML;

/// <summary>Linear probe: a new head on the frozen backbone's final class token (features are computed once).
/// Created by <c>mlContext.MulticlassClassification.Trainers.VitHeadOnly(...)</c>.</summary>
public sealed class VitHeadOnlyTrainer : VitTrainerBase<VitHeadOnlyTrainer.Options>
{
    /// <summary>Options of <see cref="VitHeadOnlyTrainer"/> (the shared settings only).</summary>
    public sealed class Options : VitClassifierOptionsBase { }

    internal VitHeadOnlyTrainer(IHostEnvironment? env, Options options) : base(env, options, nameof(VitHeadOnlyTrainer)) { }

    private protected override TuningOptions Tuning => new() { Method = TuningMethod.HeadOnly };
}

/// <summary>A new head and the class token. Created by <c>mlContext.MulticlassClassification.Trainers.VitHeadAndClassToken(...)</c>.</summary>
public sealed class VitHeadAndClassTokenTrainer : VitTrainerBase<VitHeadAndClassTokenTrainer.Options>
{
    /// <summary>Options of <see cref="VitHeadAndClassTokenTrainer"/> (the shared settings only).</summary>
    public sealed class Options : VitClassifierOptionsBase { }

    internal VitHeadAndClassTokenTrainer(IHostEnvironment? env, Options options) : base(env, options, nameof(VitHeadAndClassTokenTrainer)) { }

    private protected override TuningOptions Tuning => new() { Method = TuningMethod.HeadAndClassToken };
}

/// <summary>Full fine-tuning: every backbone weight plus a new head (on a private copy of the backbone, so components
/// sharing it are unaffected). Created by <c>mlContext.MulticlassClassification.Trainers.VitFullFineTuning(...)</c>.</summary>
public sealed class VitFullFineTuningTrainer : VitTrainerBase<VitFullFineTuningTrainer.Options>
{
    /// <summary>Options of <see cref="VitFullFineTuningTrainer"/> (the shared settings only; consider a lower
    /// <see cref="VitTuningOptionsBase.LearningRate"/>, e.g. 1e-4, than for the frozen-backbone methods).</summary>
    public sealed class Options : VitClassifierOptionsBase { }

    internal VitFullFineTuningTrainer(IHostEnvironment? env, Options options) : base(env, options, nameof(VitFullFineTuningTrainer)) { }

    private protected override TuningOptions Tuning => new() { Method = TuningMethod.Full };
}
