using Microsoft.ML;
using Taming.ML.Models;

namespace Taming.ML.MLNet;

/// <summary>
/// The columns a prior reads — image tokens, and a class label or condition tokens — checked against its
/// <see cref="PriorLayout"/>, and read as vocabulary ids: the prefix (start, class or condition tokens shifted
/// past the image codes) and the image tokens.
/// </summary>
internal sealed class PriorInputs
{
    private readonly PriorLayout layout;
    private readonly Func<int>? label;
    private readonly Func<long[]>? condition, tokens;

    /// <summary>The input columns, after checking that they exist and suit the layout.</summary>
    public static List<DataViewSchema.Column> Columns(DataViewSchema schema, PriorLayout layout, string? tokenColumn, string? labelColumn,
        string? conditionColumn, int? conditionLength = null)
    {
        int expectedCondition = conditionLength ?? layout.PrefixLength;
        DataViewSchema.Column Find(string name, string role) => SchemaColumns.Find(schema, name, role);
        var columns = new List<DataViewSchema.Column>();
        if (tokenColumn != null)
        {
            var c = Find(tokenColumn, "Token");
            var (count, h, w) = TokenColumns.Inspect(c);
            if (h * w != layout.ImageLength)
                throw new ArgumentOutOfRangeException(nameof(schema), $"Column '{c.Name}' holds {h * w} tokens per row; the prior models {layout.GridHeight}×{layout.GridWidth} = {layout.ImageLength}.");
            if (count is { } k && k != layout.CodebookSize)
                throw new ArgumentOutOfRangeException(nameof(schema), $"Column '{c.Name}' has {k} codes; the prior was fitted on {layout.CodebookSize}.");
            TokenColumns.CheckCodebook(c, layout.Codebook, "the prior was fitted on tokens of",
                "Tokenize with the tokenizer the prior was fitted on, or fit the prior on this tokenizer's tokens.");
            columns.Add(c);
        }
        if (layout.Conditioning == Conditioning.Class)
        {
            var c = Find(labelColumn ?? throw new ArgumentException("This prior is class-conditional: name a label column."), "Label");
            TokenColumns.CheckLabel(c, layout.ClassCount, layout.ClassNames);
            columns.Add(c);
        }
        if (layout.Conditioning == Conditioning.Image)
        {
            var c = Find(conditionColumn ?? throw new ArgumentException("This prior is conditioned on image tokens: name a condition column."), "Condition");
            var (count, h, w) = TokenColumns.Inspect(c);
            if (h * w != expectedCondition)
                throw new ArgumentOutOfRangeException(nameof(schema), $"Column '{c.Name}' holds {h * w} condition tokens per row; expected {expectedCondition}" +
                    (expectedCondition == layout.PrefixLength ? " (the prior's condition grid)." : " (the condition canvas must match the output canvas)."));
            if (count is { } k && k != layout.ConditionCodebookSize)
                throw new ArgumentOutOfRangeException(nameof(schema), $"Column '{c.Name}' has {k} codes; the prior was fitted on {layout.ConditionCodebookSize}.");
            TokenColumns.CheckCodebook(c, layout.ConditionCodebook, "the prior was fitted on condition tokens of",
                "Tokenize the conditions with the condition tokenizer the prior was fitted on, or fit the prior on this tokenizer's tokens.");
            columns.Add(c);
        }
        return columns;
    }

    public PriorInputs(DataViewRow row, PriorLayout layout, string? tokenColumn, string? labelColumn, string? conditionColumn, int? conditionLength = null)
    {
        this.layout = layout;
        if (tokenColumn != null) tokens = TokenColumns.Reader(row, row.Schema[tokenColumn], layout.CodebookSize, layout.ImageLength);
        if (layout.Conditioning == Conditioning.Class) label = TokenColumns.LabelReader(row, row.Schema[labelColumn!], layout.ClassCount, layout.ClassNames);
        if (layout.Conditioning == Conditioning.Image)
            condition = TokenColumns.Reader(row, row.Schema[conditionColumn!], layout.ConditionCodebookSize, conditionLength ?? layout.PrefixLength);
    }

    /// <summary>The row's prefix as vocabulary ids.</summary>
    public long[] Prefix() => layout.Conditioning switch
    {
        Conditioning.None => new long[] { layout.CodebookSize },
        Conditioning.Class => new long[] { layout.CodebookSize + label!() },
        _ => condition!().Select(c => c + layout.CodebookSize).ToArray(),
    };

    /// <summary>The row's condition tokens as condition-codebook ids (image-conditioned priors).</summary>
    public long[] Condition() => condition!();

    /// <summary>The row's image tokens.</summary>
    public long[] Tokens() => tokens!();
}
