using MLNet.MemoryTokens.ML;
using MLNet.MemoryTokens.ML.Hosting;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Tuning;

namespace Microsoft.ML;

/// <summary>ViT classifiers of MLNet.MemoryTokens under <c>mlContext.MulticlassClassification.Trainers</c>. Each reads an
/// image column (MLImage, image path, or ExtractPixels' 3·S·S vector in 0–255) and a Key&lt;UInt32&gt; label, and adds
/// <c>Score</c> (class probabilities in key order) and <c>PredictedLabel</c> (the label's key type), like ML.NET's own
/// multiclass trainers, so <c>Evaluate</c>, <c>MapKeyToValue</c> and <c>PredictionEngine</c> work unchanged.</summary>
/// <remarks>The simple overloads take the backbone as a checkpoint path or timm model id (loaded once and shared through
/// <see cref="BackboneCache"/>) or as a loaded <see cref="Backbone"/>; the Options overloads expose every setting, with the
/// engine's defaults. Progress goes to <c>mlContext.Log</c>.</remarks>
public static class MemoryTokensTrainersCatalog
{
    /// <summary>Memory-token tuning (Sandler et al. 2022): <paramref name="memoryTokens"/> learnable tokens per layer, the class token and a head.</summary>
    /// <param name="catalog">The multiclass trainers catalog.</param>
    /// <param name="labelColumnName">Key&lt;UInt32&gt; label column.</param>
    /// <param name="imageColumnName">Image column: MLImage, image path, or 3·S·S pixel vector (0–255).</param>
    /// <param name="backbone">Checkpoint path or timm model id (default ViT-Ti/16, downloaded on first use).</param>
    /// <param name="imageSize">Input size S (null: the checkpoint's).</param>
    /// <param name="memoryTokens">Memory tokens per layer.</param>
    /// <param name="epochs">Passes over the training data.</param>
    /// <param name="learningRate">Peak learning rate.</param>
    public static MemoryTokensTrainer MemoryTokens(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        string labelColumnName = "Label", string imageColumnName = "Image", string backbone = BackboneCache.DefaultModel, int? imageSize = null,
        int memoryTokens = 5, int epochs = 10, float learningRate = 1e-3f) =>
        catalog.MemoryTokens(Set(new MemoryTokensTrainer.Options { MemoryTokens = memoryTokens }, labelColumnName, imageColumnName, null, backbone, imageSize, epochs, learningRate));

    /// <summary>Memory-token tuning on an already loaded (shared) backbone.</summary>
    public static MemoryTokensTrainer MemoryTokens(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog, Backbone backbone,
        string labelColumnName = "Label", string imageColumnName = "Image", int memoryTokens = 5, int epochs = 10, float learningRate = 1e-3f) =>
        catalog.MemoryTokens(Set(new MemoryTokensTrainer.Options { MemoryTokens = memoryTokens }, labelColumnName, imageColumnName, backbone ?? throw new ArgumentNullException(nameof(backbone)), null, null, epochs, learningRate));

    /// <summary>Memory-token tuning with every setting (see <see cref="MemoryTokensTrainer.Options"/>).</summary>
    public static MemoryTokensTrainer MemoryTokens(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog, MemoryTokensTrainer.Options options) =>
        new(MLContextBridge.EnvironmentOf(catalog), options);

    /// <summary>Linear probe baseline: a new head on the frozen backbone's class token.</summary>
    public static VitHeadOnlyTrainer VitHeadOnly(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        string labelColumnName = "Label", string imageColumnName = "Image", string backbone = BackboneCache.DefaultModel, int? imageSize = null,
        int epochs = 10, float learningRate = 1e-3f) =>
        catalog.VitHeadOnly(Set(new VitHeadOnlyTrainer.Options(), labelColumnName, imageColumnName, null, backbone, imageSize, epochs, learningRate));

    /// <summary>Linear probe baseline on an already loaded backbone.</summary>
    public static VitHeadOnlyTrainer VitHeadOnly(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog, Backbone backbone,
        string labelColumnName = "Label", string imageColumnName = "Image", int epochs = 10, float learningRate = 1e-3f) =>
        catalog.VitHeadOnly(Set(new VitHeadOnlyTrainer.Options(), labelColumnName, imageColumnName, backbone ?? throw new ArgumentNullException(nameof(backbone)), null, null, epochs, learningRate));

    /// <summary>Linear probe baseline with every setting.</summary>
    public static VitHeadOnlyTrainer VitHeadOnly(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog, VitHeadOnlyTrainer.Options options) =>
        new(MLContextBridge.EnvironmentOf(catalog), options);

    /// <summary>Baseline: a new head and the class token.</summary>
    public static VitHeadAndClassTokenTrainer VitHeadAndClassToken(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        string labelColumnName = "Label", string imageColumnName = "Image", string backbone = BackboneCache.DefaultModel, int? imageSize = null,
        int epochs = 10, float learningRate = 1e-3f) =>
        catalog.VitHeadAndClassToken(Set(new VitHeadAndClassTokenTrainer.Options(), labelColumnName, imageColumnName, null, backbone, imageSize, epochs, learningRate));

