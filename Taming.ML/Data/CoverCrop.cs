using System.Reflection;
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
        // MLImage keeps SkiaSharp's decoded pixels: premultiplied, 4 bytes per pixel, BGRA or RGBA. Skia reads them and
        // draws the result in place, pinned: no copies beyond the one out of the MLImage.
        var colorType = image.PixelFormat == MLPixelFormat.Rgba32 ? SKColorType.Rgba8888 : SKColorType.Bgra8888;
        var sourceInfo = new SKImageInfo(image.Width, image.Height, colorType, SKAlphaType.Premul);
        var targetInfo = new SKImageInfo(width, height, colorType, SKAlphaType.Premul);
        var pixels = new byte[targetInfo.BytesSize];
        var source = GCHandle.Alloc(image.Pixels.ToArray(), GCHandleType.Pinned);
        var target = GCHandle.Alloc(pixels, GCHandleType.Pinned);
        try
        {
            using var picture = SKImage.FromPixels(sourceInfo, source.AddrOfPinnedObject(), sourceInfo.RowBytes);
            using var bitmap = new SKBitmap();
            bitmap.InstallPixels(targetInfo, target.AddrOfPinnedObject(), targetInfo.RowBytes);
            using var canvas = new SKCanvas(bitmap);
            canvas.Clear(SKColors.Black);
            var from = SourceRect(image.Width, image.Height, width, height);
            var to = new SKRect(0, 0, width, height);
            if (Sampled.Draw.Value is { } draw) draw(canvas, picture, from, to, width < from.Width);
            else
            {
                using var paint = new SKPaint { FilterQuality = SKFilterQuality.High, IsAntialias = false };
                canvas.DrawImage(picture, from, to, paint);
            }
        }
        finally
        {
            source.Free();
            target.Free();
        }
        return pixels;
    }

    /// <summary>
    /// SkiaSharp 2.88 (ML.NET 5, which this library compiles against) draws with <c>SKPaint.FilterQuality</c>: High is
    /// mipmaps when shrinking, Mitchell's cubic when enlarging. SkiaSharp 3 (ML.NET 6) ignores that property and samples
    /// each output pixel at one point of the image, which turns fine detail into noise (6–7 levels further from an area
    /// average on the shipped photos); its drawing calls take an <c>SKSamplingOptions</c> instead, found here by
    /// reflection, with the same two samplings.
    /// </summary>
    private static class Sampled
    {
        /// <summary>Draws (canvas, image, source rectangle, target rectangle, shrinking?); null on SkiaSharp 2. Lazy, so
        /// that a SkiaSharp without these members throws its own message at each use.</summary>
        public static readonly Lazy<Action<SKCanvas, SKImage, SKRect, SKRect, bool>?> Draw = new(Find);

        private static Action<SKCanvas, SKImage, SKRect, SKRect, bool>? Find()
        {
            var skia = typeof(SKCanvas).Assembly;
            var sampling = skia.GetType("SkiaSharp.SKSamplingOptions");
            if (sampling is null) return null;
            var filter = skia.GetType("SkiaSharp.SKFilterMode");
            var mipmap = skia.GetType("SkiaSharp.SKMipmapMode");
            var mitchell = skia.GetType("SkiaSharp.SKCubicResampler")?.GetField("Mitchell")?.GetValue(null);
            var drawImage = typeof(SKCanvas).GetMethod("DrawImage",
                [typeof(SKImage), typeof(SKRect), typeof(SKRect), sampling, typeof(SKPaint)]);
            if (filter is null || mipmap is null || mitchell is null || drawImage is null)
                throw new PlatformNotSupportedException(
                    $"SkiaSharp {skia.GetName().Version} has SKSamplingOptions but not the members that CropAndResizeImages draws with " +
                    "(SKFilterMode, SKMipmapMode, SKCubicResampler.Mitchell, SKCanvas.DrawImage with sampling): use the SkiaSharp that ML.NET 5.0.1 or 6.0.0 brings.");
            object shrink = Activator.CreateInstance(sampling, Enum.Parse(filter, "Linear"), Enum.Parse(mipmap, "Linear"))!;
            object enlarge = Activator.CreateInstance(sampling, mitchell)!;
            return (canvas, image, from, to, shrinking) => drawImage.Invoke(canvas, BindingFlags.DoNotWrapExceptions, null,
                [image, from, to, shrinking ? shrink : enlarge, null], null);
        }
    }
}
