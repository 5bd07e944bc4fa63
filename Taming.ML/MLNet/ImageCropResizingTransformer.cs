using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Microsoft.ML.Transforms.Image;
using Taming.ML.Data;
using Taming.ML.MLNet;

[assembly: LoadableClass(typeof(ImageCropResizingTransformer), null, typeof(SignatureLoadModel),
    "Image crop and resize", ImageCropResizingTransformer.LoaderSignature)]

namespace Taming.ML.MLNet;

/// <summary>
/// Resizes an image column to a fixed size: each image is scaled, keeping its aspect ratio, until it covers the size,
/// and its centre is kept (ML.NET's <c>ResizeImages</c> with IsoCrop, but with every output pixel drawn; see
/// <see cref="TamingCatalogExtensions.CropAndResizeImages"/>). Made by that catalog method; saved and loaded with the model.
/// </summary>
/// <remarks>As ML.NET's image stages do, the stage owns the images it hands out: a cursor's next row disposes the previous one.</remarks>
public sealed class ImageCropResizingTransformer : BatchedTransformerBase
{
    internal const string LoaderSignature = "TamingImageCropResize";

    internal ImageCropResizingTransformer(IHostEnvironment env, string outputColumnName, string inputColumnName, int width, int height)
        : base(env, nameof(ImageCropResizingTransformer))
    {
        // The size is checked by the estimator, or when the model file is read.
        OutputColumnName = outputColumnName;
        InputColumnName = inputColumnName;
        Width = width;
        Height = height;
    }

    /// <summary>The image column this transformer adds (or replaces).</summary>
    public string OutputColumnName { get; }

    /// <summary>The image column it reads.</summary>
    public string InputColumnName { get; }

    /// <summary>Width of the output images in pixels.</summary>
    public int Width { get; }

    /// <summary>Height of the output images in pixels.</summary>
    public int Height { get; }

    private protected override IBatchMapper MakeMapper(DataViewSchema inputSchema) => new Mapper(this, inputSchema);

    private static readonly VersionInfo Version = ModelFile.Version("TAMCROPR", LoaderSignature);

    private protected override void SaveModel(ModelSaveContext ctx)
    {
        ctx.SetVersionInfo(Version);
        foreach (var s in new[] { OutputColumnName, InputColumnName, Width.ToString(CultureInfo.InvariantCulture), Height.ToString(CultureInfo.InvariantCulture) })
            ctx.Writer.Write(s);
    }

    // Factory for SignatureLoadModel, called by mlContext.Model.Load.
    private static ImageCropResizingTransformer Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        var header = ModelFile.LoadHeader(ctx, Version, count: 4);
        int Side(string s) => int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out int v) && v > 0
            ? v : throw new InvalidDataException($"The model file's image size is corrupt: '{s}'.");
        return new ImageCropResizingTransformer(env, header[0], header[1], Side(header[2]), Side(header[3]));
    }

    private sealed class Mapper : IBatchMapper
    {
        private readonly ImageCropResizingTransformer parent;

        public Mapper(ImageCropResizingTransformer parent, DataViewSchema schema)
        {
            this.parent = parent;
            var column = SchemaColumns.Find(schema, parent.InputColumnName);
            if (column.Type is not ImageDataViewType) throw ImageCropResizingEstimator.NotImages(column.Name, $"{column.Type}");
            InputColumns = new[] { column };
            OutputColumns = new[] { new DataViewSchema.DetachedColumn(parent.OutputColumnName, new ImageDataViewType(parent.Height, parent.Width)) };
        }

        public IReadOnlyList<DataViewSchema.Column> InputColumns { get; }
        public IReadOnlyList<DataViewSchema.DetachedColumn> OutputColumns { get; }
        public int BatchSize => 16;
        public bool MapsRowByRow => true;
        public IBatchState CreateState(DataViewRow row, int capacity) => new State(parent, row, InputColumns[0], capacity);
    }

    private sealed class State : IBatchState
    {
        private readonly ImageCropResizingTransformer parent;
        private readonly DataViewRow row;
        private readonly string name;
        private readonly ValueGetter<MLImage> getter;
        private readonly (byte[] Pixels, MLPixelFormat Format)[] resized;
        private MLImage image = null!;

        public State(ImageCropResizingTransformer parent, DataViewRow row, DataViewSchema.Column column, int capacity)
        {
            this.parent = parent;
            this.row = row;
            name = column.Name;
            getter = row.GetGetter<MLImage>(column);
            resized = new (byte[], MLPixelFormat)[capacity];
        }

        // The input image belongs to the stage before and is replaced at its next row, so it is resized at once.
        public void ReadRow(int slot)
        {
            ImageColumnReader.GetImage(getter, ref image, name, row.Position);
            resized[slot] = (CoverCrop.Apply(image, parent.Width, parent.Height), image.PixelFormat);
        }

        public void Compute(int count) { }

        public Delegate MakeGetter(int output, Func<int> slot)
        {
            ValueGetter<MLImage> get = (ref MLImage dst) =>
            {
                var (pixels, format) = resized[slot()];
                dst?.Dispose();
                dst = MLImage.CreateFromPixels(parent.Width, parent.Height, format, pixels);
            };
            return get;
        }

        public void Dispose() { }
    }
}
