using Microsoft.ML.Data;
using MLNet.MemoryTokens.ML.Persistence;
using MLNet.MemoryTokens.ML;
using MLNet.MemoryTokens.Model;

namespace Microsoft.ML;

/// <summary>Saving and loading whole pipelines that contain MLNet.MemoryTokens components (which <c>mlContext.Model.Save</c>
/// cannot hold: ML.NET's format only loads components built into ML.NET).</summary>
public static class MemoryTokensModelCatalog
{
    /// <summary>Saves <paramref name="model"/> as one zip: its ML.NET parts in ML.NET's own format (via
    /// <c>mlContext.Model.Save</c>), our components as adapter folders. The backbone weights are not included (except
    /// after full fine-tuning); loading finds the backbone again.</summary>
    public static void SaveWithAdapters(this ModelOperationsCatalog catalog, ITransformer model, DataViewSchema inputSchema, string filePath) =>
        PipelinePersistence.Save(catalog, model, inputSchema, filePath);

    /// <summary>Loads a model written by <see cref="SaveWithAdapters"/>. Our components run on <paramref name="backbone"/>
    /// when given, else on <paramref name="backbonePath"/>, else on the checkpoint path or model id their adapters record
    /// (loaded once through <c>BackboneCache</c>).</summary>
    public static TransformerChain<ITransformer> LoadWithAdapters(this ModelOperationsCatalog catalog, string filePath, out DataViewSchema inputSchema,
        Backbone? backbone = null, string? backbonePath = null) =>
        PipelinePersistence.Load(catalog, filePath, out inputSchema, backbone, backbonePath, Loaders);

    /// <summary>Every component kind this package saves, and how its folder is read back.</summary>
    static readonly Dictionary<string, ComponentLoader> Loaders = new()
    {
        [VitClassifierTransformer.Kind] = (directory, backbone, path) => VitClassifierTransformer.Load(directory, backbone, path),
        [VqtFeaturizerTransformer.Kind] = (directory, backbone, path) => VqtFeaturizerTransformer.Load(directory, backbone, path),
        [MultiTaskScoringTransformer.Kind] = MultiTaskScoringTransformer.Load,
    };
}
