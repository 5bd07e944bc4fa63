namespace Taming.ML.Sampling;

/// <summary>
/// The reference's sliding-window rule (taming-transformers, scripts/sample_conditional.py) for canvases larger
/// than the prior's trained window: the token at canvas (i, j) is predicted inside the window placed at
/// (i − localI, j − localJ), where it sits at (localI, localJ). With half = window / 2, the reference takes
/// local = i while i ≤ half, window − (H − i) once H − i &lt; half, and half in between (the same for columns).
/// Written as local = max(i − (H − window), min(i, half)) it is the same for even windows and also keeps odd
/// windows inside the canvas.
/// </summary>
public static class SlidingWindow
{
    /// <summary>Position of canvas index <paramref name="i"/> inside a window of <paramref name="window"/> tokens on a canvas of <paramref name="canvas"/>.</summary>
    public static int Local(int i, int canvas, int window)
    {
        if (canvas < window) throw new ArgumentOutOfRangeException(nameof(canvas), $"The canvas ({canvas}) is smaller than the window ({window}).");
        if (i < 0 || i >= canvas) throw new ArgumentOutOfRangeException(nameof(i));
        return Math.Max(i - (canvas - window), Math.Min(i, window / 2));
    }

    /// <summary>The window's top-left corner and the position inside it for canvas token (i, j).</summary>
    public static (int Top, int Left, int LocalI, int LocalJ) Place(int i, int j, int canvasHeight, int canvasWidth, int windowHeight, int windowWidth)
    {
        int li = Local(i, canvasHeight, windowHeight), lj = Local(j, canvasWidth, windowWidth);
        return (i - li, j - lj, li, lj);
    }
}
