using Microsoft.ML;
using Microsoft.ML.Data;

namespace Taming.ML.MLNet;

/// <summary>
/// The lazy <see cref="IDataView"/> returned by batched transformers: the input's columns plus the mapper's
/// outputs. A cursor drives two input cursors over the same rows: a leader that reads the mapper's inputs a
/// batch ahead (images on several threads, <see cref="ParallelCursor"/>), and a follower that serves the pass-through
/// columns at the current row. Nothing is computed until a row's output is read.
/// It is an ML.NET data transform over its input, so that tools that walk a pipeline's views back to its source
/// see it, as they see ML.NET's own stages: <c>ConvertToOnnx</c> then refuses a pipeline with a Taming.ML stage
/// ("can not be fully converted"), where it otherwise took the view for the source and wrote an ONNX model that
/// reads the tokens as an input.
/// </summary>
internal sealed class BatchedDataView : IDataTransform
{
    private readonly IDataView input;
    private readonly IBatchMapper mapper;

    public BatchedDataView(IDataView input, IBatchMapper mapper)
    {
        this.input = input;
        this.mapper = mapper;
        Schema = OutputSchema(input.Schema, mapper.OutputColumns);
    }

    public DataViewSchema Schema { get; }

    /// <summary>The input view (ML.NET's <see cref="IDataTransform"/>).</summary>
    public IDataView Source => input;

    // Legacy ML.NET code saves a pipeline by its views; Taming.ML's stages save as transformers.
    void ICanSaveModel.Save(ModelSaveContext ctx) => throw new NotSupportedException(
        "A Taming.ML stage's output view cannot be saved on its own: save the fitted transformer (mlContext.Model.Save).");

    // Both cursors must see the same row order, so rows are never shuffled here.
    public bool CanShuffle => false;

    public long? GetRowCount() => input.GetRowCount();

    /// <summary>The input schema with the outputs appended (hiding input columns of the same name).</summary>
    public static DataViewSchema OutputSchema(DataViewSchema input, IReadOnlyList<DataViewSchema.DetachedColumn> outputs)
    {
        var builder = new DataViewSchema.Builder();
        builder.AddColumns(input);
        foreach (var c in outputs) builder.AddColumn(c.Name, c.Type, c.Annotations);
        return builder.ToSchema();
    }

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        var needed = columnsNeeded.Select(c => c.Index).ToHashSet();
        int inputCount = input.Schema.Count;
        var passThrough = input.Schema.Where(c => needed.Contains(c.Index)).ToList();
        bool anyOutput = needed.Any(i => i >= inputCount);
        var follower = input.GetRowCursor(passThrough);
        var leader = anyOutput ? ParallelCursor.Create(input, mapper.InputColumns) : null;
        return new Cursor(this, follower, leader, needed);
    }

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
    {
        if (!mapper.MapsRowByRow || n < 2) return new[] { GetRowCursor(columnsNeeded, rand) };
        var rows = new SingleRowMapper(input.Schema, mapper);
        var needed = columnsNeeded.ToList();
        return input.GetRowCursorSet(rows.GetDependencies(needed), n, rand).Select(cursor => rows.GetCursor(cursor, needed)).ToArray();
    }

    private sealed class Cursor : DataViewRowCursor
    {
        private readonly BatchedDataView parent;
        private readonly DataViewRowCursor follower;
        private readonly DataViewRowCursor? leader;
        private readonly IBatchState? state;
        // The leader's row ids of the batch, which the follower's must match: rows served in another order by the
        // second cursor would pair the outputs with another row's pass-through columns.
        private readonly DataViewRowId[] leaderIds = Array.Empty<DataViewRowId>();
        private readonly ValueGetter<DataViewRowId>? leaderId, followerId;
        private readonly HashSet<int> active;
        private int slot = -1, filled, computedFor = -1, batchNumber;
        private long position = -1;

        public Cursor(BatchedDataView parent, DataViewRowCursor follower, DataViewRowCursor? leader, HashSet<int> active)
        {
            this.parent = parent;
            this.follower = follower;
            this.leader = leader;
            this.active = active;
            if (leader == null) return;
            state = parent.mapper.CreateState(leader, parent.mapper.BatchSize);
            leaderIds = new DataViewRowId[parent.mapper.BatchSize];
            (leaderId, followerId) = (leader.GetIdGetter(), follower.GetIdGetter());
        }

        public override DataViewSchema Schema => parent.Schema;
        public override long Position => position;
        public override long Batch => 0;

        public override bool MoveNext()
        {
            if (!follower.MoveNext()) return false;
            position++;
            if (leader == null) return true;
            if (++slot >= filled)
            {
                slot = 0;
                filled = 0;
                while (filled < parent.mapper.BatchSize && leader.MoveNext())
                {
                    leaderId!(ref leaderIds[filled]);
                    state!.ReadRow(filled++);
                }
                batchNumber++;
            }
            DataViewRowId id = default;
            followerId!(ref id);
            if (slot >= filled || !id.Equals(leaderIds[slot]))
                throw new InvalidOperationException(
                    "The input data view returned different rows to two cursors over it (this transform reads its input a " +
                    "batch ahead through a second cursor). Give it rows in the same order to every cursor: cache the data " +
                    "(mlContext.Data.Cache) before the stage that makes the transform's input column.");
            return true;
        }

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (!IsColumnActive(column)) throw new InvalidOperationException($"Column '{column.Name}' is not active in this cursor.");
            int inputCount = parent.input.Schema.Count;
            if (column.Index < inputCount) return follower.GetGetter<TValue>(follower.Schema[column.Index]);
            var getter = state!.MakeGetter(column.Index - inputCount, CurrentSlot);
            return getter as ValueGetter<TValue>
                   ?? throw new InvalidOperationException($"Column '{column.Name}' is of type {column.Type}, not {typeof(TValue).Name}.");
        }

        private int CurrentSlot()
        {
            if (position < 0) throw new InvalidOperationException("The cursor is not on a row; call MoveNext first.");
            if (computedFor != batchNumber)
            {
                state!.Compute(filled);
                computedFor = batchNumber;
            }
            return slot;
        }

        public override ValueGetter<DataViewRowId> GetIdGetter() => follower.GetIdGetter();

        public override bool IsColumnActive(DataViewSchema.Column column) => active.Contains(column.Index);

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                state?.Dispose();
                leader?.Dispose();
                follower.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}
