using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Microsoft.ML.Transforms.Image;

namespace Taming.ML.MLNet;

/// <summary>Decodes token grids with a fitted tokenizer's decoder; nothing is trained, so <see cref="Fit"/> only checks the data.</summary>
public sealed class TokenDecoderEstimator : IEstimator<TokenDecoderTransformer>
{
    private readonly IHostEnvironment env;
    private readonly string outputColumnName, inputColumnName;
    private readonly VqganTokenizerTransformer tokenizer;

    internal TokenDecoderEstimator(IHostEnvironment env, string outputColumnName, string inputColumnName, VqganTokenizerTransformer tokenizer)
    {
        this.env = env;
        this.outputColumnName = outputColumnName;
        this.inputColumnName = inputColumnName;
        this.tokenizer = tokenizer;
    }

    /// <summary>Checks the token column and describes the image column that will be added.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        if (!inputSchema.TryFindColumn(inputColumnName, out var col))
            throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Input column '{inputColumnName}' not found in the data.");
        if (col.Kind == SchemaShape.Column.VectorKind.Scalar || !(col.IsKey || col.ItemType == NumberDataViewType.Int32))
            throw new ArgumentOutOfRangeException(nameof(inputSchema),
                $"Column '{inputColumnName}' has type {col.GetTypeString()}; expected a key vector (the tokenizer's output) or a vector of Int32 token ids.");
        var result = inputSchema.ToDictionary(c => c.Name);
        // The image size follows the token grid, which a SchemaShape does not carry; Fit knows it.
        result[outputColumnName] = new SchemaShape.Column(outputColumnName, SchemaShape.Column.VectorKind.Scalar,
            new ImageDataViewType(), isKey: false);
        return new SchemaShape(result.Values);
    }

    /// <summary>Returns the decoder transformer after checking the token column.</summary>
    public TokenDecoderTransformer Fit(IDataView input)
    {
        var transformer = new TokenDecoderTransformer(env, tokenizer.Model, outputColumnName, inputColumnName, tokenizer.Device);
        transformer.GetOutputSchema(input.Schema);
        return transformer;
    }
}
