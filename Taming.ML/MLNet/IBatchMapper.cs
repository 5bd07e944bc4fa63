using Microsoft.ML;
using Microsoft.ML.Data;

namespace Taming.ML.MLNet;

/// <summary>
/// A column mapping that runs on batches of rows: the batched data view reads inputs row by row into slots,
/// computes the whole batch in one forward pass, then serves each row's outputs.
/// </summary>
internal interface IBatchMapper
{
    /// <summary>Input columns the mapping reads.</summary>
    IReadOnlyList<DataViewSchema.Column> InputColumns { get; }

    /// <summary>Columns the mapping adds.</summary>
    IReadOnlyList<DataViewSchema.DetachedColumn> OutputColumns { get; }

    /// <summary>Rows per forward pass.</summary>
    int BatchSize { get; }

    /// <summary>
    /// True for a mapping that gains nothing from batches (each row is computed alone, on the CPU): its view then splits
    /// into cursor sets as its input does, so that the stages after it read it on several threads.
    /// </summary>
    bool MapsRowByRow => false;

    /// <summary>Per-cursor state reading the inputs from <paramref name="row"/>.</summary>
    IBatchState CreateState(DataViewRow row, int capacity);
}

/// <summary>The buffers of one cursor: inputs of up to <c>capacity</c> rows, then their outputs.</summary>
internal interface IBatchState : IDisposable
{
    /// <summary>Copies the inputs of the row's current position into <paramref name="slot"/>.</summary>
    void ReadRow(int slot);

    /// <summary>Computes the outputs of slots 0 … count−1.</summary>
    void Compute(int count);

    /// <summary>A getter of output <paramref name="output"/> for the slot that <paramref name="slot"/> returns.</summary>
    Delegate MakeGetter(int output, Func<int> slot);
}