    /// <summary>Head + class token baseline on an already loaded backbone.</summary>
    public static VitHeadAndClassTokenTrainer VitHeadAndClassToken(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog, Backbone backbone,
        string labelColumnName = "Label", string imageColumnName = "Image", int epochs = 10, float learningRate = 1e-3f) =>
        catalog.VitHeadAndClassToken(Set(new VitHeadAndClassTokenTrainer.Options(), labelColumnName, imageColumnName, backbone ?? throw new ArgumentNullException(nameof(backbone)), null, null, epochs, learningRate));

    /// <summary>Head + class token baseline with every setting.</summary>
    public static VitHeadAndClassTokenTrainer VitHeadAndClassToken(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog, VitHeadAndClassTokenTrainer.Options options) =>
        new(MLContextBridge.EnvironmentOf(catalog), options);

    /// <summary>Baseline: full fine-tuning (every weight, on a private copy of the backbone).</summary>
    public static VitFullFineTuningTrainer VitFullFineTuning(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        string labelColumnName = "Label", string imageColumnName = "Image", string backbone = BackboneCache.DefaultModel, int? imageSize = null,
        int epochs = 10, float learningRate = 1e-4f) =>
        catalog.VitFullFineTuning(Set(new VitFullFineTuningTrainer.Options(), labelColumnName, imageColumnName, null, backbone, imageSize, epochs, learningRate));

    /// <summary>Full fine-tuning of a copy of an already loaded backbone.</summary>
    public static VitFullFineTuningTrainer VitFullFineTuning(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog, Backbone backbone,
        string labelColumnName = "Label", string imageColumnName = "Image", int epochs = 10, float learningRate = 1e-4f) =>
        catalog.VitFullFineTuning(Set(new VitFullFineTuningTrainer.Options(), labelColumnName, imageColumnName, backbone ?? throw new ArgumentNullException(nameof(backbone)), null, null, epochs, learningRate));

    /// <summary>Full fine-tuning with every setting.</summary>
    public static VitFullFineTuningTrainer VitFullFineTuning(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog, VitFullFineTuningTrainer.Options options) =>
        new(MLContextBridge.EnvironmentOf(catalog), options);

    /// <summary>Visual Query Tuning (Tu et al. 2023): <paramref name="queryTokens"/> read-only query tokens per layer and a head.</summary>
    public static VisualQueryTuningTrainer VisualQueryTuning(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        string labelColumnName = "Label", string imageColumnName = "Image", string backbone = BackboneCache.DefaultModel, int? imageSize = null,
        int queryTokens = 1, int epochs = 10, float learningRate = 1e-3f) =>
        catalog.VisualQueryTuning(Set(new VisualQueryTuningTrainer.Options { QueryTokens = queryTokens }, labelColumnName, imageColumnName, null, backbone, imageSize, epochs, learningRate));

    /// <summary>Visual Query Tuning on an already loaded backbone.</summary>
    public static VisualQueryTuningTrainer VisualQueryTuning(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog, Backbone backbone,
        string labelColumnName = "Label", string imageColumnName = "Image", int queryTokens = 1, int epochs = 10, float learningRate = 1e-3f) =>
        catalog.VisualQueryTuning(Set(new VisualQueryTuningTrainer.Options { QueryTokens = queryTokens }, labelColumnName, imageColumnName, backbone ?? throw new ArgumentNullException(nameof(backbone)), null, null, epochs, learningRate));

    /// <summary>Visual Query Tuning with every setting.</summary>
    public static VisualQueryTuningTrainer VisualQueryTuning(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog, VisualQueryTuningTrainer.Options options) =>
        new(MLContextBridge.EnvironmentOf(catalog), options);

    /// <summary>A classifier saved with <see cref="VitClassifierTransformer.SaveAdapter"/> (or any adapter folder of the engine/CLI),
    /// on an already loaded backbone (it must be the one the adapter was trained on); <paramref name="compute"/>: the backend that
    /// scores it (default: the managed engine; an adapter trained on any backend serves on any other).</summary>
    public static VitClassifierTransformer LoadMemoryTokens(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog, string directory, Backbone backbone,
        ComputeOptions? compute = null) =>
        VitClassifierTransformer.Load(directory, backbone ?? throw new ArgumentNullException(nameof(backbone)), null, compute);

    /// <summary>A classifier saved with <see cref="VitClassifierTransformer.SaveAdapter"/>, on the checkpoint at
    /// <paramref name="backbonePath"/> (null: the path or model id the adapter records), loaded through <see cref="BackboneCache"/>;
    /// <paramref name="compute"/>: the backend that scores it (default: the managed engine).</summary>
    public static VitClassifierTransformer LoadMemoryTokens(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog, string directory, string? backbonePath = null,
        ComputeOptions? compute = null) =>
        VitClassifierTransformer.Load(directory, null, backbonePath, compute);

    static TOptions Set<TOptions>(TOptions o, string label, string image, Backbone? backbone, string? path, int? imageSize, int epochs, float learningRate)
        where TOptions : VitTuningOptionsBase
    {
        o.LabelColumnName = label; o.ImageColumnName = image; o.Backbone = backbone; o.BackbonePath = path; o.ImageSize = imageSize;
        o.Epochs = epochs; o.LearningRate = learningRate;
        return o;
    }
}
