using MLNet.MemoryTokens.ML;
using MLNet.MemoryTokens.ML.Hosting;
using MLNet.MemoryTokens.Model;

namespace Microsoft.ML;

/// <summary>Transforms of MLNet.MemoryTokens under <c>mlContext.Transforms</c>: the VQT featurizer and the multi-task scorer.</summary>
public static class MemoryTokensTransformsCatalog
{
    /// <summary>Fits Visual Query Tuning's query tokens on labelled images (with a temporary head) and outputs their
    /// D·(1 + L·T) features in <paramref name="outputColumnName"/>, for any ML.NET trainer to consume.</summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="outputColumnName">Output Vector&lt;Single&gt; column.</param>
    /// <param name="imageColumnName">Image column: MLImage, image path, or 3·S·S pixel vector (0–255).</param>
    /// <param name="labelColumnName">Key&lt;UInt32&gt; label the queries are fitted on.</param>
    /// <param name="backbone">Checkpoint path or timm model id (default ViT-Ti/16).</param>
    /// <param name="imageSize">Input size S (null: the checkpoint's).</param>
    /// <param name="queryTokens">Query tokens per layer.</param>
    /// <param name="epochs">Passes over the data when fitting the queries.</param>
    /// <param name="learningRate">Peak learning rate.</param>
    public static VqtFeaturizerEstimator VqtFeaturizer(this TransformsCatalog catalog, string outputColumnName = "Features", string imageColumnName = "Image",
        string labelColumnName = "Label", string backbone = BackboneCache.DefaultModel, int? imageSize = null, int queryTokens = 1, int epochs = 10, float learningRate = 1e-3f) =>
        catalog.VqtFeaturizer(new VqtFeaturizerEstimator.Options
        {
            OutputColumnName = outputColumnName, ImageColumnName = imageColumnName, LabelColumnName = labelColumnName, BackbonePath = backbone,
            ImageSize = imageSize, QueryTokens = queryTokens, Epochs = epochs, LearningRate = learningRate,
        });

    /// <summary>The VQT featurizer with every setting (see <see cref="VqtFeaturizerEstimator.Options"/>).</summary>
    public static VqtFeaturizerEstimator VqtFeaturizer(this TransformsCatalog catalog, VqtFeaturizerEstimator.Options options) =>
        new(MLContextBridge.EnvironmentOf(catalog), options);

    /// <summary>A featurizer saved with <see cref="VqtFeaturizerTransformer.SaveAdapter"/>, on <paramref name="backbone"/>
    /// (null: <paramref name="backbonePath"/>, else the checkpoint the adapter records); <paramref name="compute"/>: the backend that
    /// computes the features (default: the managed engine).</summary>
    public static VqtFeaturizerTransformer LoadVqtFeaturizer(this TransformsCatalog catalog, string directory, Backbone? backbone = null, string? backbonePath = null,
        MLNet.MemoryTokens.Tuning.ComputeOptions? compute = null) =>
        VqtFeaturizerTransformer.Load(directory, backbone, backbonePath, compute);

    /// <summary>Scores several attention-masked memory-token tasks (and the backbone's own head, as <c>"Original.Score"</c>)
    /// in one forward pass; each task's probabilities go to its <see cref="MemoryTokenTask.OutputColumnName"/>.</summary>
    public static MultiTaskScoringEstimator ScoreMemoryTokenTasks(this TransformsCatalog catalog, IEnumerable<MemoryTokenTask> tasks, string imageColumnName = "Image") =>
        catalog.ScoreMemoryTokenTasks(new MultiTaskScoringEstimator.Options { Tasks = tasks.ToList(), ImageColumnName = imageColumnName });

    /// <summary>The multi-task scorer with every setting (see <see cref="MultiTaskScoringEstimator.Options"/>).</summary>
    public static MultiTaskScoringEstimator ScoreMemoryTokenTasks(this TransformsCatalog catalog, MultiTaskScoringEstimator.Options options) =>
        new(options);

    /// <summary>A multi-task scorer saved with <see cref="MultiTaskScoringTransformer.SaveAdapters"/>.</summary>
    public static MultiTaskScoringTransformer LoadMemoryTokenTasks(this TransformsCatalog catalog, string directory, Backbone? backbone = null, string? backbonePath = null) =>
        MultiTaskScoringTransformer.Load(directory, backbone, backbonePath);
}
