using Microsoft.ML;
using Microsoft.ML.Data;

namespace Taming.ML.MLNet;

/// <summary>
/// The row-at-a-time form of a <see cref="IBatchMapper"/> (batches of one), which ML.NET's
/// <c>PredictionEngine</c> uses.
/// </summary>
internal sealed class SingleRowMapper : IRowToRowMapper
{
    private readonly IBatchMapper mapper;

    public SingleRowMapper(DataViewSchema inputSchema, IBatchMapper mapper)
    {
        InputSchema = inputSchema;
        this.mapper = mapper;
        OutputSchema = BatchedDataView.OutputSchema(inputSchema, mapper.OutputColumns);
    }

    public DataViewSchema InputSchema { get; }
    public DataViewSchema OutputSchema { get; }

    public IEnumerable<DataViewSchema.Column> GetDependencies(IEnumerable<DataViewSchema.Column> dependingColumns)
    {
        var list = dependingColumns.ToList();
        var inputs = list.Where(c => c.Index < InputSchema.Count).Select(c => InputSchema[c.Index]);
        return list.Any(c => c.Index >= InputSchema.Count) ? inputs.Concat(mapper.InputColumns).Distinct() : inputs;
    }

    public DataViewRow GetRow(DataViewRow input, IEnumerable<DataViewSchema.Column> activeColumns) =>
        new Row(this, input, activeColumns.Select(c => c.Index).ToHashSet());

    /// <summary>A cursor that maps each row of <paramref name="input"/> as it comes (one of a cursor set).</summary>
    public DataViewRowCursor GetCursor(DataViewRowCursor input, IEnumerable<DataViewSchema.Column> activeColumns) =>
        new Cursor(input, GetRow(input, activeColumns));

    private sealed class Cursor(DataViewRowCursor input, DataViewRow row) : DataViewRowCursor
    {
        public override DataViewSchema Schema => row.Schema;
        public override long Position => input.Position;
        public override long Batch => input.Batch;
        public override bool MoveNext() => input.MoveNext();
        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column) => row.GetGetter<TValue>(column);
        public override ValueGetter<DataViewRowId> GetIdGetter() => input.GetIdGetter();
        public override bool IsColumnActive(DataViewSchema.Column column) => row.IsColumnActive(column);

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                row.Dispose();
                input.Dispose();
            }
            base.Dispose(disposing);
        }
    }

    private sealed class Row : DataViewRow
    {
        private readonly SingleRowMapper parent;
        private readonly DataViewRow input;
        private readonly HashSet<int> active;
        private IBatchState? state;
        private long computedAt = -1;

        public Row(SingleRowMapper parent, DataViewRow input, HashSet<int> active)
        {
            this.parent = parent;
            this.input = input;
            this.active = active;
        }

        public override DataViewSchema Schema => parent.OutputSchema;
        public override long Position => input.Position;
        public override long Batch => input.Batch;

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            int inputCount = parent.InputSchema.Count;
            if (column.Index < inputCount) return input.GetGetter<TValue>(input.Schema[column.Index]);
            state ??= parent.mapper.CreateState(input, 1);
            var getter = state.MakeGetter(column.Index - inputCount, () =>
            {
                if (computedAt != input.Position)
                {
                    state.ReadRow(0);
                    state.Compute(1);
                    computedAt = input.Position;
                }
                return 0;
            });
            return (ValueGetter<TValue>)getter;
        }

        public override ValueGetter<DataViewRowId> GetIdGetter() => input.GetIdGetter();
        public override bool IsColumnActive(DataViewSchema.Column column) => active.Contains(column.Index);

        protected override void Dispose(bool disposing)
        {
            if (disposing) state?.Dispose();
            base.Dispose(disposing);
        }
    }
}
