using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNet.MemoryTokens.ML.Scoring;

/// <summary>An output column a scorer adds: a float vector of fixed length, or (when <see cref="IsKey"/>) a key.</summary>
internal sealed record OutputColumn(string Name, DataViewType Type, DataViewSchema.Annotations Annotations)
{
    public bool IsKey => Type is KeyDataViewType;
    public int Length => Type is VectorDataViewType v ? v.Size : 1;
}

/// <summary>Output values of one batch: per output column, <c>capacity × length</c> floats or <c>capacity</c> keys.</summary>
internal sealed class OutputBuffers
{
    public OutputBuffers(IReadOnlyList<OutputColumn> columns, int capacity)
    {
        Floats = columns.Select(c => c.IsKey ? [] : new float[capacity * c.Length]).ToArray();
        Keys = columns.Select(c => c.IsKey ? new uint[capacity] : []).ToArray();
    }

    public float[][] Floats { get; }
    public uint[][] Keys { get; }
}

/// <summary>Getters over a scorer's output buffers.</summary>
internal static class OutputGetters
{
    /// <summary>A getter of output <paramref name="index"/> at the row <paramref name="row"/> names, or null when
    /// <typeparamref name="TValue"/> is not the column's raw type.</summary>
    public static ValueGetter<TValue>? Create<TValue>(OutputColumn column, OutputBuffers values, int index, Func<int> row)
    {
        if (column.IsKey)
        {
            var keys = values.Keys[index];
            return (ValueGetter<uint>)((ref uint dst) => dst = keys[row()]) as ValueGetter<TValue>;
        }
        var floats = values.Floats[index];
        int length = column.Length;
        return (ValueGetter<VBuffer<float>>)((ref VBuffer<float> dst) =>
        {
            var editor = VBufferEditor.Create(ref dst, length);
            floats.AsSpan(row() * length, length).CopyTo(editor.Values);
            dst = editor.Commit();
        }) as ValueGetter<TValue>;
    }
}
