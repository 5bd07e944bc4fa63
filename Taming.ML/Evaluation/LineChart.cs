using System.Globalization;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace Taming.ML.Evaluation;

/// <summary>One named line of (x, y) points.</summary>
internal sealed record ChartSeries(string Name, List<(double X, double Y)> Points);

/// <summary>A titled plot of one or more series sharing its axes.</summary>
internal sealed record ChartPanel(string Title, List<ChartSeries> Series);

/// <summary>
/// Draws panels of line plots, stacked, into a PNG: a title and legend per panel, three labelled ticks on each axis, and a
/// logarithmic y axis where the values are positive and span a factor of four or more (on a linear one, a loss that falls
/// tenfold in its first hundred steps flattens the rest of its curve).
/// </summary>
internal static class LineChart
{
    private const int Scale = 2, PanelHeight = 200, TitleBand = 28, PlotHeight = 136, Left = 104, Right = 24;
    private static readonly Rgb24 White = new(255, 255, 255), Ink = new(40, 40, 40), Frame = new(150, 150, 150), Grid = new(228, 228, 228);
    private static readonly Rgb24[] Palette = { new(31, 119, 180), new(255, 127, 14), new(44, 160, 44), new(214, 39, 40) };

    /// <summary>The colour of the <paramref name="index"/>-th series of a panel.</summary>
    public static Rgb24 Color(int index) => Palette[index % Palette.Length];

    /// <summary>The top of panel <paramref name="panel"/>'s plot area, and its height.</summary>
    public static (int Top, int Height) PlotArea(int panel) => (panel * PanelHeight + TitleBand, PlotHeight);

    public static void SavePng(string path, IReadOnlyList<ChartPanel> panels, int width)
    {
        if (panels.Count == 0) throw new ArgumentException($"There is nothing to draw to '{path}'.", nameof(panels));
        if (width < Left + Right + 100) throw new ArgumentOutOfRangeException(nameof(width), $"width must be at least {Left + Right + 100} pixels; got {width}.");
        using var image = new Image<Rgb24>(width, panels.Count * PanelHeight, White);
        for (int i = 0; i < panels.Count; i++) DrawPanel(image, panels[i], i * PanelHeight, width);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        image.SaveAsPng(path);
    }

    private static void DrawPanel(Image<Rgb24> image, ChartPanel panel, int top, int width)
    {
        int x0 = Left, x1 = width - Right, y0 = top + TitleBand, y1 = y0 + PlotHeight;
        int x = x0;
        PixelFont.Draw(image, panel.Title, x, top + 6, Ink, Scale);
        x += PixelFont.Width(panel.Title, Scale) + 24;
        for (int s = 0; s < panel.Series.Count && panel.Series.Count > 1; s++)
        {
            Fill(image, x, top + 8, x + 10, top + 18, Color(s));
            PixelFont.Draw(image, panel.Series[s].Name, x + 16, top + 6, Ink, Scale);
            x += 16 + PixelFont.Width(panel.Series[s].Name, Scale) + 16;
        }

        var finite = panel.Series.Select(s => s.Points.Where(p => double.IsFinite(p.X) && double.IsFinite(p.Y)).ToList()).ToList();
        var points = finite.SelectMany(p => p).ToList();
        Box(image, x0, y0, x1, y1, Frame);
        if (points.Count == 0)
        {
            PixelFont.Draw(image, "no finite values", x0 + 12, y0 + 12, Ink, Scale);
            return;
        }
        PixelFont.Draw(image, "step", x0 - 8 - PixelFont.Width("step", Scale), y1 + 6, Frame, Scale); // what the x axis counts
        var xAxis = Axis.For(points.Select(p => p.X), logarithmic: false);
        var yAxis = Axis.For(points.Select(p => p.Y), logarithmic: points.All(p => p.Y > 0) && points.Max(p => p.Y) >= 4 * points.Min(p => p.Y), margin: 0.05);
        for (int t = 0; t < 3; t++)
        {
            double at = t / 2.0, value = yAxis.ValueAt(at);
            int y = (int)Math.Round(y1 - yAxis.Position(value) * (y1 - y0));
            for (int gx = x0 + 1; gx < x1; gx++) image[gx, y] = Grid;
            string label = Axis.Format(value);
            PixelFont.Draw(image, label, x0 - 8 - PixelFont.Width(label, Scale), Math.Clamp(y - 7, top, y1 - 14), Ink, Scale);
            int gridX = (int)Math.Round(x0 + at * (x1 - x0));
            if (t is 1) for (int gy = y0 + 1; gy < y1; gy++) image[gridX, gy] = Grid;
            string xLabel = Axis.Format(xAxis.ValueAt(at));
            int labelX = t switch { 0 => x0, 1 => gridX - PixelFont.Width(xLabel, Scale) / 2, _ => x1 - PixelFont.Width(xLabel, Scale) };
            PixelFont.Draw(image, xLabel, labelX, y1 + 6, Ink, Scale);
        }
        for (int s = 0; s < panel.Series.Count; s++)
        {
            var line = finite[s].Select(p => (X: x0 + xAxis.Position(p.X) * (x1 - x0), Y: y1 - yAxis.Position(p.Y) * (y1 - y0))).ToList();
            if (line.Count == 1) Fill(image, (int)line[0].X - 2, (int)line[0].Y - 2, (int)line[0].X + 2, (int)line[0].Y + 2, Color(s));
            for (int i = 1; i < line.Count; i++) Segment(image, line[i - 1], line[i], Color(s));
        }
    }

