using Microsoft.ML;
using Microsoft.ML.Runtime;
using MLNet.MemoryTokens.Imaging;
using MLNet.MemoryTokens.ML.Data;
using MLNet.MemoryTokens.ML.Fitting;
using MLNet.MemoryTokens.ML.Schema;
using MLNet.MemoryTokens.ML.Trainers;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Tuning;

namespace MLNet.MemoryTokens.ML;

/// <summary>The estimator behind every ViT classifier of this package: checks the image and label columns, trains the
/// tuning method with the engine, and returns a <see cref="VitClassifierTransformer"/>.</summary>
public abstract class VitTrainerBase<TOptions> : IEstimator<VitClassifierTransformer> where TOptions : VitClassifierOptionsBase
{
    readonly IHostEnvironment? _env;
    readonly string _name;

    private protected VitTrainerBase(IHostEnvironment? env, TOptions options, string name)
    {
        ArgumentNullException.ThrowIfNull(options);
        _env = env; _name = name;
        TrainerOptions = options;
    }

    /// <summary>The options this trainer was created with.</summary>
    public TOptions TrainerOptions { get; }

    /// <summary>The engine's tuning settings for these options.</summary>
    private protected abstract TuningOptions Tuning { get; }

    /// <summary>Image column (MLImage, path or pixel vector) and Key&lt;UInt32&gt; label in; Score and PredictedLabel out.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        var o = TrainerOptions;
        new ImageInput(o.ImageColumnName, o.ImageFolder, new PreprocessConfig { InputSize = o.KnownImageSize }).CheckShape(inputSchema);
        var label = SchemaShapes.CheckKeyLabel(inputSchema, o.LabelColumnName);
        bool slotNames = label.Annotations.Any(a => a.Name == ScoreColumns.KeyValues);
        return SchemaShapes.Append(inputSchema, [ScoreColumns.ScoreShape(o.ScoreColumnName, slotNames), ScoreColumns.PredictedLabelShape(o.PredictedLabelColumnName, label)]);
    }

    /// <summary>Trains on <paramref name="input"/>, validating on a stratified hold-out (<see cref="VitTuningOptionsBase.ValidationFraction"/>).</summary>
    public VitClassifierTransformer Fit(IDataView input) => Fit(input, null);

    /// <summary>Trains on <paramref name="trainData"/>, validating after every epoch on <paramref name="validationData"/>
    /// (null: a stratified hold-out of the training rows).</summary>
    public VitClassifierTransformer Fit(IDataView trainData, IDataView? validationData)
    {
        var o = TrainerOptions;
        var fit = VitTraining.Fit(_env, _name, o, Tuning, trainData, validationData);
        return new VitClassifierTransformer(fit.Backbone, fit.Training.Adapter, fit.Training.Model, fit.Input, fit.Keys, o.LabelColumnName,
            o.ScoreColumnName, o.PredictedLabelColumnName, o.InferenceBatchSize, fit.Training.History);
    }
}
