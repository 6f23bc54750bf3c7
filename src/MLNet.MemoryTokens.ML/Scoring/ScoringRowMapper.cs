using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.MemoryTokens.ML.Data;

namespace MLNet.MemoryTokens.ML.Scoring;

/// <summary>The per-row form of a scorer, for <c>PredictionEngine</c> and row-to-row chains: an output value is computed
/// (a batch of one) the first time it is read for a row, and reused for that row.</summary>
internal sealed class ScoringRowMapper : IRowToRowMapper
{
    readonly ImageScorer _scorer;
    readonly DataViewSchema.Column _image;

    public ScoringRowMapper(DataViewSchema inputSchema, ImageScorer scorer)
    {
        _scorer = scorer;
        InputSchema = inputSchema;
        OutputSchema = scorer.OutputSchema(inputSchema);
        _image = scorer.Input.Bind(inputSchema).Column;
    }

    public DataViewSchema InputSchema { get; }
    public DataViewSchema OutputSchema { get; }

    public IEnumerable<DataViewSchema.Column> GetDependencies(IEnumerable<DataViewSchema.Column> dependingColumns)
    {
        var needed = new HashSet<int>();
        foreach (var column in dependingColumns)
            needed.Add(column.Index < InputSchema.Count ? column.Index : _image.Index);
        return needed.Select(i => InputSchema[i]);
    }

    public DataViewRow GetRow(DataViewRow input, IEnumerable<DataViewSchema.Column> activeColumns) =>
        new ScoredRow(this, input, activeColumns.Select(c => c.Index).ToHashSet());

    sealed class ScoredRow : DataViewRow
    {
        readonly ScoringRowMapper _mapper;
        readonly DataViewRow _input;
        readonly HashSet<int> _active;
        readonly OutputBuffers _values;
        readonly ColumnCache? _image;
        long _scored = -1;

        public ScoredRow(ScoringRowMapper mapper, DataViewRow input, HashSet<int> active)
        {
            _mapper = mapper; _input = input; _active = active;
            _values = new OutputBuffers(mapper._scorer.Outputs, 1);
            if (active.Any(i => i >= mapper.InputSchema.Count)) _image = ColumnCache.Create(input, input.Schema[mapper._image.Index], 1);
        }

        public override DataViewSchema Schema => _mapper.OutputSchema;
        public override long Position => _input.Position;
        public override long Batch => _input.Batch;
        public override ValueGetter<DataViewRowId> GetIdGetter() => _input.GetIdGetter();

        public override bool IsColumnActive(DataViewSchema.Column column) =>
            column.Index < _mapper.InputSchema.Count ? _input.IsColumnActive(_input.Schema[column.Index]) : _active.Contains(column.Index);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            int inputs = _mapper.InputSchema.Count;
            if (column.Index < inputs) return _input.GetGetter<TValue>(_input.Schema[column.Index]);
            if (!_active.Contains(column.Index)) throw new InvalidOperationException($"Column '{column.Name}' is not active.");
            int o = column.Index - inputs;
            var getter = OutputGetters.Create<TValue>(_mapper._scorer.Outputs[o], _values, o, () => 0) ?? throw ScoredDataView.WrongType<TValue>(column);
            return (ref TValue value) => { EnsureScored(); getter(ref value); };
        }

        void EnsureScored()
        {
            if (_scored == _input.Position) return;
            _image!.Capture(0);
            _mapper._scorer.Score(_image.Boxed, 1, _values);
            _scored = _input.Position;
        }
    }
}
