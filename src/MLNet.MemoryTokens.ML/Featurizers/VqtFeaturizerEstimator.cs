using Microsoft.ML;
using Microsoft.ML.Runtime;
using MLNet.MemoryTokens.IO;
using MLNet.MemoryTokens.Imaging;
using MLNet.MemoryTokens.ML.Data;
using MLNet.MemoryTokens.ML.Fitting;
using MLNet.MemoryTokens.ML.Schema;
using MLNet.MemoryTokens.ML.Trainers;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Tuning;
using MLNet.MemoryTokens.Tuning.QueryTuning;

namespace MLNet.MemoryTokens.ML;

/// <summary>Fits Visual Query Tuning's queries on labelled images (with a temporary head, discarded afterwards) and
/// becomes a featurizer: a <c>Features</c> vector of D·(1 + L·T) values — the normalised class token and every layer's
/// query outputs (or the kept fraction of them, with <see cref="Options.KeepFeatureFraction"/>) — that any ML.NET trainer
/// can consume. Created by <c>mlContext.Transforms.VqtFeaturizer(...)</c>.</summary>
public sealed class VqtFeaturizerEstimator : IEstimator<VqtFeaturizerTransformer>
{
    /// <summary>Options of <see cref="VqtFeaturizerEstimator"/>: the shared tuning settings (label, image, backbone,
    /// schedule) plus the output column and the VQT sizes.</summary>
    public sealed class Options : VitTuningOptionsBase
    {
        /// <summary>Output column, a <c>Vector&lt;Single&gt;</c> of D·(1 + L·T) features (fewer with <see cref="KeepFeatureFraction"/>). Default <c>"Features"</c>.</summary>
        public string OutputColumnName { get; set; } = "Features";

        /// <summary>Query tokens per layer (T). Default 1.</summary>
        public int QueryTokens { get; set; } = 1;

        /// <summary>Dropout on the query tokens while fitting. Default 0.1.</summary>
        public float QueryDropout { get; set; } = 0.1f;

        /// <summary>Group-lasso weight λ on the temporary head's feature columns while fitting (0: off). Default 0.</summary>
        public float GroupLasso { get; set; }

        /// <summary>Output only this fraction of the features: those the fitted head weighs most. Default 1 (all).</summary>
        public double KeepFeatureFraction { get; set; } = 1;

        /// <summary>Element type of the key/value cache the engine trains from. Default F16.</summary>
        public TensorDType CacheDType { get; set; } = TensorDType.F16;

        /// <summary>Folder for a file-backed cache; null: memory within 4 GB, else the temp folder. Default null.</summary>
        public string? CacheDirectory { get; set; }
    }

    readonly IHostEnvironment? _env;

    internal VqtFeaturizerEstimator(IHostEnvironment? env, Options options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _env = env;
        EstimatorOptions = options;
    }

    public Options EstimatorOptions { get; }

    /// <summary>Image column and Key&lt;UInt32&gt; label in (the label only fits the queries); the features column out.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        var o = EstimatorOptions;
        new ImageInput(o.ImageColumnName, o.ImageFolder, new PreprocessConfig { InputSize = o.KnownImageSize }).CheckShape(inputSchema);
        SchemaShapes.CheckKeyLabel(inputSchema, o.LabelColumnName);
        return SchemaShapes.Append(inputSchema, [SchemaShapes.Vector(o.OutputColumnName, [])]);
    }

    public VqtFeaturizerTransformer Fit(IDataView input)
    {
        var o = EstimatorOptions;
        var tuning = new TuningOptions
        {
            Method = TuningMethod.Vqt, QueryTokens = o.QueryTokens, QueryDropout = o.QueryDropout, GroupLasso = o.GroupLasso,
            KeepFeatureFraction = o.KeepFeatureFraction, CacheDType = o.CacheDType, CacheDirectory = o.CacheDirectory,
        };
        var fit = VitTraining.Fit(_env, nameof(VqtFeaturizerEstimator), o, tuning, input, null);
        return new VqtFeaturizerTransformer(fit.Backbone, fit.Training.Adapter, (IQueryFeatures)fit.Training.Model, fit.Input, fit.Keys,
            o.LabelColumnName, o.OutputColumnName, o.InferenceBatchSize);
    }
}
