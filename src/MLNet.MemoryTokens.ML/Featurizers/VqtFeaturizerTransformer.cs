using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.MemoryTokens.ML.Data;
using MLNet.MemoryTokens.ML.Persistence;
using MLNet.MemoryTokens.ML.Scoring;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Tuning;
using MLNet.MemoryTokens.Tuning.QueryTuning;

namespace MLNet.MemoryTokens.ML;

/// <summary>A fitted VQT featurizer: adds a <c>Vector&lt;Single&gt;</c> of D·(1 + L·T) features per image (or the kept ones),
/// computed by the backend it was fitted (or loaded) on.</summary>
public sealed class VqtFeaturizerTransformer : ImageScoringTransformer
{
    readonly FeaturizerScorer _scorer;

    internal VqtFeaturizerTransformer(Backbone backbone, Adapter adapter, IQueryFeatures model, ImageInput input, LabelKeys keys,
        string? labelColumnName, string outputColumnName, int batchSize)
    {
        Backbone = backbone;
        OutputColumnName = outputColumnName;
        _scorer = new FeaturizerScorer(input, batchSize, model, outputColumnName);
        Adapter = new ComponentMetadata
        {
            Component = Kind, ImageColumn = input.ColumnName, ImageFolder = input.ImageFolder, LabelColumn = labelColumnName,
            OutputColumns = [outputColumnName], KeyCount = keys.Count, KeyValueType = keys.ValueTypeName, KeyValues = keys.Values,
            InferenceBatchSize = batchSize,
        }.AttachTo(adapter);
    }

    public Backbone Backbone { get; }
    /// <summary>The fitted queries (and the temporary head they were fitted with) as the engine's adapter.</summary>
    public Adapter Adapter { get; }
    public string ImageColumnName => _scorer.Input.ColumnName;
    public string OutputColumnName { get; }
    /// <summary>Length of the feature vector: D·(1 + L·T), or the kept count after compression.</summary>
    public int FeatureLength => _scorer.Outputs[0].Length;

    /// <summary>Writes the adapter folder; load it with <c>mlContext.Transforms.LoadVqtFeaturizer</c>.</summary>
    public void SaveAdapter(string directory) => Adapter.Save(directory);

    internal static VqtFeaturizerTransformer Load(string directory, Backbone? backbone, string? backbonePath, ComputeOptions? compute = null)
    {
        var adapter = Adapter.Load(directory);
        if (adapter.Config.Method != TuningMethod.Vqt) throw new InvalidDataException($"'{directory}' holds a {adapter.Config.Method} adapter; a VQT featurizer needs a VQT one.");
        var metadata = ComponentMetadata.Read(adapter);
        var resolved = BackboneCache.ForAdapter(adapter, backbone, backbonePath);
        var model = (IQueryFeatures)adapter.CreateModel(resolved, directory, compute: compute);
        var input = new ImageInput(metadata?.ImageColumn ?? "Image", metadata?.ImageFolder, adapter.Config.Preprocess with { InputSize = adapter.Config.ImageSize });
        string output = metadata?.OutputColumns is { Length: 1 } names ? names[0] : "Features";
        return new VqtFeaturizerTransformer(resolved, adapter, model, input, ComponentMetadata.KeysOf(metadata, adapter), metadata?.LabelColumn,
            output, metadata?.InferenceBatchSize ?? 32);
    }

    /// <summary>The kind a saved featurizer folder is recorded as.</summary>
    internal const string Kind = "vqt-featurizer";
    private protected override ImageScorer Scorer => _scorer;
    private protected override string ComponentKind => Kind;
    private protected override void SaveTo(string directory) => SaveAdapter(directory);
    private protected override string SaveMethod => "transformer.SaveAdapter(directory)";

    /// <summary>The VQT feature vector (no dropout) of each image, as the fitted head reads it.</summary>
    sealed class FeaturizerScorer : ImageScorer
    {
        readonly IQueryFeatures _model;
        readonly object _gate = new();

        public FeaturizerScorer(ImageInput input, int batchSize, IQueryFeatures model, string outputColumnName) : base(input, batchSize)
        {
            _model = model;
            Outputs = [new OutputColumn(outputColumnName, new VectorDataViewType(NumberDataViewType.Single, model.HeadInput), DataViewSchema.Annotations.Empty)];
        }

        public override IReadOnlyList<OutputColumn> Outputs { get; }

        protected override void Forward(Tensor images, int[] rows, OutputBuffers output)
        {
            Tensor features;
            lock (_gate) features = QueryFeaturizer.Featurize(_model, images);
            int f = _model.HeadInput;   // what the head reads: all D·(1 + L·T) features, or the kept ones
            for (int k = 0; k < rows.Length; k++) features.Data.AsSpan(k * f, f).CopyTo(output.Floats[0].AsSpan(rows[k] * f, f));
        }
    }
}
