using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Microsoft.ML.Transforms.Image;

namespace Taming.ML.MLNet;

/// <summary>Decodes token grids with a fitted tokenizer's decoder; nothing is trained, so <c>Fit</c> only checks the data.</summary>
public sealed class TokenDecoderEstimator : TokenizerStageEstimator<TokenDecoderTransformer>
{
    internal TokenDecoderEstimator(IHostEnvironment env, string outputColumnName, string inputColumnName, VqganTokenizerTransformer tokenizer)
        : base(env, outputColumnName, inputColumnName, tokenizer) { }

    private protected override void CheckInput(SchemaShape.Column column)
    {
        if (column.Kind == SchemaShape.Column.VectorKind.Scalar || !(column.IsKey || column.ItemType == NumberDataViewType.Int32))
            throw new ArgumentOutOfRangeException("inputSchema",
                $"Column '{InputColumnName}' has type {column.GetTypeString()}; expected a key vector (the tokenizer's output) or a vector of Int32 token ids.");
    }

    // The image size follows the token grid.
    private protected override SchemaShape.Column OutputColumn() =>
        new(OutputColumnName, SchemaShape.Column.VectorKind.Scalar, new ImageDataViewType(), isKey: false);

    private protected override TokenDecoderTransformer Create() =>
        new(Env, Tokenizer.Model, OutputColumnName, InputColumnName, Tokenizer.Device);
}
