using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.MemoryTokens.ML.Data;

namespace MLNet.MemoryTokens.ML.Scoring;

/// <summary>The lazy output of our transformers' <c>Transform</c>: the input view plus the scorer's columns. A cursor that
/// needs an output column pulls up to <see cref="ImageScorer.BatchSize"/> rows from the input, runs one batched forward
/// pass, then serves those rows one by one (their pass-through columns from a <see cref="ColumnCache"/>); a cursor that
/// needs none of our columns is the input cursor, untouched.</summary>
internal sealed class ScoredDataView : IDataView
{
    readonly IDataView _input;
    readonly ImageScorer _scorer;
    readonly int _imageIndex;

    public ScoredDataView(IDataView input, ImageScorer scorer)
    {
        _input = input; _scorer = scorer;
        Schema = scorer.OutputSchema(input.Schema);
        _imageIndex = scorer.Input.Bind(input.Schema).Column.Index;
    }

    public DataViewSchema Schema { get; }
    public bool CanShuffle => _input.CanShuffle;
    public long? GetRowCount() => _input.GetRowCount();

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        int inputCount = _input.Schema.Count;
        var needed = columnsNeeded.Select(c => c.Index).ToHashSet();
        var outputs = Enumerable.Range(0, _scorer.Outputs.Count).Select(o => needed.Contains(inputCount + o)).ToArray();
        var inputColumns = needed.Where(i => i < inputCount).ToHashSet();
        bool scoring = outputs.Any(a => a);
        if (scoring) inputColumns.Add(_imageIndex);
        var cursor = _input.GetRowCursor(inputColumns.Select(i => _input.Schema[i]), rand);
        return scoring ? new BatchCursor(this, cursor, inputColumns, outputs) : new PassThroughCursor(Schema, cursor);
    }

    // One cursor: the forward pass is already parallel inside, and the model serialises callers anyway.
    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
        [GetRowCursor(columnsNeeded, rand)];

    internal static InvalidOperationException WrongType<T>(DataViewSchema.Column column) =>
        new($"Invalid TValue in GetGetter for column '{column.Name}': '{typeof(T)}', expected type: '{column.Type.RawType}'.");

    /// <summary>Our schema over an input cursor, when none of our columns is needed (input indices are ours too).</summary>
    sealed class PassThroughCursor(DataViewSchema schema, DataViewRowCursor input) : DataViewRowCursor
    {
        public override DataViewSchema Schema => schema;
        public override long Position => input.Position;
        public override long Batch => input.Batch;
        public override bool MoveNext() => input.MoveNext();
        public override ValueGetter<DataViewRowId> GetIdGetter() => input.GetIdGetter();
        public override bool IsColumnActive(DataViewSchema.Column column) => column.Index < input.Schema.Count && input.IsColumnActive(input.Schema[column.Index]);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (column.Index >= input.Schema.Count) throw new InvalidOperationException($"Column '{column.Name}' was not requested when the cursor was created.");
            return input.GetGetter<TValue>(input.Schema[column.Index]);
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing) input.Dispose();
            base.Dispose(disposing);
        }
    }

    /// <summary>Reads a batch ahead, scores it in one pass, serves it row by row.</summary>
    sealed class BatchCursor : DataViewRowCursor
    {
        readonly ScoredDataView _view;
        readonly DataViewRowCursor _input;
        readonly ColumnCache?[] _caches;          // by input column index; null when inactive
        readonly bool[] _outputs;                 // by output column
        readonly OutputBuffers _values;
        readonly ValueGetter<DataViewRowId> _inputId;
        readonly DataViewRowId[] _ids;
        int _count, _index = -1;
        long _position = -1;
        bool _done;

        public BatchCursor(ScoredDataView view, DataViewRowCursor input, ISet<int> inputColumns, bool[] outputs)
        {
            _view = view; _input = input; _outputs = outputs;
            int capacity = view._scorer.BatchSize;
            _caches = new ColumnCache?[input.Schema.Count];
            foreach (int i in inputColumns) _caches[i] = ColumnCache.Create(input, input.Schema[i], capacity);
            _values = new OutputBuffers(view._scorer.Outputs, capacity);
            _inputId = input.GetIdGetter();
            _ids = new DataViewRowId[capacity];
        }

        public override DataViewSchema Schema => _view.Schema;
        public override long Position => _position;
        public override long Batch => 0;

        public override bool MoveNext()
        {
            if (_index + 1 < _count) { _index++; _position++; return true; }
            if (_done || !Fill()) { _done = true; _index = _count = 0; return false; }
            _index = 0; _position++;
            return true;
        }

        bool Fill()
        {
            int n = 0, capacity = _ids.Length;
            while (n < capacity && _input.MoveNext())
            {
                foreach (var cache in _caches) cache?.Capture(n);
                _inputId(ref _ids[n]);
                n++;
            }
            _count = n;
            if (n == 0) return false;
            var image = _caches[_view._imageIndex]!;
            _view._scorer.Score(image.Boxed, n, _values);
            return true;
        }

        int Current => _index >= 0 && _index < _count ? _index : throw new InvalidOperationException("The cursor is not on a row (call MoveNext first).");

        public override ValueGetter<DataViewRowId> GetIdGetter() => (ref DataViewRowId id) => id = _ids[Current];

        public override bool IsColumnActive(DataViewSchema.Column column)
        {
            int inputs = _caches.Length;
            return column.Index < inputs ? _caches[column.Index] is not null : _outputs[column.Index - inputs];
        }

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            int inputs = _caches.Length;
            if (column.Index < inputs)
            {
                var cache = _caches[column.Index] ?? throw new InvalidOperationException($"Column '{column.Name}' was not requested when the cursor was created.");
                return cache.Getter(() => Current) as ValueGetter<TValue> ?? throw WrongType<TValue>(column);
            }
            int o = column.Index - inputs;
            if (!_outputs[o]) throw new InvalidOperationException($"Column '{column.Name}' was not requested when the cursor was created.");
            return OutputGetters.Create<TValue>(_view._scorer.Outputs[o], _values, o, () => Current) ?? throw WrongType<TValue>(column);
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing) _input.Dispose();
            base.Dispose(disposing);
        }
    }
}
