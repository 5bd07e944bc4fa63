using Microsoft.ML;
using Microsoft.ML.Data;

namespace Taming.ML.MLNet;

/// <summary>
/// Reading token grids and class labels from ML.NET columns: key vectors (the tokenizer's output) or Int32
/// vectors of 0-based ids, key or Int32 labels, with range and length checks that name the column and row.
/// </summary>
internal static class TokenColumns
{
    /// <summary>
    /// The annotation (text) on token columns that names the codebook their ids index (the tokenizer's codebook
    /// fingerprint). A tokenizer writes it, a prior remembers it and writes it on the tokens it generates, and a
    /// prior or a decoder given tokens of another codebook of the same size refuses them instead of answering nonsense.
    /// Columns without it (tokens that left the pipeline, Int32 ids, earlier models) are not checked.
    /// </summary>
    public const string CodebookAnnotation = "TamingCodebook";

    /// <summary>
    /// The annotations of a token column over <paramref name="codebookSize"/> codes: its key values, the code ids
    /// 0 … K−1 (so that <c>MapKeyToValue</c> gives the ids, and <c>OneHotEncoding</c>, which needs key values, takes the
    /// column), and the codebook's fingerprint where it is known.
    /// </summary>
    public static DataViewSchema.Annotations Annotations(int codebookSize, string? codebook)
    {
        var builder = new DataViewSchema.Annotations.Builder();
        builder.AddKeyValues(codebookSize, NumberDataViewType.UInt32, (ref VBuffer<uint> ids) =>
        {
            var editor = VBufferEditor.Create(ref ids, codebookSize);
            for (int i = 0; i < codebookSize; i++) editor.Values[i] = (uint)i;
            ids = editor.Commit();
        });
        if (codebook is not null)
            builder.Add(CodebookAnnotation, TextDataViewType.Instance, (ref ReadOnlyMemory<char> value) => value = codebook.AsMemory());
        return builder.ToAnnotations();
    }

    /// <summary>A token column as estimators declare it: a key vector with its key values (see <see cref="Annotations"/>).</summary>
    public static SchemaShape.Column Shape(string name) =>
        new(name, SchemaShape.Column.VectorKind.Vector, NumberDataViewType.UInt32, isKey: true, new SchemaShape(new[]
        {
            new SchemaShape.Column(AnnotationUtils.Kinds.KeyValues, SchemaShape.Column.VectorKind.Vector, NumberDataViewType.UInt32, isKey: false),
        }));

    /// <summary>The codebook a token column's ids index, where the column says.</summary>
    public static string? CodebookOf(DataViewSchema.Column column)
    {
        if (column.Annotations.Schema.GetColumnOrNull(CodebookAnnotation) is not { Type: TextDataViewType }) return null;
        var value = default(ReadOnlyMemory<char>);
        column.Annotations.GetValue(CodebookAnnotation, ref value);
        return value.ToString();
    }

    /// <summary>Refuses a token column whose ids index another codebook than <paramref name="expected"/>, where both are known.</summary>
    /// <param name="column">The token column.</param>
    /// <param name="expected">The codebook the reader's tokens index.</param>
    /// <param name="reader">Who reads the tokens, and whose codebook that is ("this decoder's tokenizer has").</param>
    /// <param name="remedy">What to do about it.</param>
    public static void CheckCodebook(DataViewSchema.Column column, string? expected, string reader, string remedy)
    {
        if (expected is null || CodebookOf(column) is not { } actual || actual == expected) return;
        throw new ArgumentOutOfRangeException(nameof(column), $"Column '{column.Name}' holds tokens of codebook {actual}, but {reader} " +
            $"codebook {expected}: token ids only mean something to the tokenizer that made them. {remedy}");
    }

    /// <summary>Codebook size (key count) and grid shape of a token column; null key count for Int32 vectors.</summary>
    public static (int? KeyCount, int Height, int Width) Inspect(DataViewSchema.Column column)
    {
        if (column.Type is not VectorDataViewType { ItemType: var item } v || !(item is KeyDataViewType || item == NumberDataViewType.Int32))
            throw new ArgumentOutOfRangeException(nameof(column),
                $"Column '{column.Name}' has type {column.Type}; expected a key vector (a tokenizer's output) or a vector of Int32 token ids.");
        if (item is KeyDataViewType { RawType: var raw } && raw != typeof(uint))
            throw new ArgumentOutOfRangeException(nameof(column), $"Column '{column.Name}' has keys of {raw.Name}; expected UInt32 keys.");
        int? count = item is KeyDataViewType key ? (int)key.Count : null;
        if (v.Dimensions.Length == 2) return (count, (int)v.Dimensions[0], (int)v.Dimensions[1]);
        int side = (int)Math.Round(Math.Sqrt(v.Size));
        return side * side == v.Size ? (count, side, side) : (count, 1, v.Size);
    }

    /// <summary>A reader of the row's token ids (0-based), checked against the codebook and the expected length.</summary>
    public static Func<long[]> Reader(DataViewRow row, DataViewSchema.Column column, int codebookSize, int length)
    {
        long[] Check(long[] ids)
        {
            if (ids.Length != length)
                throw new InvalidDataException($"Column '{column.Name}', row {row.Position}: {ids.Length} tokens, expected {length}.");
            for (int i = 0; i < ids.Length; i++)
                if (ids[i] < 0 || ids[i] >= codebookSize)
                    throw new InvalidDataException($"Column '{column.Name}', row {row.Position}: token {i} is {ids[i]}, " +
                                                   $"outside the codebook (0 … {codebookSize - 1}; a missing key reads as -1).");
            return ids;
        }
        if (((VectorDataViewType)column.Type).ItemType is KeyDataViewType)
        {
            var getter = row.GetGetter<VBuffer<uint>>(column);
            var buffer = default(VBuffer<uint>);
            return () => { getter(ref buffer); return Check(buffer.DenseValues().Select(k => (long)k - 1).ToArray()); };
        }
        var intGetter = row.GetGetter<VBuffer<int>>(column);
        var ints = default(VBuffer<int>);
        return () => { intGetter(ref ints); return Check(ints.DenseValues().Select(k => (long)k).ToArray()); };
    }

