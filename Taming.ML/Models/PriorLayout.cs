namespace Taming.ML.Models;

/// <summary>What the prior is conditioned on.</summary>
public enum Conditioning
{
    /// <summary>Nothing: every sequence starts with one start token.</summary>
    None,
    /// <summary>A class label: one class token starts the sequence.</summary>
    Class,
    /// <summary>A condition image's token grid (from a second tokenizer) is the prefix.</summary>
    Image,
}

/// <summary>
/// The sequence the prior models: a prefix (start token, class token, or condition tokens) followed by the
/// image tokens in raster order. One vocabulary holds the image codes [0, K) and, after them, the prefix
/// tokens; the output layer predicts image codes only.
/// </summary>
public sealed record PriorLayout(Conditioning Conditioning, int CodebookSize, int GridHeight, int GridWidth,
    int ClassCount = 0, int ConditionCodebookSize = 0, int ConditionHeight = 0, int ConditionWidth = 0)
{
    /// <summary>Image tokens per sequence.</summary>
    public int ImageLength => GridHeight * GridWidth;

    /// <summary>Prefix tokens per sequence.</summary>
    public int PrefixLength => Conditioning == Conditioning.Image ? ConditionHeight * ConditionWidth : 1;

    /// <summary>Tokens the prefix may take.</summary>
    public int PrefixVocabulary => Conditioning switch
    {
        Conditioning.None => 1,
        Conditioning.Class => ClassCount,
        _ => ConditionCodebookSize,
    };

    /// <summary>Input vocabulary: image codes, then prefix tokens.</summary>
    public int Vocabulary => CodebookSize + PrefixVocabulary;

    /// <summary>Longest input the transformer sees: the prefix and all image tokens but the last.</summary>
    public int BlockSize => PrefixLength + ImageLength - 1;

    /// <summary>Checks the layout; throws <see cref="ArgumentException"/> with the problem.</summary>
    public void Validate()
    {
        if (CodebookSize < 2) throw new ArgumentException("The token column needs at least 2 codes.");
        if (GridHeight < 1 || GridWidth < 1) throw new ArgumentException("The token grid is empty.");
        if (Conditioning == Conditioning.Class && ClassCount < 1) throw new ArgumentException("The label column has no classes.");
        if (Conditioning == Conditioning.Image && (ConditionCodebookSize < 1 || ConditionHeight < 1 || ConditionWidth < 1))
            throw new ArgumentException("The condition token column is empty.");
    }
}
