using Microsoft.ML;
using Microsoft.ML.Data;

namespace Taming.ML.Data;

/// <summary>Converts planar byte pixels (c, h, w) to and from <see cref="MLImage"/>, image columns and PNG-ready BGRA.</summary>
public static class ImagePixels
{
    /// <summary>Interleaved BGRA bytes (alpha 255) from planar gray (c = 1) or RGB (c = 3) bytes.</summary>
    public static byte[] ToBgra(ReadOnlySpan<byte> planar, int channels, int height, int width)
    {
        int n = height * width;
        if (planar.Length != channels * n) throw new ArgumentException($"Expected {channels * n} bytes, got {planar.Length}.");
        var bgra = new byte[4 * n];
        for (int i = 0; i < n; i++)
        {
            byte r = planar[i], g = channels == 3 ? planar[n + i] : r, b = channels == 3 ? planar[2 * n + i] : r;
            bgra[4 * i] = b;
            bgra[4 * i + 1] = g;
            bgra[4 * i + 2] = r;
            bgra[4 * i + 3] = 255;
        }
        return bgra;
    }

    /// <summary>
    /// Planar pixels (c·h·w values, 0–255) of an image: RGB for <paramref name="channels"/> = 3, luminance
    /// (0.299 R + 0.587 G + 0.114 B, rounded) for 1.
    /// </summary>
    public static float[] ToPlanar(MLImage image, int channels) => ToPlanar<float>(image.Pixels, image.PixelFormat, image.Height * image.Width, channels);

    /// <summary><see cref="ToPlanar(MLImage, int)"/> of <paramref name="n"/> pixels of 4 bytes in <paramref name="format"/>, as
    /// floats or bytes (the same values).</summary>
    internal static T[] ToPlanar<T>(ReadOnlySpan<byte> raw, MLPixelFormat format, int n, int channels) where T : System.Numerics.INumberBase<T>
    {
        if (channels is not (1 or 3)) throw new ArgumentOutOfRangeException(nameof(channels), "channels must be 1 or 3.");
        // MLImage holds 4 bytes per pixel; the order depends on the platform's native format.
        bool bgra = format == MLPixelFormat.Bgra32;
        var planar = new T[channels * n];
        for (int i = 0; i < n; i++)
        {
            byte r = raw[4 * i + (bgra ? 2 : 0)], g = raw[4 * i + 1], b = raw[4 * i + (bgra ? 0 : 2)];
            if (channels == 1) planar[i] = T.CreateTruncating(MathF.Round(0.299f * r + 0.587f * g + 0.114f * b));
            else
            {
                planar[i] = T.CreateTruncating(r);
                planar[n + i] = T.CreateTruncating(g);
                planar[2 * n + i] = T.CreateTruncating(b);
            }
        }
        return planar;
    }

    /// <summary>The <paramref name="height"/>×<paramref name="width"/> region at (top, left) of a planar image of c·h·w bytes.</summary>
    public static byte[] Crop(byte[] planar, int channels, int h, int w, int top, int left, int height, int width)
    {
        if (top < 0 || left < 0 || top + height > h || left + width > w)
            throw new ArgumentOutOfRangeException(nameof(top), $"A {width}×{height} crop at ({left}, {top}) does not fit a {w}×{h} image.");
        var crop = new byte[channels * height * width];
        for (int c = 0; c < channels; c++)
        for (int y = 0; y < height; y++)
            Array.Copy(planar, c * h * w + (top + y) * w + left, crop, c * height * width + y * width, width);
        return crop;
    }

    /// <summary>Planar bytes of an image (see <see cref="ToPlanar(MLImage, int)"/>).</summary>
    public static byte[] ToPlanarBytes(MLImage image, int channels) =>
        ToPlanar<byte>(image.Pixels, image.PixelFormat, image.Height * image.Width, channels);

    /// <summary>A new <see cref="MLImage"/> from planar gray or RGB bytes.</summary>
    public static MLImage ToImage(ReadOnlySpan<byte> planar, int channels, int height, int width) =>
        MLImage.CreateFromPixels(width, height, MLPixelFormat.Bgra32, ToBgra(planar, channels, height, width));

    /// <summary>
    /// Every row's images in the image <paramref name="columns"/> of <paramref name="data"/>, as planar bytes (one array
    /// per column per row), e.g. to save decoded or generated images with <see cref="Evaluation.ImageGrid"/>. Each image
    /// is copied while its row is current: ML.NET's image stages and DecodeTokens dispose it at the next row.
    /// </summary>
    public static List<byte[][]> ReadColumns(IDataView data, int channels, params string[] columns)
    {
        var schemaColumns = columns.Select(c => MLNet.SchemaColumns.Find(data.Schema, c, "Image", nameof(columns))).ToArray();
        using var cursor = data.GetRowCursor(schemaColumns);
        var getters = schemaColumns.Select(c => cursor.GetGetter<MLImage>(c)).ToArray();
        var rows = new List<byte[][]>();
        MLImage image = null!;
        while (cursor.MoveNext())
            rows.Add(getters.Select(get => { get(ref image); return ToPlanarBytes(image, channels); }).ToArray());
        return rows;
    }
}
