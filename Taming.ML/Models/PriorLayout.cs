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
/// tokens; the output layer predicts image codes only. A prior fitted on windows of larger grids models a
/// window-sized grid and remembers the training grids' size as its canvas (0: the grid itself). Codebook and
/// ConditionCodebook name the tokenizers' codebooks (fingerprints) that the image and condition tokens came from,
/// where the token columns said so (null: unknown); tokens of another codebook are refused. ClassNames are the label
/// column's class names by class index (its key values, e.g. an image folder's sub-folders), where it had them:
/// label columns that name their classes otherwise are refused, and text labels are read by name.
/// </summary>
public sealed record PriorLayout(Conditioning Conditioning, int CodebookSize, int GridHeight, int GridWidth,
    int ClassCount = 0, int ConditionCodebookSize = 0, int ConditionHeight = 0, int ConditionWidth = 0,
    int CanvasHeight = 0, int CanvasWidth = 0, string? Codebook = null, string? ConditionCodebook = null,
    IReadOnlyList<string>? ClassNames = null)
{
    /// <summary>The token grid the prior generates and scores by default: the grids it was fitted on, which the sliding
    /// window covers when they are larger than the modelled grid.</summary>
    public (int Height, int Width) Canvas => (CanvasHeight > 0 ? CanvasHeight : GridHeight, CanvasWidth > 0 ? CanvasWidth : GridWidth);

    /// <summary>Layouts are equal when every member is, the class names name for name (records compare lists by reference).</summary>
    public bool Equals(PriorLayout? other) => other is not null && Members == other.Members &&
        (ClassNames is null ? other.ClassNames is null : other.ClassNames is not null && ClassNames.SequenceEqual(other.ClassNames));

    /// <inheritdoc/>
    public override int GetHashCode() => Members.GetHashCode();

    // Every member but the class names: a member added to the record belongs here too, and in PrintMembers.
    private (Conditioning, int, int, int, int, int, int, int, int, int, string?, string?) Members =>
        (Conditioning, CodebookSize, GridHeight, GridWidth, ClassCount, ConditionCodebookSize, ConditionHeight, ConditionWidth,
         CanvasHeight, CanvasWidth, Codebook, ConditionCodebook);

    // The record's own printing, with the class names listed rather than as their type ("System.String[]").
    private bool PrintMembers(System.Text.StringBuilder builder)
    {
        builder.Append($"Conditioning = {Conditioning}, CodebookSize = {CodebookSize}, GridHeight = {GridHeight}, GridWidth = {GridWidth}, ")
            .Append($"ClassCount = {ClassCount}, ConditionCodebookSize = {ConditionCodebookSize}, ConditionHeight = {ConditionHeight}, ")
            .Append($"ConditionWidth = {ConditionWidth}, CanvasHeight = {CanvasHeight}, CanvasWidth = {CanvasWidth}, ")
            .Append($"Codebook = {Codebook}, ConditionCodebook = {ConditionCodebook}, ")
            .Append($"ClassNames = {(ClassNames is null ? "" : $"[{string.Join(", ", ClassNames)}]")}");
        return true;
    }

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

    /// <summary>
    /// The layout of whole canvases of <paramref name="height"/>×<paramref name="width"/> tokens (by default the
    /// prior's canvas), as read from data: the image grid, and an image condition's grid, grown to the canvas, as the
    /// sliding window reads them. The layout itself where the canvas is its grid.
    /// </summary>
    internal PriorLayout CanvasLayout(int? height = null, int? width = null)
    {
        int h = height ?? Canvas.Height, w = width ?? Canvas.Width;
        if ((h, w) == (GridHeight, GridWidth)) return this;
        bool image = Conditioning == Conditioning.Image;
        return this with
        {
            GridHeight = h, GridWidth = w, CanvasHeight = 0, CanvasWidth = 0,
            ConditionHeight = image ? h : ConditionHeight, ConditionWidth = image ? w : ConditionWidth,
        };
    }

    /// <summary>Checks the layout; throws <see cref="ArgumentException"/> with the problem.</summary>
    public void Validate()
    {
        if (CodebookSize < 2) throw new ArgumentException("The token column needs at least 2 codes.");
        if (GridHeight < 1 || GridWidth < 1) throw new ArgumentException("The token grid is empty.");
        if (Canvas.Height < GridHeight || Canvas.Width < GridWidth) throw new ArgumentException("The canvas is smaller than the modelled grid.");
        if (Conditioning == Conditioning.Class && ClassCount < 1) throw new ArgumentException("The label column has no classes.");
        if (ClassNames is { } names && names.Count != ClassCount) throw new ArgumentException($"{names.Count} class names for {ClassCount} classes.");
        if (Conditioning == Conditioning.Image && (ConditionCodebookSize < 1 || ConditionHeight < 1 || ConditionWidth < 1))
            throw new ArgumentException("The condition token column is empty.");
    }
}
