using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNet.MemoryTokens.ML.Schema;

/// <summary>The annotations ML.NET's multiclass scorers put on Score and PredictedLabel, so Evaluate, MapKeyToValue and
/// AutoML treat our columns like theirs: Score has SlotNames (class names in key order); PredictedLabel has the label's
/// KeyValues; both say which scorer made them (ScoreColumnKind) and what they are (ScoreValueKind).</summary>
internal static class ScoreColumns
{
    public const string SlotNames = "SlotNames";
    public const string KeyValues = "KeyValues";
    public const string ScoreColumnKind = "ScoreColumnKind";
    public const string ScoreValueKind = "ScoreValueKind";
    public const string MulticlassClassification = "MulticlassClassification";

    static readonly (string, DataViewType)[] ScoreKinds = [(ScoreColumnKind, TextDataViewType.Instance), (ScoreValueKind, TextDataViewType.Instance)];

    /// <summary>Annotations of a Score column: slot names (when given) and the scorer kinds.</summary>
    public static DataViewSchema.Annotations Score(IReadOnlyList<string>? slotNames)
    {
        var builder = new DataViewSchema.Annotations.Builder();
        if (slotNames is not null) AddSlotNames(builder, slotNames);
        AddKinds(builder, "Score");
        return builder.ToAnnotations();
    }

    /// <summary>Annotations of a PredictedLabel column: the label's key values and the scorer kinds.</summary>
    public static DataViewSchema.Annotations PredictedLabel(DataViewSchema.Annotations keyValues)
    {
        var builder = new DataViewSchema.Annotations.Builder();
        builder.Add(keyValues, kind => kind == KeyValues);
        AddKinds(builder, "PredictedLabel");
        return builder.ToAnnotations();
    }

    public static void AddSlotNames(DataViewSchema.Annotations.Builder builder, IReadOnlyList<string> names)
    {
        var values = names.Select(n => n.AsMemory()).ToArray();
        builder.Add(SlotNames, new VectorDataViewType(TextDataViewType.Instance, values.Length),
            (ref VBuffer<ReadOnlyMemory<char>> dst) => new VBuffer<ReadOnlyMemory<char>>(values.Length, values).CopyTo(ref dst));
    }

    static void AddKinds(DataViewSchema.Annotations.Builder builder, string valueKind)
    {
        builder.Add(ScoreColumnKind, TextDataViewType.Instance, (ref ReadOnlyMemory<char> dst) => dst = MulticlassClassification.AsMemory());
        builder.Add(ScoreValueKind, TextDataViewType.Instance, (ref ReadOnlyMemory<char> dst) => dst = valueKind.AsMemory());
    }

    // Estimator-time shapes of the same columns.
    public static SchemaShape.Column ScoreShape(string name, bool slotNames) =>
        SchemaShapes.Vector(name, (slotNames ? [(SlotNames, new VectorDataViewType(TextDataViewType.Instance, 1))] : Array.Empty<(string, DataViewType)>()).Concat(ScoreKinds));

    public static SchemaShape.Column PredictedLabelShape(string name, SchemaShape.Column label) =>
        SchemaShapes.Key(name, SchemaShapes.AnnotationTypes(label, KeyValues).Concat(ScoreKinds));
}
