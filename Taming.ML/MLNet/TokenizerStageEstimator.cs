using Microsoft.ML;
using Microsoft.ML.Runtime;

namespace Taming.ML.MLNet;

/// <summary>
/// An estimator that applies a fitted tokenizer's networks to a column (decoding tokens, or tokenizing whole images):
/// nothing is trained, so <see cref="Fit"/> only checks the data.
/// </summary>
public abstract class TokenizerStageEstimator<TTransformer> : IEstimator<TTransformer> where TTransformer : ITransformer
{
    private protected TokenizerStageEstimator(IHostEnvironment env, string outputColumnName, string inputColumnName, VqganTokenizerTransformer tokenizer)
    {
        Env = env;
        OutputColumnName = outputColumnName;
        InputColumnName = inputColumnName;
        Tokenizer = tokenizer ?? throw new ArgumentNullException(nameof(tokenizer));
    }

    private protected IHostEnvironment Env { get; }
    private protected string OutputColumnName { get; }
    private protected string InputColumnName { get; }
    private protected VqganTokenizerTransformer Tokenizer { get; }

    /// <summary>Checks the input column and describes the column that will be added.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        var column = SchemaColumns.Find(inputSchema, InputColumnName);
        CheckInput(column);
        var result = inputSchema.ToDictionary(c => c.Name);
        result[OutputColumnName] = OutputColumn();
        return new SchemaShape(result.Values);
    }

    /// <summary>Returns the transformer after checking the input column against the data's schema.</summary>
    public TTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var transformer = Create();
        transformer.GetOutputSchema(input.Schema);
        return transformer;
    }

    /// <summary>Throws where the input column's kind cannot be read.</summary>
    private protected virtual void CheckInput(SchemaShape.Column column) { }

    /// <summary>The added column; its sizes follow the data, which a SchemaShape does not carry (Fit knows them).</summary>
    private protected abstract SchemaShape.Column OutputColumn();

    private protected abstract TTransformer Create();
}
