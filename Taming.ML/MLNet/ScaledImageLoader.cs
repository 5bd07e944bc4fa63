using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using Taming.ML.Data;

namespace Taming.ML.MLNet;

/// <summary>
/// LoadImages for <see cref="TamingCatalogExtensions.LoadFromImageFolder"/> given a size to cover or asked for upright
/// images: each batch of image paths is decoded on all cores, each file at the smallest scale that still covers the size
/// (<see cref="ScaledDecode"/>), and turned as its EXIF orientation says where asked.
/// A loaded data set's stage, never saved with a model (a model saved after it starts at its image column).
/// </summary>
internal sealed class ScaledImageLoader : IBatchMapper
{
    private readonly string folder;
    private readonly int coverWidth, coverHeight;
    private readonly bool upright;

    public ScaledImageLoader(DataViewSchema schema, string outputColumnName, string pathColumnName, string folder, int coverWidth, int coverHeight,
        bool upright)
    {
        this.folder = folder;
        this.coverWidth = coverWidth;
        this.coverHeight = coverHeight;
        this.upright = upright;
        InputColumns = new[] { schema[pathColumnName] };
        OutputColumns = new[] { new DataViewSchema.DetachedColumn(outputColumnName, new ImageDataViewType()) };
    }

    public IReadOnlyList<DataViewSchema.Column> InputColumns { get; }
    public IReadOnlyList<DataViewSchema.DetachedColumn> OutputColumns { get; }
    public int BatchSize => Math.Max(16, 2 * Environment.ProcessorCount);
    public IBatchState CreateState(DataViewRow row, int capacity) => new State(this, row, capacity);

    private sealed class State : IBatchState
    {
        private readonly ScaledImageLoader parent;
        private readonly ValueGetter<ReadOnlyMemory<char>> getter;
        private readonly string[] paths;
        private readonly (byte[] Pixels, int Width, int Height, MLPixelFormat Format)[] decoded;
        private readonly Exception?[] errors;
        private ReadOnlyMemory<char> path;

        public State(ScaledImageLoader parent, DataViewRow row, int capacity)
        {
            this.parent = parent;
            getter = row.GetGetter<ReadOnlyMemory<char>>(parent.InputColumns[0]);
            paths = new string[capacity];
            decoded = new (byte[], int, int, MLPixelFormat)[capacity];
            errors = new Exception?[capacity];
        }

        public void ReadRow(int slot)
        {
            getter(ref path);
            paths[slot] = Path.Combine(parent.folder, path.ToString());
        }

        // A file that cannot be read fails its own row only, when the row's image is read (as LoadImages fails).
        public void Compute(int count) => Parallel.For(0, count, i =>
        {
            decoded[i] = default;
            errors[i] = null;
            try { decoded[i] = ScaledDecode.Load(paths[i], parent.coverWidth, parent.coverHeight, parent.upright); }
            catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException) { errors[i] = e; }
        });

        public Delegate MakeGetter(int output, Func<int> slot)
        {
            ValueGetter<MLImage> get = (ref MLImage dst) =>
            {
                int i = slot();
                if (errors[i] is { } error) throw error is FileNotFoundException missing
                    ? new FileNotFoundException(missing.Message, missing.FileName, missing)
                    : new InvalidDataException(error.Message, error);
                var (pixels, width, height, format) = decoded[i];
                dst?.Dispose();
                dst = MLImage.CreateFromPixels(width, height, format, pixels);
            };
            return get;
        }

        public void Dispose() { }
    }
}
