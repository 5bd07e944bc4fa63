using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;

namespace Taming.ML.MLNet;

/// <summary>
/// Tokenizes whole images of the size their column states with a fitted tokenizer (the encoder is convolutional), for
/// example whole photographs with a tokenizer trained on crops of them; nothing is trained, so <c>Fit</c> only checks
/// the data. The token grid's dimensions follow the images': height/f × width/f.
/// </summary>
public sealed class WholeImageTokenizerEstimator : TokenizerStageEstimator<VqganTokenizerTransformer>
{
    internal WholeImageTokenizerEstimator(IHostEnvironment env, string outputColumnName, string inputColumnName, VqganTokenizerTransformer tokenizer)
        : base(env, outputColumnName, inputColumnName, tokenizer) { }

    // The grid follows the images' size.
    private protected override SchemaShape.Column OutputColumn() => TokenColumns.Shape(OutputColumnName);

    private protected override VqganTokenizerTransformer Create() =>
        new(Env, Tokenizer.Model, OutputColumnName, InputColumnName, resizeToResolution: false, Tokenizer.Device, wholeImages: true,
            Tokenizer.Training);
}
