using Microsoft.ML;

namespace Taming.ML.MLNet;

/// <summary>Finds the columns a stage reads, with one message for a missing one.</summary>
internal static class SchemaColumns
{
    /// <summary>The error for a data set given in options (say, <c>GptOptions.ValidationSet</c>): <paramref name="e"/>'s
    /// message after the option's name, less its "(Parameter '…')", which names an argument the caller never passed.</summary>
    public static ArgumentException InOption(string option, Exception e)
    {
        string message = e is ArgumentException { ParamName: { } name } a ? a.Message.Replace($" (Parameter '{name}')", "") : e.Message;
        return new ArgumentException($"{option}: {message}", option[(option.LastIndexOf('.') + 1)..], e);
    }

    /// <summary>The column <paramref name="name"/> of <paramref name="schema"/>; a missing one names its <paramref name="role"/> ("Input", "Label", …).</summary>
    public static DataViewSchema.Column Find(DataViewSchema schema, string name, string role = "Input", string parameter = "schema") =>
        schema.GetColumnOrNull(name) ?? throw Missing(name, role, parameter, schema.Where(c => !c.IsHidden).Select(c => c.Name));

    /// <summary>The column <paramref name="name"/> of a schema shape (an estimator's <c>GetOutputSchema</c>).</summary>
    public static SchemaShape.Column Find(SchemaShape schema, string name, string role = "Input", string parameter = "inputSchema") =>
        schema.TryFindColumn(name, out var column) ? column : throw Missing(name, role, parameter, schema.Select(c => c.Name));

    // ML.NET's ShuffleRows and Cache pass on only columns they can copy, so an image column vanishes there unannounced.
    private static ArgumentOutOfRangeException Missing(string name, string role, string parameter, IEnumerable<string> columns)
    {
        var names = columns.Distinct().ToList();
        return new(parameter, $"{role} column '{name}' not found in the data; its columns: " +
            (names.Count == 0 ? "none" : string.Join(", ", names.Select(n => $"'{n}'"))) + "." + (role is "Input" or "Image"
                ? " (mlContext.Data.ShuffleRows and mlContext.Data.Cache leave out image columns: shuffle or cache before the stage that loads the images, or after the tokenizer.)"
                : ""));
    }
}