    /// <summary>Writes 0-based token ids into a key vector (keys are 1-based).</summary>
    public static void WriteKeys(ref VBuffer<uint> dst, ReadOnlySpan<long> ids)
    {
        var editor = VBufferEditor.Create(ref dst, ids.Length);
        for (int i = 0; i < ids.Length; i++) editor.Values[i] = (uint)ids[i] + 1;
        dst = editor.Commit();
    }

    /// <summary>Class count of a key label column (null for Int32 labels, whose count comes from the data).</summary>
    public static int? InspectLabel(DataViewSchema.Column column) => column.Type switch
    {
        KeyDataViewType { RawType: var raw } key when raw == typeof(uint) => (int)key.Count,
        var t when t == NumberDataViewType.Int32 => null,
        _ => throw new ArgumentOutOfRangeException(nameof(column),
            $"Column '{column.Name}' has type {column.Type}; expected a key (e.g. from MapValueToKey) or an Int32 class label."),
    };

    /// <summary>A key label column's class names by class index (its key values), where it has them as text.</summary>
    public static string[]? ClassNamesOf(DataViewSchema.Column column)
    {
        if (column.Type is not KeyDataViewType key ||
            column.Annotations.Schema.GetColumnOrNull(AnnotationUtils.Kinds.KeyValues) is not { Type: VectorDataViewType { ItemType: TextDataViewType } v } ||
            v.Size != (int)key.Count)
            return null;
        var names = default(VBuffer<ReadOnlyMemory<char>>);
        column.Annotations.GetValue(AnnotationUtils.Kinds.KeyValues, ref names);
        return names.DenseValues().Select(n => n.ToString()).ToArray();
    }

    /// <summary>
    /// Checks a label column against the classes a prior was fitted on: a key column whose key values name its classes
    /// must name them as the prior does (the same name for each key); a text column is read by name, so the prior
    /// must know its classes' names.
    /// </summary>
    public static void CheckLabel(DataViewSchema.Column column, int classCount, IReadOnlyList<string>? names)
    {
        if (column.Type is TextDataViewType)
        {
            if (names is null)
                throw new ArgumentOutOfRangeException(nameof(column), $"Column '{column.Name}' holds class names as text, but the prior was " +
                    "fitted on a label column without them (class indices only): give the class as a key or an Int32 index.");
            return;
        }
        if (InspectLabel(column) is { } classes && classes > classCount)
            throw new ArgumentOutOfRangeException(nameof(column), $"Column '{column.Name}' has {classes} classes; the prior was fitted on {classCount}.");
        if (names is null || ClassNamesOf(column) is not { } own) return;
        for (int i = 0; i < own.Length; i++)
            if (own[i] != names[i])
                throw new ArgumentOutOfRangeException(nameof(column), $"Column '{column.Name}' names its classes otherwise than the labels the prior " +
                    $"was fitted on: its key {i + 1} is '{own[i]}', the prior's is '{names[i]}' (the prior's classes: {List(names)}). Map the " +
                    "labels with the mapping the prior was fitted with, or give them as text (the class names), which the prior reads by name.");
    }

    /// <summary>
    /// A reader of the row's class index (0-based), checked against <paramref name="classCount"/> when it is known; a text
    /// label is looked up in <paramref name="names"/> (see <see cref="CheckLabel"/>).
    /// </summary>
    public static Func<int> LabelReader(DataViewRow row, DataViewSchema.Column column, int? classCount, IReadOnlyList<string>? names = null)
    {
        int Check(long label)
        {
            if (label < 0 || (classCount is { } c && label >= c))
                throw new InvalidDataException($"Column '{column.Name}', row {row.Position}: class {label} is outside the " +
                                               (classCount is { } n ? $"trained classes (0 … {n - 1}; a missing key reads as -1)." : "valid range (≥ 0)."));
            return (int)label;
        }
        if (column.Type is TextDataViewType)
        {
            var byName = new Dictionary<string, int>(StringComparer.Ordinal);
            for (int i = 0; i < names!.Count; i++) byName.TryAdd(names[i], i);
            var textGetter = row.GetGetter<ReadOnlyMemory<char>>(column);
            var text = default(ReadOnlyMemory<char>);
            return () =>
            {
                textGetter(ref text);
                return byName.TryGetValue(text.ToString(), out int index) ? index
                    : throw new InvalidDataException($"Column '{column.Name}', row {row.Position}: '{text}' is not one of the prior's classes ({List(names)}).");
            };
        }
        if (column.Type is KeyDataViewType)
        {
            var getter = row.GetGetter<uint>(column);
            uint key = 0;
            return () => { getter(ref key); return Check((long)key - 1); };
        }
        var intGetter = row.GetGetter<int>(column);
        int value = 0;
        return () => { intGetter(ref value); return Check(value); };
    }

    /// <summary>Class names for a message: the first 20, quoted.</summary>
    private static string List(IReadOnlyList<string> names) =>
        string.Join(", ", names.Take(20).Select(n => $"'{n}'")) + (names.Count > 20 ? $", … ({names.Count} in all)" : "");
}
