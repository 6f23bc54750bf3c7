namespace MLNet.MemoryTokens.ML.Persistence;

/// <summary>A transformer of this package that saves itself into a folder (and that <see cref="PipelinePersistence"/> can load back).</summary>
internal interface ISavableComponent
{
    /// <summary>"classifier", "vqt-featurizer" or "multi-task": which loader reads the folder.</summary>
    string ComponentKind { get; }

    void SaveTo(string directory);
}
