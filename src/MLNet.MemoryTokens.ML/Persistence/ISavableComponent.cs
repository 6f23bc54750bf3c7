using Microsoft.ML;
using MLNet.MemoryTokens.Model;

namespace MLNet.MemoryTokens.ML.Persistence;

/// <summary>Reads a component's saved folder back, on <paramref name="backbone"/> when given, else on
/// <paramref name="backbonePath"/>, else on the checkpoint its adapter records.</summary>
internal delegate ITransformer ComponentLoader(string folder, Backbone? backbone, string? backbonePath);

/// <summary>A transformer of this package that saves itself into a folder (and that <see cref="PipelinePersistence"/> can load back).</summary>
internal interface ISavableComponent
{
    /// <summary>Which loader reads the folder back (the catalog keeps one per kind).</summary>
    string ComponentKind { get; }

    void SaveTo(string directory);
}
