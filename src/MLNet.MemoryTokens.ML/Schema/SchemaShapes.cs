using System.Reflection;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNet.MemoryTokens.ML.Schema;

/// <summary>Estimator-time schema work: finding and checking input columns, describing them in messages, and making the
/// <see cref="SchemaShape.Column"/>s our estimators add.</summary>
/// <remarks>
/// <see cref="SchemaShape.Column"/>'s constructor and <c>SchemaShape.Create</c> are internal to ML.NET. The public way to
/// obtain a column shape of a given type and annotations is to ask an estimator that adds such a column:
/// <c>CustomMapping</c> with an output <see cref="SchemaDefinition"/> whose one column carries the name, type and
/// annotation kinds we want. Shapes carry no sizes or values, so placeholder sizes and default annotation values are used.
/// </remarks>
internal static class SchemaShapes
{
    /// <summary>Raw types our output columns have (float vectors; key indices).</summary>
    public sealed class VectorRow { public VBuffer<float> Value { get; set; } }
    public sealed class KeyRow { public uint Value { get; set; } }
    public sealed class NoInput { }

    static readonly MLContext ShapeContext = new(seed: 0);
    static readonly MethodInfo AddDefaultMethod = typeof(SchemaShapes).GetMethod(nameof(AddDefaultAnnotation), BindingFlags.NonPublic | BindingFlags.Static)!;

    public static SchemaShape.Column? Find(SchemaShape shape, string name)
    {
        foreach (var column in shape)
            if (column.Name == name) return column;
        return null;
    }

    public static ArgumentOutOfRangeException Missing(string column, string role, string expected) =>
        new("inputSchema", $"Input column '{column}' ({role}) was not found; expected {expected}.");

    public static ArgumentOutOfRangeException Mismatch(string column, string role, string expected, string actual) =>
        new("inputSchema", $"Schema mismatch for {role} column '{column}': expected {expected}, got {actual}.");

    /// <summary>How ML.NET prints a column shape: Single, Key&lt;UInt32&gt;, Vector&lt;Single&gt;, VarVector&lt;Byte&gt;.</summary>
    public static string Describe(SchemaShape.Column column)
    {
        string item = column.IsKey ? $"Key<{column.ItemType}>" : column.ItemType.ToString() ?? "?";
        return column.Kind switch
        {
            SchemaShape.Column.VectorKind.Vector => $"Vector<{item}>",
            SchemaShape.Column.VectorKind.VariableVector => $"VarVector<{item}>",
            _ => item,
        };
    }

    public const string KeyLabelType = "Key<UInt32> (map the label with MapValueToKey)";

    /// <summary>Multiclass label: a scalar Key&lt;UInt32&gt;, as ML.NET's own multiclass trainers require.</summary>
    public static SchemaShape.Column CheckKeyLabel(SchemaShape input, string name)
    {
        var column = Find(input, name) ?? throw Missing(name, "label", KeyLabelType);
        if (!column.IsKey || column.Kind != SchemaShape.Column.VectorKind.Scalar || column.ItemType != NumberDataViewType.UInt32)
            throw Mismatch(name, "label", KeyLabelType, Describe(column));
        return column;
    }

    /// <summary>The input columns with <paramref name="added"/> appended (a same-named input column is replaced, as ML.NET does).</summary>
    public static SchemaShape Append(SchemaShape input, IEnumerable<SchemaShape.Column> added)
    {
        var columns = input.ToDictionary(c => c.Name);
        foreach (var column in added) columns[column.Name] = column;
        return new SchemaShape(columns.Values);
    }

    /// <summary>A float-vector column shape (known size) with the given annotation kinds and types.</summary>
    public static SchemaShape.Column Vector(string name, IEnumerable<(string Kind, DataViewType Type)> annotations) =>
        Make<VectorRow>(name, new VectorDataViewType(NumberDataViewType.Single, 1), annotations);

    /// <summary>A Key&lt;UInt32&gt; column shape with the given annotation kinds and types.</summary>
    public static SchemaShape.Column Key(string name, IEnumerable<(string Kind, DataViewType Type)> annotations) =>
        Make<KeyRow>(name, new KeyDataViewType(typeof(uint), 1), annotations);

    /// <summary>The annotation kinds and (placeholder-sized) types of an input column's shape, to carry over to an output.</summary>
    public static IEnumerable<(string Kind, DataViewType Type)> AnnotationTypes(SchemaShape.Column column, params string[] kinds)
    {
        foreach (var a in column.Annotations)
        {
            if (kinds.Length > 0 && !kinds.Contains(a.Name)) continue;
            DataViewType item = a.IsKey ? new KeyDataViewType(a.ItemType.RawType, 1) : a.ItemType;
            yield return (a.Name, a.Kind switch
            {
                SchemaShape.Column.VectorKind.Vector => new VectorDataViewType((PrimitiveDataViewType)item, 1),
                SchemaShape.Column.VectorKind.VariableVector => new VectorDataViewType((PrimitiveDataViewType)item),
                _ => item,
            });
        }
    }

    static SchemaShape.Column Make<TRow>(string name, DataViewType type, IEnumerable<(string Kind, DataViewType Type)> annotations) where TRow : class, new()
    {
        var definition = SchemaDefinition.Create(typeof(TRow));
        var column = definition[0];
        column.ColumnName = name;
        column.ColumnType = type;
        foreach (var (kind, annotationType) in annotations)
            AddDefaultMethod.MakeGenericMethod(annotationType.RawType).Invoke(null, [column, kind, annotationType]);
        lock (ShapeContext)
        {
            var estimator = ShapeContext.Transforms.CustomMapping<NoInput, TRow>(static (_, _) => { }, contractName: null, outputSchemaDefinition: definition);
            return Find(estimator.GetOutputSchema(new SchemaShape([])), name)!.Value;
        }
    }

    // A shape never reads annotation values, so the raw type's default stands in.
    static void AddDefaultAnnotation<T>(SchemaDefinition.Column column, string kind, DataViewType type) => column.AddAnnotation(kind, default(T)!, type);
}
