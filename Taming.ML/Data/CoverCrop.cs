using System.Runtime.InteropServices;
using Microsoft.ML.Data;
using SkiaSharp;

namespace Taming.ML.Data;

/// <summary>
/// Scales an image, keeping its aspect ratio, until it covers the target size, and keeps the centre: what ML.NET's
/// <c>ResizeImages</c> does by default (IsoCrop), drawn so that every output pixel comes from the image. ML.NET 5.0
/// truncates the scaled size, so for about one source size in eight (4032×3024 phone photos among them) it leaves the
/// last row or column undrawn, black.
/// </summary>
internal static class CoverCrop
{
    /// <summary>The part of a <paramref name="sourceWidth"/>×<paramref name="sourceHeight"/> image that fills the target: centred, of the target's aspect.</summary>
    public static SKRect SourceRect(int sourceWidth, int sourceHeight, int width, int height)
    {
        double scale = Math.Max((double)width / sourceWidth, (double)height / sourceHeight);
        double w = Math.Min(sourceWidth, width / scale), h = Math.Min(sourceHeight, height / scale);
        double x = (sourceWidth - w) / 2, y = (sourceHeight - h) / 2;
        return new SKRect((float)x, (float)y, (float)(x + w), (float)(y + h));
    }

    /// <summary>The 4-byte pixels of a <paramref name="width"/>×<paramref name="height"/> image of the centre of
    /// <paramref name="image"/>, in its pixel format (<see cref="MLImage.CreateFromPixels"/> makes an image of them).</summary>
    public static byte[] Apply(MLImage image, int width, int height)
    {
        // MLImage keeps SkiaSharp's decoded pixels: premultiplied, 4 bytes per pixel, BGRA or RGBA.
        var colorType = image.PixelFormat == MLPixelFormat.Rgba32 ? SKColorType.Rgba8888 : SKColorType.Bgra8888;
        using var source = new SKBitmap(new SKImageInfo(image.Width, image.Height, colorType, SKAlphaType.Premul));
        Marshal.Copy(image.Pixels.ToArray(), 0, source.GetPixels(), 4 * image.Width * image.Height);
        using var target = new SKBitmap(new SKImageInfo(width, height, colorType, SKAlphaType.Premul));
        using (var canvas = new SKCanvas(target))
        using (var paint = new SKPaint { FilterQuality = SKFilterQuality.High, IsAntialias = false })
        {
            canvas.Clear(SKColors.Black);
            canvas.DrawBitmap(source, SourceRect(image.Width, image.Height, width, height), new SKRect(0, 0, width, height), paint);
        }
        var pixels = new byte[4 * width * height];
        Marshal.Copy(target.GetPixels(), pixels, 0, pixels.Length);
        return pixels;
    }
}
