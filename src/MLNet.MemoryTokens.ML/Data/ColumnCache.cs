using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNet.MemoryTokens.ML.Data;

/// <summary>Values of one input column for a block of rows, so a cursor can read a batch ahead and still serve every
/// row's pass-through columns after the input cursor has moved on.</summary>
/// <remarks>Vectors are deep-copied (a getter may reuse its buffer) and text is copied to a string; other values — numbers,
/// keys, <see cref="MLImage"/> references — are kept as they are. The getter is always called with a fresh destination,
/// so LoadImages hands over a new image rather than disposing the previous row's.</remarks>
internal abstract class ColumnCache
{
    public static ColumnCache Create(DataViewRow row, DataViewSchema.Column column, int capacity)
    {
        var raw = column.Type.RawType;
        var type = raw.IsGenericType && raw.GetGenericTypeDefinition() == typeof(VBuffer<>) ? typeof(VectorCache<>).MakeGenericType(raw.GetGenericArguments()[0])
            : raw == typeof(ReadOnlyMemory<char>) ? typeof(TextCache)
            : typeof(ValueCache<>).MakeGenericType(raw);
        return (ColumnCache)Activator.CreateInstance(type, row, column, capacity)!;
    }

    /// <summary>Reads the input row's current value into <paramref name="slot"/>.</summary>
    public abstract void Capture(int slot);

    /// <summary>The value in a slot, boxed (what the scorer preprocesses).</summary>
    public abstract object? Boxed(int slot);

    /// <summary>A getter that serves whichever slot <paramref name="slot"/> names when it is called.</summary>
    public abstract Delegate Getter(Func<int> slot);

    sealed class ValueCache<T>(DataViewRow row, DataViewSchema.Column column, int capacity) : ColumnCache
    {
        readonly ValueGetter<T> _get = row.GetGetter<T>(column);
        readonly T[] _values = new T[capacity];

        public override void Capture(int slot)
        {
            T value = default!;
            _get(ref value);
            _values[slot] = value;
        }

        public override object? Boxed(int slot) => _values[slot];
        public override Delegate Getter(Func<int> slot) => (ValueGetter<T>)((ref T dst) => dst = _values[slot()]);
    }

    sealed class VectorCache<T>(DataViewRow row, DataViewSchema.Column column, int capacity) : ColumnCache
    {
        readonly ValueGetter<VBuffer<T>> _get = row.GetGetter<VBuffer<T>>(column);
        readonly VBuffer<T>[] _values = new VBuffer<T>[capacity];
        VBuffer<T> _scratch;

        public override void Capture(int slot)
        {
            _get(ref _scratch);
            _scratch.CopyTo(ref _values[slot]);
        }

        public override object? Boxed(int slot) => _values[slot];
        public override Delegate Getter(Func<int> slot) => (ValueGetter<VBuffer<T>>)((ref VBuffer<T> dst) => _values[slot()].CopyTo(ref dst));
    }

    sealed class TextCache(DataViewRow row, DataViewSchema.Column column, int capacity) : ColumnCache
    {
        readonly ValueGetter<ReadOnlyMemory<char>> _get = row.GetGetter<ReadOnlyMemory<char>>(column);
        readonly ReadOnlyMemory<char>[] _values = new ReadOnlyMemory<char>[capacity];
        ReadOnlyMemory<char> _scratch;

        public override void Capture(int slot)
        {
            _get(ref _scratch);
            _values[slot] = _scratch.ToString().AsMemory();
        }

        public override object? Boxed(int slot) => _values[slot];
        public override Delegate Getter(Func<int> slot) => (ValueGetter<ReadOnlyMemory<char>>)((ref ReadOnlyMemory<char> dst) => dst = _values[slot()]);
    }
}
