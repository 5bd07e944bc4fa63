using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using static TorchSharp.torch;

namespace Taming.ML.MLNet;

/// <summary>
/// Reads an image column — an <see cref="MLImage"/> column from LoadImages/ResizeImages, or a Single or Byte vector
/// [channels, height, width] of 0–255 values from ExtractPixels — into planar float pixels, and checks it.
/// </summary>
internal sealed class ImageColumnReader
{
    private readonly ValueGetter<MLImage>? imageGetter;
    private readonly ValueGetter<VBuffer<float>>? vectorGetter;
    private readonly ValueGetter<VBuffer<byte>>? byteGetter;
    private readonly DataViewRow row;
    private readonly string name;
    private readonly int channels, height, width;
    private readonly bool resize;
    private MLImage image = null!;
    private VBuffer<float> vector;
    private VBuffer<byte> bytes;

    /// <summary>A reader of images of <paramref name="height"/>×<paramref name="width"/> pixels; with <paramref name="resize"/>
    /// images of another size are resized to it, else refused.</summary>
    public ImageColumnReader(DataViewRow row, DataViewSchema.Column column, int channels, int height, int width, bool resize)
    {
        this.row = row;
        name = column.Name;
        this.channels = channels;
        (this.height, this.width) = (height, width);
        this.resize = resize;
        if (column.Type is ImageDataViewType) imageGetter = row.GetGetter<MLImage>(column);
        else if (column.Type.GetItemType() == NumberDataViewType.Byte) byteGetter = row.GetGetter<VBuffer<byte>>(column);
        else vectorGetter = row.GetGetter<VBuffer<float>>(column);
    }

    /// <summary>The image column <paramref name="name"/> of <paramref name="schema"/>, checked by <see cref="Inspect"/>.</summary>
    public static DataViewSchema.Column Find(DataViewSchema schema, string name)
    {
        var column = SchemaColumns.Find(schema, name, "Image", "imageColumnName");
        Inspect(column);
        return column;
    }

    /// <summary>
    /// What the column's type says about the images: channels, height, width (0 where unknown). A flat
    /// vector of Single (no [c, h, w] dimensions, as a PredictionEngine's input class gives) reads as
    /// [channels, height, width] of the reader.
    /// </summary>
    public static (int Channels, int Height, int Width) Inspect(DataViewSchema.Column column)
    {
        switch (column.Type)
        {
            case ImageDataViewType image:
                return (0, image.Height, image.Width);
            case VectorDataViewType { ItemType: var item } v when IsPixelType(item) && v.Dimensions.Length == 3:
                return CheckPlanar(column, (int)v.Dimensions[0], (int)v.Dimensions[1], (int)v.Dimensions[2]);
            case VectorDataViewType { ItemType: var item } v when IsPixelType(item) && v.Dimensions.Length == 1:
                return (0, 0, 0);
            default:
                throw new ArgumentOutOfRangeException(nameof(column),
                    $"Column '{column.Name}' has type {column.Type}; expected an image (from LoadImages or ResizeImages) or a " +
                    "vector of Single or Byte with shape [channels, height, width] holding 0–255 pixel values (from ExtractPixels).");
        }
    }

    /// <summary>Item types of pixel vectors: ExtractPixels gives Single by default, Byte with outputAsFloatArray: false.</summary>
    public static bool IsPixelType(DataViewType item) => item == NumberDataViewType.Single || item == NumberDataViewType.Byte;

    /// <summary>Shapes that cannot be planar RGB or grayscale pixels get a message that says what they look like.</summary>
    private static (int, int, int) CheckPlanar(DataViewSchema.Column column, int c, int h, int w)
    {
        if (c is 1 or 3) return (c, h, w);
        if (w is 1 or 3 or 4)
            throw new ArgumentOutOfRangeException(nameof(column), $"Column '{column.Name}' has shape [{c}, {h}, {w}]: interleaved pixels " +
                "[height, width, channels]? The tokenizer takes planar [channels, height, width], ExtractPixels' default " +
                "(interleavePixelColors: false).");
        throw new ArgumentOutOfRangeException(nameof(column), $"Column '{column.Name}' has {c} channels (shape [{c}, {h}, {w}]); the tokenizer " +
            "takes 1 (grayscale) or 3 (RGB): extract ColorBits.Rgb (no alpha), or ConvertToGrayscale.");
    }

