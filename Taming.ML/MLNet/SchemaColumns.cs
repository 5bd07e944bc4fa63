using Microsoft.ML;

namespace Taming.ML.MLNet;

/// <summary>Finds the columns a stage reads, with one message for a missing one.</summary>
internal static class SchemaColumns
{
    /// <summary>The column <paramref name="name"/> of <paramref name="schema"/>; a missing one names its <paramref name="role"/> ("Input", "Label", …).</summary>
    public static DataViewSchema.Column Find(DataViewSchema schema, string name, string role = "Input", string parameter = "schema") =>
        schema.GetColumnOrNull(name) ?? throw Missing(name, role, parameter);

    /// <summary>The column <paramref name="name"/> of a schema shape (an estimator's <c>GetOutputSchema</c>).</summary>
    public static SchemaShape.Column Find(SchemaShape schema, string name, string role = "Input", string parameter = "inputSchema") =>
        schema.TryFindColumn(name, out var column) ? column : throw Missing(name, role, parameter);

    private static ArgumentOutOfRangeException Missing(string name, string role, string parameter) =>
        new(parameter, $"{role} column '{name}' not found in the data.");
}
