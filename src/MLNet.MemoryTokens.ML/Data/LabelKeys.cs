using System.Globalization;
using System.Reflection;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.MemoryTokens.ML.Schema;

namespace MLNet.MemoryTokens.ML.Data;

/// <summary>The label's key type as seen at training time: the class count and order (key k ↔ class k − 1), the key values
/// (typed, for PredictedLabel's annotation, so MapKeyToValue gives back the original labels) and their text (class names).</summary>
internal sealed class LabelKeys
{
    LabelKeys(KeyDataViewType type, DataViewSchema.Annotations keyValues, string[] names, bool hasKeyValues, string? valueType, string[]? values)
    {
        Type = type; KeyValueAnnotations = keyValues; ClassNames = names; HasKeyValues = hasKeyValues; ValueTypeName = valueType; Values = values;
    }

    /// <summary>The label column's key type; PredictedLabel gets this same type.</summary>
    public KeyDataViewType Type { get; }
    public int Count => (int)Type.Count;
    /// <summary>Class names in key order: the key values as text, else "0", "1", … .</summary>
    public string[] ClassNames { get; }
    public bool HasKeyValues { get; }
    /// <summary>The KeyValues annotation (empty when the label has none).</summary>
    public DataViewSchema.Annotations KeyValueAnnotations { get; }
    /// <summary>For persistence: the key values' item type ("Text", "Single", "Int32", …) and the values as invariant text (null when not savable).</summary>
    public string? ValueTypeName { get; }
    public string[]? Values { get; }

    /// <summary>Reads a label column's key type and key values (it must be a Key&lt;UInt32&gt; with 2 or more values).</summary>
    public static LabelKeys From(DataViewSchema.Column label)
    {
        if (label.Type is not KeyDataViewType key || key.RawType != typeof(uint))
            throw SchemaShapes.Mismatch(label.Name, "label", SchemaShapes.KeyLabelType, label.Type.ToString() ?? "");
        if (key.Count < 2 || key.Count > int.MaxValue)
            throw new ArgumentOutOfRangeException("inputSchema", $"The label column '{label.Name}' has {key.Count} classes; a classifier needs at least 2 (and a known count).");
        var annotation = label.Annotations.Schema.GetColumnOrNull(ScoreColumns.KeyValues);
        if (annotation?.Type is not VectorDataViewType { ItemType: PrimitiveDataViewType item } vector || vector.Size != (int)key.Count)
            return new LabelKeys(key, DataViewSchema.Annotations.Empty, Enumerable.Range(0, (int)key.Count).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToArray(), false, null, null);
        var text = (string[])typeof(LabelKeys).GetMethod(nameof(ReadAsText), BindingFlags.NonPublic | BindingFlags.Static)!
            .MakeGenericMethod(item.RawType).Invoke(null, [label.Annotations])!;
        var builder = new DataViewSchema.Annotations.Builder();
        builder.Add(label.Annotations, kind => kind == ScoreColumns.KeyValues);
        string? typeName = ValueTypes.FirstOrDefault(t => t.Raw == item.RawType).Name;
        return new LabelKeys(key, builder.ToAnnotations(), text, true, typeName, typeName is null ? null : text);
    }

    /// <summary>Rebuilds saved key values (see <see cref="ValueTypeName"/>); without values: plain keys 0..count−1.</summary>
    public static LabelKeys Restore(int count, string? valueTypeName, string[]? values, IReadOnlyList<string> classNames)
    {
        var type = new KeyDataViewType(typeof(uint), count);
        if (valueTypeName is null || values is null)
            return new LabelKeys(type, DataViewSchema.Annotations.Empty, classNames.ToArray(), false, null, null);
        if (values.Length != count) throw new InvalidDataException($"Saved label key values: {values.Length} values for {count} classes.");
        var builder = new DataViewSchema.Annotations.Builder();
        if (valueTypeName == "Text")
            Add(builder, TextDataViewType.Instance, values.Select(v => v.AsMemory()).ToArray());
        else
        {
            var (_, rawType, itemType) = ValueTypes.FirstOrDefault(t => t.Name == valueTypeName);
            if (rawType is null) throw new InvalidDataException($"Saved label key values have unknown type '{valueTypeName}'.");
            var parsed = Array.CreateInstance(rawType, count);
            for (int i = 0; i < count; i++) parsed.SetValue(Convert.ChangeType(values[i], rawType, CultureInfo.InvariantCulture), i);
            typeof(LabelKeys).GetMethod(nameof(Add), BindingFlags.NonPublic | BindingFlags.Static)!.MakeGenericMethod(rawType)
                .Invoke(null, [builder, itemType, parsed]);
        }
        return new LabelKeys(type, builder.ToAnnotations(), values, true, valueTypeName, values);
    }

    // Key value types that can be saved as invariant text and parsed back.
    static readonly (string Name, Type Raw, PrimitiveDataViewType Type)[] ValueTypes =
    [
        ("Text", typeof(ReadOnlyMemory<char>), TextDataViewType.Instance), ("Boolean", typeof(bool), BooleanDataViewType.Instance),
        ("Single", typeof(float), NumberDataViewType.Single), ("Double", typeof(double), NumberDataViewType.Double),
        ("SByte", typeof(sbyte), NumberDataViewType.SByte), ("Byte", typeof(byte), NumberDataViewType.Byte),
        ("Int16", typeof(short), NumberDataViewType.Int16), ("UInt16", typeof(ushort), NumberDataViewType.UInt16),
        ("Int32", typeof(int), NumberDataViewType.Int32), ("UInt32", typeof(uint), NumberDataViewType.UInt32),
        ("Int64", typeof(long), NumberDataViewType.Int64), ("UInt64", typeof(ulong), NumberDataViewType.UInt64),
    ];

    static void Add<T>(DataViewSchema.Annotations.Builder builder, PrimitiveDataViewType item, T[] values) =>
        builder.Add(ScoreColumns.KeyValues, new VectorDataViewType(item, values.Length),
            (ref VBuffer<T> dst) => new VBuffer<T>(values.Length, values).CopyTo(ref dst));

    static string[] ReadAsText<T>(DataViewSchema.Annotations annotations)
    {
        VBuffer<T> values = default;
        annotations.GetValue(ScoreColumns.KeyValues, ref values);
        return values.DenseValues().Select(v => v switch
        {
            ReadOnlyMemory<char> m => m.ToString(),
            IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
            _ => v?.ToString() ?? "",
        }).ToArray();
    }
}
