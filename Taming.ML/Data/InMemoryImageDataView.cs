using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

namespace Taming.ML.Data;

/// <summary>
/// Gray or RGB images held as planar bytes, served as an <see cref="MLImage"/> column ("Image") and an optional
/// key-typed label column ("Label"). Each getter call creates a fresh <see cref="MLImage"/>, so downstream
/// transforms that dispose their input never destroy the data.
/// </summary>
internal sealed class InMemoryImageDataView : IDataView
{
    private readonly byte[][] images;
    private readonly uint[]? labels;
    private readonly int height, width, channels;

    public InMemoryImageDataView(byte[][] images, int height, int width, byte[]? labels, int labelCount,
        string imageColumnName = "Image", string labelColumnName = "Label", int channels = 1)
    {
        this.channels = channels;
        if (labels != null && labels.Length != images.Length)
            throw new InvalidDataException($"There are {images.Length} images but {labels.Length} labels.");
        this.images = images;
        this.height = height;
        this.width = width;
        this.labels = labels?.Select(l => (uint)l + 1).ToArray(); // keys are 1-based
        var builder = new DataViewSchema.Builder();
        builder.AddColumn(imageColumnName, new ImageDataViewType(height, width));
        if (labels != null)
        {
            var names = new VBuffer<ReadOnlyMemory<char>>(labelCount,
                Enumerable.Range(0, labelCount).Select(i => i.ToString().AsMemory()).ToArray());
            var annotations = new DataViewSchema.Annotations.Builder();
            annotations.AddKeyValues(labelCount, TextDataViewType.Instance, (ref VBuffer<ReadOnlyMemory<char>> v) => names.CopyTo(ref v));
            builder.AddColumn(labelColumnName, new KeyDataViewType(typeof(uint), labelCount), annotations.ToAnnotations());
        }
        Schema = builder.ToSchema();
    }

    public DataViewSchema Schema { get; }
    public bool CanShuffle => false;
    public long? GetRowCount() => images.Length;

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null) =>
        new Cursor(this, columnsNeeded.Select(c => c.Index).ToHashSet());

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
        new[] { GetRowCursor(columnsNeeded, rand) };

    private sealed class Cursor(InMemoryImageDataView parent, HashSet<int> active) : DataViewRowCursor
    {
        private long position = -1;

        public override DataViewSchema Schema => parent.Schema;
        public override long Position => position;
        public override long Batch => 0;
        public override bool MoveNext() => ++position < parent.images.Length;
        public override bool IsColumnActive(DataViewSchema.Column column) => active.Contains(column.Index);

        public override ValueGetter<DataViewRowId> GetIdGetter() =>
            (ref DataViewRowId id) => id = new DataViewRowId((ulong)position, 0);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (column.Index == 0)
            {
                ValueGetter<MLImage> image = (ref MLImage dst) =>
                {
                    dst?.Dispose(); // ML.NET's convention: the getter owns what it handed out before
                    dst = ImagePixels.ToImage(parent.images[position], parent.channels, parent.height, parent.width);
                };
                return (ValueGetter<TValue>)(Delegate)image;
            }
            ValueGetter<uint> label = (ref uint dst) => dst = parent.labels![position];
            return (ValueGetter<TValue>)(Delegate)label;
        }
    }
}
