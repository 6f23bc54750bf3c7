using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.MemoryTokens.ML.Persistence;
using MLNet.MemoryTokens.ML.Scoring;

namespace MLNet.MemoryTokens.ML;

/// <summary>What every image-scoring transformer of this package shares: it adds the columns its scorer computes — lazily in
/// batches for <see cref="ITransformer.Transform"/>, row by row (same values) for <c>PredictionEngine</c> — answers
/// <c>mlContext.Model.Save</c> with directions, and saves itself as a folder for <c>mlContext.Model.SaveWithAdapters</c>.</summary>
/// <remarks>ML.NET's own <c>RowToRowTransformerBase</c> cannot be derived from outside ML.NET (its constructor and
/// <c>MakeRowMapper</c> are <c>private protected</c>, and <c>IRowMapper</c> is internal), so this base implements
/// <see cref="ITransformer"/> itself, with a <see cref="ScoredDataView"/> and a <see cref="ScoringRowMapper"/>.</remarks>
public abstract class ImageScoringTransformer : ITransformer, ISavableComponent
{
    private protected ImageScoringTransformer() { }

    /// <summary>The columns this transformer adds and how one batch of images fills them.</summary>
    private protected abstract ImageScorer Scorer { get; }

    /// <summary>The kind its saved folder is recorded as (which loader reads it back).</summary>
    private protected abstract string ComponentKind { get; }

    /// <summary>Writes this component's folder (what <c>SaveWithAdapters</c> stores and its loader reads).</summary>
    private protected abstract void SaveTo(string directory);

    /// <summary>How a user saves this component alone, for the message <c>mlContext.Model.Save</c> answers with.</summary>
    private protected abstract string SaveMethod { get; }

    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => Scorer.OutputSchema(inputSchema);
    public IDataView Transform(IDataView input) => new ScoredDataView(input, Scorer);
    public bool IsRowToRowMapper => true;
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => new ScoringRowMapper(inputSchema, Scorer);
    void ICanSaveModel.Save(ModelSaveContext ctx) => throw ModelSaveRefusal.For(GetType().Name, SaveMethod);

    string ISavableComponent.ComponentKind => ComponentKind;
    void ISavableComponent.SaveTo(string directory) => SaveTo(directory);
}
