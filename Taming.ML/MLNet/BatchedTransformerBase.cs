using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;

namespace Taming.ML.MLNet;

/// <summary>
/// The common part of Taming.ML's transformers: a lazy, batched <see cref="Transform"/>, a row-at-a-time
/// mapper for prediction engines, and saving through <see cref="ModelSaveContext"/> so that
/// <c>mlContext.Model.Save</c> stores everything and <c>mlContext.Model.Load</c> restores it.
/// </summary>
public abstract class BatchedTransformerBase : ITransformer
{
    private protected BatchedTransformerBase(IHostEnvironment env, string name)
    {
        Host = env.Register(name);
    }

    private protected IHost Host { get; }

    private protected abstract IBatchMapper MakeMapper(DataViewSchema inputSchema);

    private protected abstract void SaveModel(ModelSaveContext ctx);

    /// <inheritdoc />
    public bool IsRowToRowMapper => true;

    /// <inheritdoc />
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) =>
        BatchedDataView.OutputSchema(inputSchema, MakeMapper(inputSchema).OutputColumns);

    /// <inheritdoc />
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => new SingleRowMapper(inputSchema, MakeMapper(inputSchema));

    /// <summary>Adds the output columns. Lazy: rows are computed in batches as a cursor reads them.</summary>
    public IDataView Transform(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return new BatchedDataView(input, MakeMapper(input.Schema));
    }

    void ICanSaveModel.Save(ModelSaveContext ctx)
    {
        ctx.CheckAtModel();
        SaveModel(ctx);
    }
}
