using Microsoft.ML.Transforms.Image;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace Taming.ML.Tests;

[TestClass]
public sealed class ImageCropResizingTests
{
    private static readonly string Folder = Path.Combine(Path.GetTempPath(), "taming-crop-" + Environment.ProcessId);

    [ClassInitialize]
    public static void WriteImages(TestContext _) => Directory.CreateDirectory(Folder);

    [ClassCleanup]
    public static void Cleanup() => Directory.Delete(Folder, recursive: true);

    private sealed class PathRow
    {
        public string Path { get; set; } = "";
    }

    private static string Write(string name, int width, int height, Func<int, int, Rgb24> pixel)
    {
        using var image = new Image<Rgb24>(width, height);
        for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++)
            image[x, y] = pixel(x, y);
        string path = Path.Combine(Folder, name);
        image.SaveAsPng(path);
        return path;
    }

    /// <summary>Every row's planar RGB pixels after <paramref name="resize"/>, copied while the row is current.</summary>
    private static List<float[]> Pixels(MLContext ml, IEnumerable<string> paths, IEstimator<ITransformer> resize)
    {
        var rows = ml.Data.LoadFromEnumerable(paths.Select(p => new PathRow { Path = p }).ToList());
        var data = ml.Transforms.LoadImages("Image", null, "Path").Append(resize)
            .Append(ml.Transforms.ExtractPixels("Pixels", "Image")).Fit(rows).Transform(rows);
        var result = new List<float[]>();
        using var cursor = data.GetRowCursor(data.Schema);
        var getter = cursor.GetGetter<VBuffer<float>>(data.Schema["Pixels"]);
        var buffer = default(VBuffer<float>);
        while (cursor.MoveNext())
        {
            getter(ref buffer);
            result.Add(buffer.DenseValues().ToArray());
        }
        return result;
    }

    [TestMethod]
    public void EveryOutputPixelComesFromTheImageWhereResizeImagesLeavesAnEdgeBlack()
    {
        var ml = new MLContext();
        // Sizes whose scaled side ML.NET truncates (a 12-megapixel phone photo among them), and ones it gets right.
        var sizes = new[] { (61, 113), (113, 61), (4032, 3024), (84, 97), (300, 200) };
        var paths = sizes.Select(s => Write($"grey-{s.Item1}x{s.Item2}.png", s.Item1, s.Item2, (_, _) => new Rgb24(200, 200, 200))).ToList();
        foreach (var (w, h) in new[] { (32, 32), (48, 32) })
        {
            var ours = Pixels(ml, paths, ml.Transforms.CropAndResizeImages("Image", w, h));
            for (int i = 0; i < sizes.Length; i++)
            {
                Assert.AreEqual(3 * w * h, ours[i].Length);
                Assert.IsTrue(ours[i].All(v => Math.Abs(v - 200) <= 1), $"{sizes[i]} → {w}×{h}: min {ours[i].Min()}");
            }
        }
        // Why the stage exists: ML.NET's ResizeImages (5.0.1 and 6.0.0) leaves a black row or column on these.
        var theirs = Pixels(ml, paths.Take(3), ml.Transforms.ResizeImages("Image", 32, 32));
        Assert.IsTrue(theirs.All(p => p.Min() == 0), "ResizeImages now draws every pixel; CropAndResizeImages may no longer be needed");
    }

    [TestMethod]
    public void TheCentreIsKeptAsResizeImagesKeepsIt()
    {
        var ml = new MLContext();
        // Thirds of a wide image: the centre third alone fills a square.
        string thirds = Write("thirds.png", 90, 30, (x, _) => x < 30 ? new Rgb24(255, 0, 0) : x < 60 ? new Rgb24(0, 255, 0) : new Rgb24(0, 0, 255));
        var square = Pixels(ml, new[] { thirds }, ml.Transforms.CropAndResizeImages("Image", 10, 10))[0];
        int n = 100;
        for (int y = 1; y < 9; y++)
        for (int x = 1; x < 9; x++)
            Assert.AreEqual(255f, square[n + y * 10 + x], 1f, $"green at ({x}, {y})");
        Assert.IsTrue(square.Take(n).Max() < 64 && square.Skip(2 * n).Max() < 64, "red or blue leaked into the centre crop");

        // On an image that ResizeImages draws fully, the two agree but for resampling noise: smooth, so that the filters
        // (ML.NET 6's ResizeImages samples points) do not matter, only where the crop lies.
        string photo = Write("waves.png", 300, 200, (x, y) =>
        {
            byte v = (byte)(128 + 100 * Math.Sin(x / 13.0) * Math.Cos(y / 9.0));
            return new Rgb24(v, (byte)(255 - v), (byte)(x * 255 / 299));
        });
        var ours = Pixels(ml, new[] { photo }, ml.Transforms.CropAndResizeImages("Image", 24, 24))[0];
        var theirs = Pixels(ml, new[] { photo }, ml.Transforms.ResizeImages("Image", 24, 24))[0];
        double meanDifference = ours.Zip(theirs).Average(p => Math.Abs(p.First - p.Second));
        Console.WriteLine($"mean difference {meanDifference:F2} from ResizeImages");
        Assert.IsTrue(meanDifference < 4, $"mean difference {meanDifference:F2} from ResizeImages");

        // Shrinking filters: pixels black or white at random, 31.25 times smaller, are an even grey (an area average's
        // spread is ±4), where sampling a point (SkiaSharp 3's default) keeps them black and white.
        var coin = new Random(7);
        var bits = Enumerable.Range(0, 1000 * 750).Select(_ => coin.Next(2) == 0).ToArray();
        string speckled = Write("speckled.png", 1000, 750, (x, y) => bits[y * 1000 + x] ? new Rgb24(255, 255, 255) : new Rgb24(0, 0, 0));
        var grey = Pixels(ml, new[] { speckled }, ml.Transforms.CropAndResizeImages("Image", 32, 24))[0];
        Console.WriteLine($"speckles shrunk to {grey.Min()}–{grey.Max()}");
        Assert.IsTrue(grey.All(v => Math.Abs(v - 127.5f) < 24), $"the speckles shrank to values from {grey.Min()} to {grey.Max()}");
    }

    [TestMethod]
    public void TheStageSavesLoadsAndStatesItsSize()
    {
        var ml = new MLContext();
        string path = Write("wide.png", 61, 113, (x, y) => new Rgb24((byte)(2 * x), (byte)y, 90));
        var rows = ml.Data.LoadFromEnumerable(new[] { new PathRow { Path = path } });
        var model = ml.Transforms.LoadImages("Image", null, "Path").Append(ml.Transforms.CropAndResizeImages("Small", 20, 12, "Image"))
            .Append(ml.Transforms.ExtractPixels("Pixels", "Small")).Fit(rows);
        var type = (ImageDataViewType)model.Transform(rows).Schema["Small"].Type;
        Assert.AreEqual((12, 20), (type.Height, type.Width));
        string zip = Path.Combine(Folder, "resize.zip");
        ml.Model.Save(model, rows.Schema, zip);
        var loaded = new MLContext().Model.Load(zip, out _);
        float[] Read(ITransformer t) => t.Transform(rows).GetColumn<VBuffer<float>>("Pixels").Single().DenseValues().ToArray();
        CollectionAssert.AreEqual(Read(model), Read(loaded));

        // Row by row, as a PredictionEngine reads it.
        var engine = ml.Model.CreatePredictionEngine<PathRow, PixelsRow>(loaded);
        CollectionAssert.AreEqual(Read(model), engine.Predict(new PathRow { Path = path }).Pixels);
    }

    [TestMethod]
    public void TheStageSavedByTheFirstReleaseWithItLoads()
    {
        // Fixtures/crop-resize-1.1.zip: CropAndResizeImages("Small", 20, 12, "Image") as first saved.
        var ml = new MLContext();
        var stage = (ImageCropResizingTransformer)ml.Model.Load(Path.Combine(AppContext.BaseDirectory, "Fixtures", "crop-resize-1.1.zip"), out _);
        Assert.AreEqual(("Small", "Image", 20, 12), (stage.OutputColumnName, stage.InputColumnName, stage.Width, stage.Height));
        var type = (ImageDataViewType)stage.Transform(TinyData.ImageView(1, side: 16)).Schema["Small"].Type;
        Assert.AreEqual((12, 20), (type.Height, type.Width));
    }

    private sealed class PixelsRow
    {
        public float[] Pixels { get; set; } = Array.Empty<float>();
    }

    [TestMethod]
    public void TextColumnsSizesAndMissingColumnsAreNamed()
    {
        var ml = new MLContext();
        var rows = ml.Data.LoadFromEnumerable(new[] { new PathRow { Path = "a.png" } });
        var text = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Transforms.CropAndResizeImages("Image", 8, 8, "Path").Fit(rows));
        StringAssert.Contains(text.Message, "Column 'Path' has type");
        StringAssert.Contains(text.Message, "expected an image column");
        var missing = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Transforms.CropAndResizeImages("Image", 8, 8).Fit(rows));
        StringAssert.Contains(missing.Message, "'Image' not found");
        var size = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Transforms.CropAndResizeImages("Image", 0, 8));
        StringAssert.Contains(size.Message, "0×8");
    }
}
