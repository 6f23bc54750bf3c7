namespace MLNet.MemoryTokens.ML.Persistence;

/// <summary>Our transformers' answer to <c>mlContext.Model.Save</c>.</summary>
/// <remarks>ML.NET's model format can only load components registered inside ML.NET (<c>[LoadableClass]</c> and
/// <c>ModelSaveContext</c>'s writers are internal), so a chain with one of our transformers cannot round-trip through it.
/// <c>TransformerChain.Save</c> calls each transformer's <see cref="Microsoft.ML.ICanSaveModel.Save"/>; ours throws this,
/// and the message says what to use instead.</remarks>
internal static class ModelSaveRefusal
{
    public static NotSupportedException For(string component, string saveMethod) => new(
        $"{component} cannot be saved by mlContext.Model.Save: ML.NET's model format only loads components built into ML.NET. " +
        "Save the whole model with mlContext.Model.SaveWithAdapters(model, inputSchema, path) and load it with " +
        $"mlContext.Model.LoadWithAdapters(path, out inputSchema), or save this component alone with {saveMethod}. " +
        "(When Save was given a file path, ML.NET had already created that file; it is incomplete.)");
}
