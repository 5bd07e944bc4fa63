using System.Runtime.InteropServices;
using Microsoft.ML.Data;
using SkiaSharp;

namespace Taming.ML.Data;

/// <summary>
/// Decodes an image file at the smallest scale its format offers that still covers a given size (JPEG decodes at
/// 1/2, 1/4 or 1/8 of its size for a fraction of the work; other formats at full size), with the pixels LoadImages
/// would give at that scale: premultiplied, BGRA or RGBA, no colour-space conversion, and, unless asked to turn them
/// upright, the pixels as stored, whatever their EXIF orientation.
/// A 4032×3024 phone photo meant for 64×64 decodes at 504×378, about ten times faster than in full.
/// </summary>
internal static class ScaledDecode
{
    /// <summary>The decoded image's 4-byte pixels, size and pixel format; throws naming <paramref name="path"/> when it
    /// cannot be read. <paramref name="upright"/>: turned as the file's EXIF orientation says (the cover size is that of
    /// the upright image).</summary>
    public static (byte[] Pixels, int Width, int Height, MLPixelFormat Format) Load(string path, int coverWidth, int coverHeight, bool upright = false)
    {
        using var codec = Open(path);
        var origin = upright ? codec.EncodedOrigin : SKEncodedOrigin.TopLeft;
        var size = Transposed(origin) ? Scale(codec, coverHeight, coverWidth) : Scale(codec, coverWidth, coverHeight);
        return Decode(codec, path, size, origin);
    }

    /// <summary>
    /// The image decoded shrunk by an integer <paramref name="factor"/> as far as its format allows (a JPEG at the
    /// smallest of 1/8, 1/4 and 1/2 of its size that the factor is a multiple of; other formats in full), and the
    /// factor still to shrink it by (<see cref="Shrink"/>); throws as <see cref="Load"/> does.
    /// </summary>
    public static (byte[] Pixels, int Width, int Height, MLPixelFormat Format, int Remaining) LoadShrunk(string path, int factor, bool upright = false)
    {
        using var codec = Open(path);
        var (size, remaining) = Shrink(codec, factor);
        var (pixels, width, height, format) = Decode(codec, path, size, upright ? codec.EncodedOrigin : SKEncodedOrigin.TopLeft);
        return (pixels, width, height, format, remaining);
    }

    private static (byte[] Pixels, int Width, int Height, MLPixelFormat Format) Decode(SKCodec codec, string path, SKSizeI size, SKEncodedOrigin origin)
    {
        bool transposed = Transposed(origin);
        var info = codec.Info.WithSize(size.Width, size.Height);
        if (info.ColorType is not (SKColorType.Bgra8888 or SKColorType.Rgba8888)) info.ColorType = SKColorType.Bgra8888; // as MLImage converts
        if (info.AlphaType == SKAlphaType.Unpremul) info.AlphaType = SKAlphaType.Premul; // as SKBitmap.Decode does
        info.ColorSpace = null;
        var pixels = new byte[info.BytesSize];
        var handle = GCHandle.Alloc(pixels, GCHandleType.Pinned);
        SKCodecResult result;
        try { result = codec.GetPixels(info, handle.AddrOfPinnedObject()); }
        finally { handle.Free(); }
        // A cut-short file would otherwise train on its undecoded rest (grey).
        if (result != SKCodecResult.Success)
            throw new InvalidDataException($"'{path}' cannot be decoded as an image ({result}: damaged or cut short).");
        var format = info.ColorType == SKColorType.Rgba8888 ? MLPixelFormat.Rgba32 : MLPixelFormat.Bgra32;
        if (origin == SKEncodedOrigin.TopLeft) return (pixels, info.Width, info.Height, format);
        return (Turn(pixels, info, origin), transposed ? info.Height : info.Width, transposed ? info.Width : info.Height, format);
    }

