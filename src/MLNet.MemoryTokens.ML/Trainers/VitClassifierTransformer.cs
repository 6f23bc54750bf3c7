using Microsoft.ML.Data;
using Microsoft.ML;
using MLNet.MemoryTokens.ML.Data;
using MLNet.MemoryTokens.ML.Persistence;
using MLNet.MemoryTokens.ML.Scoring;
using MLNet.MemoryTokens.ML.Trainers;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Training;
using MLNet.MemoryTokens.Tuning;

namespace MLNet.MemoryTokens.ML;

/// <summary>A fitted ViT classifier (memory tokens, VQT, or a baseline): adds <c>Score</c> and <c>PredictedLabel</c> like
/// ML.NET's multiclass trainers. <see cref="ITransformer.Transform"/> scores lazily in batches; <c>PredictionEngine</c>
/// scores row by row with the same values.</summary>
/// <remarks>Persist it with <see cref="SaveAdapter"/> (or a whole pipeline with <c>mlContext.Model.SaveWithAdapters</c>);
/// <c>mlContext.Model.Save</c> cannot hold it and says so.</remarks>
public sealed class VitClassifierTransformer : ImageScoringTransformer
{
    readonly ClassifierScorer _scorer;
    readonly LabelKeys _keys;

    internal VitClassifierTransformer(Backbone backbone, Adapter adapter, ITunedModel model, ImageInput input, LabelKeys keys,
        string? labelColumnName, string scoreColumnName, string predictedLabelColumnName, int batchSize, IReadOnlyList<EpochMetrics> history)
    {
        Backbone = backbone; _keys = keys;
        LabelColumnName = labelColumnName; ScoreColumnName = scoreColumnName; PredictedLabelColumnName = predictedLabelColumnName;
        TrainingHistory = history;
        _scorer = new ClassifierScorer(input, batchSize, model, keys, scoreColumnName, predictedLabelColumnName);
        Adapter = new ComponentMetadata
        {
            Component = Kind, ImageColumn = input.ColumnName, ImageFolder = input.ImageFolder, LabelColumn = labelColumnName,
            OutputColumns = [scoreColumnName, predictedLabelColumnName], KeyCount = keys.Count, KeyValueType = keys.ValueTypeName,
            KeyValues = keys.Values, InferenceBatchSize = batchSize,
        }.AttachTo(adapter);
    }

    /// <summary>The backbone this classifier runs on (shared, except after full fine-tuning, which owns a copy).</summary>
    public Backbone Backbone { get; }
    /// <summary>The trained tensors and their config (the engine's adapter; also what <see cref="SaveAdapter"/> writes).</summary>
    public Adapter Adapter { get; }
    public TuningMethod Method => Adapter.Config.Method;
    public string ImageColumnName => _scorer.Input.ColumnName;
    public string? LabelColumnName { get; }
    public string ScoreColumnName { get; }
    public string PredictedLabelColumnName { get; }
    /// <summary>Class names in key order (Score's slot order).</summary>
    public IReadOnlyList<string> ClassNames => _keys.ClassNames;
    public int InferenceBatchSize => _scorer.BatchSize;
    /// <summary>Per-epoch loss and accuracy of the fit (empty for a loaded adapter).</summary>
    public IReadOnlyList<EpochMetrics> TrainingHistory { get; }

    /// <summary>Writes the adapter folder (adapter_config.json + adapter_model.safetensors; the columns and label key values
    /// ride along in the config). Load it with <c>mlContext.MulticlassClassification.Trainers.LoadMemoryTokens</c>.</summary>
    public void SaveAdapter(string directory) => Adapter.Save(directory);

    /// <summary>Rebuilds a classifier from an adapter folder on <paramref name="backbone"/> (or the checkpoint it records), scoring
    /// on the backend <paramref name="compute"/> names (default: the managed engine).</summary>
    internal static VitClassifierTransformer Load(string directory, Backbone? backbone, string? backbonePath, ComputeOptions? compute = null)
    {
        var adapter = Adapter.Load(directory);
        var metadata = ComponentMetadata.Read(adapter);
        if (metadata is not null && metadata.Component != Kind)
            throw new InvalidDataException($"'{directory}' holds a {metadata.Component}, not a classifier.");
        var resolved = BackboneCache.ForAdapter(adapter, backbone, backbonePath);
        if (TuningMethods.Get(adapter.Config.Method).TrainsBackbone && compute is not { IsManaged: false }) resolved = BackboneCache.PrivateCopy(resolved);   // the adapter's weights are copied into it
        var model = adapter.CreateModel(resolved, directory, compute: compute);
        var preprocess = adapter.Config.Preprocess with { InputSize = adapter.Config.ImageSize };
        var input = new ImageInput(metadata?.ImageColumn ?? "Image", metadata?.ImageFolder, preprocess);
        var columns = metadata?.OutputColumns is { Length: 2 } names ? names : ["Score", "PredictedLabel"];
        return new VitClassifierTransformer(resolved, adapter, model, input, ComponentMetadata.KeysOf(metadata, adapter),
            metadata?.LabelColumn, columns[0], columns[1], metadata?.InferenceBatchSize ?? 32, []);
    }

    /// <summary>The kind a saved classifier folder is recorded as.</summary>
    internal const string Kind = "classifier";
    private protected override ImageScorer Scorer => _scorer;
    private protected override string ComponentKind => Kind;
    private protected override void SaveTo(string directory) => SaveAdapter(directory);
    private protected override string SaveMethod => "transformer.SaveAdapter(directory)";
}
