using Microsoft.ML.Data;

namespace Taming.ML.Data;

/// <summary>Converts planar byte pixels (c, h, w) to and from <see cref="MLImage"/> and PNG-ready BGRA.</summary>
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

    /// <summary>A new <see cref="MLImage"/> from planar gray or RGB bytes.</summary>
    public static MLImage ToImage(ReadOnlySpan<byte> planar, int channels, int height, int width) =>
        MLImage.CreateFromPixels(width, height, MLPixelFormat.Bgra32, ToBgra(planar, channels, height, width));
}