    /// <summary>The size of the first image of an image column (ML.NET's LoadImages leaves it unknown in the type).</summary>
    public static (int H, int W) FirstImageSize(IDataView input, DataViewSchema.Column column)
    {
        using var cursor = input.GetRowCursor(new[] { column });
        if (!cursor.MoveNext()) throw new InvalidOperationException(Data.TrainingImages.EmptyMessage);
        MLImage image = null!;
        GetImage(cursor.GetGetter<MLImage>(column), ref image, column.Name, cursor.Position);
        return (image.Height, image.Width);
    }

    /// <summary>Copies the current row's image into <paramref name="destination"/> (channels·height·width values, 0–255).</summary>
    public void Read(Span<float> destination)
    {
        var (pixels, c, h, w) = imageGetter != null ? ReadImage() : ReadVector();
        if (c != channels)
            throw new InvalidDataException($"Column '{name}', row {row.Position}: the image has {c} channels, the tokenizer expects {channels}.");
        if (h != height || w != width)
        {
            if (!resize)
                throw new InvalidDataException(
                    $"Column '{name}', row {row.Position}: the image is {w}×{h} pixels but the tokenizer works on {width}×{height}. " +
                    "Add mlContext.Transforms.CropAndResizeImages (or ResizeImages) before it, or set ResizeToResolution in the tokenizer's options.");
            pixels = Resize(pixels, c, h, w, height, width);
        }
        pixels.CopyTo(destination);
    }

    private (float[] Pixels, int C, int H, int W) ReadImage()
    {
        GetImage(imageGetter!, ref image, name, row.Position);
        return (Data.ImagePixels.ToPlanar(image, channels), channels, image.Height, image.Width);
    }

    /// <summary>Reads a row's image, naming the column and row where it cannot be decoded or is missing.</summary>
    public static void GetImage(ValueGetter<MLImage> getter, ref MLImage image, string name, long position)
    {
        try
        {
            getter(ref image);
        }
        catch (ArgumentException e)
        {
            // LoadImages decodes lazily and names neither the file nor the row.
            throw new InvalidDataException($"Column '{name}', row {position}: the image could not be decoded ({e.Message}); " +
                                           "is the file at that row damaged or not an image?", e);
        }
        if (image is null || image.Width <= 0 || image.Height <= 0)
            throw new InvalidDataException($"Column '{name}', row {position}: the image is missing (a file that could not be loaded?).");
    }

    private (float[] Pixels, int C, int H, int W) ReadVector()
    {
        int length;
        if (byteGetter != null)
        {
            byteGetter(ref bytes);
            length = bytes.Length;
        }
        else
        {
            vectorGetter!(ref vector);
            length = vector.Length;
        }
        var type = (VectorDataViewType)row.Schema[name].Type;
        var (c, h, w) = type.Dimensions.Length == 3
            ? ((int)type.Dimensions[0], (int)type.Dimensions[1], (int)type.Dimensions[2])
            : (channels, height, width);
        if (length != c * h * w)
            throw new InvalidDataException($"Column '{name}', row {row.Position}: {length} pixel values, expected " +
                                           $"{c}×{h}×{w} = {c * h * w} (channels × height × width).");
        var values = new float[length];
        if (byteGetter != null)
        {
            int i = 0;
            foreach (var b in bytes.DenseValues()) values[i++] = b;
            return (values, c, h, w); // bytes are 0–255 by type
        }
        vector.CopyTo(values);
        bool fraction = false, aboveOne = false;
        for (int i = 0; i < values.Length; i++)
        {
            float v = values[i];
            if (!float.IsFinite(v))
                throw new InvalidDataException($"Column '{name}', row {row.Position}: pixel {i} is {v}; images must not hold NaN or infinite values.");
            if (v < 0 || v > 255)
                throw new InvalidDataException($"Column '{name}', row {row.Position}: pixel {i} is {v}; expected 0–255 (ExtractPixels' default scaling).");
            aboveOne |= v > 1;
            fraction |= v > 0 && v < 1;
        }
        // 0–255 pixels that all lie in [0, 1] with fractions between are 0–1 pixels, which would read as a black image.
        if (fraction && !aboveOne)
            throw new InvalidDataException($"Column '{name}', row {row.Position}: every pixel lies in 0–1; expected 0–255 " +
                                           "(ExtractPixels' default scaling, not scaleImage: 1/255).");
        return (values, c, h, w);
    }

    private static float[] Resize(float[] pixels, int c, int h, int w, int toHeight, int toWidth)
    {
        using var scope = NewDisposeScope();
        var t = tensor(pixels, new long[] { 1, c, h, w });
        var resized = nn.functional.interpolate(t, new long[] { toHeight, toWidth }, mode: InterpolationMode.Bilinear,
            align_corners: false, antialias: true).clamp(0, 255);
        return resized.data<float>().ToArray();
    }
}