    /// <summary>Stored pixels turned upright: each EXIF orientation's flip or quarter turn, pixel for pixel (no filtering).</summary>
    private static byte[] Turn(byte[] stored, SKImageInfo info, SKEncodedOrigin origin)
    {
        float w = info.Width, h = info.Height;
        // x' = a·x + b·y + c, y' = d·x + e·y + f, mapping stored pixel corners to upright ones.
        var (a, b, c, d, e, f) = origin switch
        {
            SKEncodedOrigin.TopRight => (-1f, 0f, w, 0f, 1f, 0f),
            SKEncodedOrigin.BottomRight => (-1f, 0f, w, 0f, -1f, h),
            SKEncodedOrigin.BottomLeft => (1f, 0f, 0f, 0f, -1f, h),
            SKEncodedOrigin.LeftTop => (0f, 1f, 0f, 1f, 0f, 0f),
            SKEncodedOrigin.RightTop => (0f, -1f, h, 1f, 0f, 0f),
            SKEncodedOrigin.RightBottom => (0f, -1f, h, -1f, 0f, w),
            SKEncodedOrigin.LeftBottom => (0f, 1f, 0f, -1f, 0f, w),
            _ => (1f, 0f, 0f, 0f, 1f, 0f),
        };
        var turned = Transposed(origin) ? info.WithSize(info.Height, info.Width) : info;
        using var source = new SKBitmap();
        var handle = GCHandle.Alloc(stored, GCHandleType.Pinned);
        try
        {
            source.InstallPixels(info, handle.AddrOfPinnedObject(), info.RowBytes);
            using var target = new SKBitmap(turned);
            using (var canvas = new SKCanvas(target))
            {
                canvas.SetMatrix(new SKMatrix(a, b, c, d, e, f, 0, 0, 1));
                canvas.DrawBitmap(source, 0, 0);
            }
            var pixels = new byte[turned.BytesSize];
            Marshal.Copy(target.GetPixels(), pixels, 0, pixels.Length);
            return pixels;
        }
        finally { handle.Free(); }
    }

    /// <summary>The image's size from its header, as stored or <paramref name="upright"/>, after shrinking it by
    /// <paramref name="factor"/> as <see cref="LoadShrunk"/> and then an area average (avg_pool2d: sizes rounded down) do.</summary>
    public static (int Width, int Height) Size(string path, bool upright, int factor = 1)
    {
        using var codec = Open(path);
        var (decoded, remaining) = Shrink(codec, factor);
        var (w, h) = (decoded.Width / remaining, decoded.Height / remaining);
        return upright && Transposed(codec.EncodedOrigin) ? (h, w) : (w, h);
    }

    /// <summary>
    /// The size to decode at to shrink an image by <paramref name="factor"/>, and the factor left for an area average:
    /// the codec's smallest scale of 1/8, 1/4 and 1/2 that the factor is a multiple of (libjpeg's scaled decoding, sides
    /// rounded up; a fraction of a full decode's work for large JPEGs), or the full size for formats that do not scale.
    /// </summary>
    private static (SKSizeI Size, int Remaining) Shrink(SKCodec codec, int factor)
    {
        factor = Math.Max(factor, 1); // 0 or less: not shrunk
        foreach (int scale in new[] { 8, 4, 2 })
        {
            if (factor % scale != 0) continue;
            var size = codec.GetScaledDimensions(1f / scale);
            if (size.Width < codec.Info.Width && size.Height < codec.Info.Height) return (size, factor / scale);
        }
        return (codec.Info.Size, factor);
    }

    private static SKCodec Open(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Image not found: '{path}'.", path);
        return SKCodec.Create(path) ?? throw new InvalidDataException($"'{path}' cannot be decoded as an image (damaged, or not an image).");
    }

    /// <summary>EXIF orientations 5–8: stored on its side, so width and height swap when turned upright.</summary>
    private static bool Transposed(SKEncodedOrigin origin) => origin >= SKEncodedOrigin.LeftTop;

    /// <summary>The smallest size the codec decodes to whose scale still covers the target (the full size when none does).</summary>
    public static SKSizeI Scale(SKCodec codec, int coverWidth, int coverHeight)
    {
        var full = codec.Info.Size;
        if (coverWidth <= 0 || coverHeight <= 0) return full;
        // The scale at which the image just covers the target (CoverCrop's), so that it is then only shrunk, never enlarged.
        double needed = Math.Max((double)coverWidth / full.Width, (double)coverHeight / full.Height);
        foreach (float scale in new[] { 0.125f, 0.25f, 0.5f })
        {
            var size = codec.GetScaledDimensions(scale);
            if (size.Width >= full.Width * needed && size.Height >= full.Height * needed && size.Width < full.Width) return size;
        }
        return full;
    }
}
