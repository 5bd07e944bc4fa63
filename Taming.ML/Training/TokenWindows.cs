using Taming.ML.Models;

namespace Taming.ML.Training;

/// <summary>
/// Random windows of token canvases, for priors that model a window of larger grids (<see cref="GptOptions.Window"/>).
/// A canvas sequence is the prefix — one start or class token, or an image condition's whole canvas — followed by the
/// canvas's image tokens, in vocabulary ids; a window of it is an ordinary sequence of the layout, the condition cut at
/// the same place as the image tokens.
/// </summary>
internal sealed class TokenWindows
{
    private readonly PriorLayout layout;
    private readonly int canvasHeight, canvasWidth;

    public TokenWindows(PriorLayout layout)
    {
        this.layout = layout;
        (canvasHeight, canvasWidth) = layout.Canvas;
    }

    /// <summary>Whether sequences are canvases larger than the modelled grid.</summary>
    public bool Windowed => (canvasHeight, canvasWidth) != (layout.GridHeight, layout.GridWidth);

    /// <summary>Windows a held-out canvas contributes to validation: about as many as cover it, at most 16.</summary>
    public int PerCanvas => Windowed
        ? Math.Clamp(canvasHeight * canvasWidth / layout.ImageLength, 1, 16)
        : 1;

    /// <summary>A random window of <paramref name="sequence"/>, or the sequence itself where the layout is not windowed.</summary>
    public long[] Draw(long[] sequence, Random rng) => Windowed
        ? Cut(sequence, rng.Next(canvasHeight - layout.GridHeight + 1), rng.Next(canvasWidth - layout.GridWidth + 1))
        : sequence;

    /// <summary>The window whose top-left token is (<paramref name="top"/>, <paramref name="left"/>).</summary>
    public long[] Cut(long[] sequence, int top, int left)
    {
        int n = canvasHeight * canvasWidth, prefix = sequence.Length - n;
        var window = new long[layout.PrefixLength + layout.ImageLength];
        if (layout.Conditioning == Conditioning.Image) CopyBlock(sequence, 0, window, 0, top, left);
        else window[0] = sequence[0];
        CopyBlock(sequence, prefix, window, layout.PrefixLength, top, left);
        return window;
    }

    private void CopyBlock(long[] source, int sourceStart, long[] destination, int destinationStart, int top, int left)
    {
        for (int r = 0; r < layout.GridHeight; r++)
            Array.Copy(source, sourceStart + (top + r) * canvasWidth + left, destination, destinationStart + r * layout.GridWidth, layout.GridWidth);
    }
}