    /// <summary>A 2-pixel-wide line between two points.</summary>
    private static void Segment(Image<Rgb24> image, (double X, double Y) a, (double X, double Y) b, Rgb24 color)
    {
        int n = (int)Math.Ceiling(Math.Max(Math.Abs(b.X - a.X), Math.Abs(b.Y - a.Y))) + 1;
        for (int i = 0; i <= n; i++)
        {
            int x = (int)Math.Round(a.X + (b.X - a.X) * i / n), y = (int)Math.Round(a.Y + (b.Y - a.Y) * i / n);
            PixelFont.Plot(image, x, y, color);
            PixelFont.Plot(image, x + 1, y, color);
            PixelFont.Plot(image, x, y + 1, color);
        }
    }

    private static void Fill(Image<Rgb24> image, int xa, int ya, int xb, int yb, Rgb24 color)
    {
        for (int y = ya; y <= yb; y++)
        for (int x = xa; x <= xb; x++)
            PixelFont.Plot(image, x, y, color);
    }

    private static void Box(Image<Rgb24> image, int xa, int ya, int xb, int yb, Rgb24 color)
    {
        for (int x = xa; x <= xb; x++) { PixelFont.Plot(image, x, ya, color); PixelFont.Plot(image, x, yb, color); }
        for (int y = ya; y <= yb; y++) { PixelFont.Plot(image, xa, y, color); PixelFont.Plot(image, xb, y, color); }
    }

    /// <summary>
    /// Where values lie on an axis (0–1), linear or logarithmic. The y axis keeps a margin at both ends, so that lines stay
    /// off the frame while the ticks name the data's own lowest and highest values.
    /// </summary>
    private sealed record Axis(double Low, double High, bool Logarithmic, double Margin)
    {
        public static Axis For(IEnumerable<double> values, bool logarithmic, double margin = 0)
        {
            var v = values.Select(x => logarithmic ? Math.Log10(x) : x).ToList();
            double low = v.Min(), high = v.Max();
            if (high - low < 1e-12 * Math.Max(1, Math.Abs(high))) // one value: a range around it
                (low, high) = (low - Math.Max(1e-3, Math.Abs(low) * 0.1), high + Math.Max(1e-3, Math.Abs(high) * 0.1));
            return new Axis(low, high, logarithmic, margin);
        }

        public double Position(double value) => Margin + (1 - 2 * Margin) * ((Logarithmic ? Math.Log10(value) : value) - Low) / (High - Low);

        /// <summary>The value <paramref name="share"/> of the way from the lowest value to the highest.</summary>
        public double ValueAt(double share)
        {
            double v = Low + share * (High - Low);
            return Logarithmic ? Math.Pow(10, v) : v;
        }

        /// <summary>Three significant figures, whole numbers from 1,000 (step counts), powers of ten for very small or large values.</summary>
        public static string Format(double value) => value == 0 ? "0"
            : Math.Abs(value) is < 1e-2 or >= 1e9 ? value.ToString("0.0E+0", CultureInfo.InvariantCulture)
            : Math.Abs(value) >= 1000 ? value.ToString("#,0", CultureInfo.InvariantCulture)
            : value.ToString("G3", CultureInfo.InvariantCulture);
    }
}
