using Taming.ML.Data;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;

namespace Taming.ML.Tests;

/// <summary>LoadFromImageFolder with a size to cover: large JPEGs decoded smaller, the same pixels after the resize.</summary>
[TestClass]
public sealed class ScaledDecodeTests
{
    private static readonly string Folder = Path.Combine(Path.GetTempPath(), "taming-scaled-" + Environment.ProcessId);

    [ClassInitialize]
    public static void WriteImages(TestContext _)
    {
        Directory.CreateDirectory(Path.Combine(Folder, "a"));
        Directory.CreateDirectory(Path.Combine(Folder, "b"));
        // Smooth colour fields (a photo's low frequencies) with some detail, 1600×1200 and 900×1400.
        void Write(string path, int w, int h, int seed, bool gray = false)
        {
            var rng = new Random(seed);
            double fx = 2 + rng.NextDouble() * 4, fy = 2 + rng.NextDouble() * 4;
            using var image = new Image<Rgb24>(w, h);
            for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                double u = (double)x / w, v = (double)y / h;
                byte r = (byte)(128 + 100 * Math.Sin(fx * u * 6.28) * Math.Cos(v * 3));
                byte g = (byte)(128 + 90 * Math.Cos(fy * v * 6.28));
                byte b = (byte)(60 + 120 * u * v + ((x / 7 + y / 7) % 2) * 20);
                image[x, y] = gray ? new Rgb24(g, g, g) : new Rgb24(r, g, b);
            }
            if (gray) image.CloneAs<L8>().SaveAsJpeg(path);
            else if (path.EndsWith(".png")) image.SaveAsPng(path);
            else image.SaveAsJpeg(path);
        }
        Write(Path.Combine(Folder, "a", "wide.jpg"), 1600, 1200, 1);
        Write(Path.Combine(Folder, "a", "gray.jpg"), 1200, 1200, 2, gray: true);
        Write(Path.Combine(Folder, "b", "tall.jpg"), 900, 1400, 3);
        Write(Path.Combine(Folder, "b", "lossless.png"), 640, 480, 4);
    }

    [ClassCleanup]
    public static void Cleanup() => Directory.Delete(Folder, recursive: true);

    private static (List<byte[][]> Pixels, List<(int, int)> Sizes) Read(MLContext ml, IDataView data, int side)
    {
        var sizes = new List<(int, int)>();
        using (var cursor = data.GetRowCursor(new[] { data.Schema["Image"] }))
        {
            var getter = cursor.GetGetter<MLImage>(data.Schema["Image"]);
            MLImage image = null!;
            while (cursor.MoveNext()) { getter(ref image); sizes.Add((image.Width, image.Height)); }
        }
        var resized = ml.Transforms.CropAndResizeImages("Image", side, side).Fit(data).Transform(data);
        return (ImagePixels.ReadColumns(resized, 3, "Image"), sizes);
    }

    [TestMethod]
    public void LargeJpegsAreDecodedSmallerAndResizeToTheSamePixels()
    {
        var ml = new MLContext(seed: 1);
        var (full, fullSizes) = Read(ml, ml.Data.LoadFromImageFolder(Folder), 64);
        var (scaled, scaledSizes) = Read(ml, ml.Data.LoadFromImageFolder(Folder, coverWidth: 64, coverHeight: 64), 64);
        CollectionAssert.AreEqual(new[] { (1200, 1200), (1600, 1200), (640, 480), (900, 1400) }, fullSizes);
        // JPEGs at 1/8 (each still covers 64×64); the PNG at its full size.
        CollectionAssert.AreEqual(new[] { (150, 150), (200, 150), (640, 480), (113, 175) }, scaledSizes);
        for (int i = 0; i < full.Count; i++)
        {
            double mean = full[i][0].Zip(scaled[i][0], (a, b) => Math.Abs(a - b)).Average();
            // Measured 0.9, 1.1, 0 and 2.1 levels: the 900-pixel side decodes to 113 (112.5 rounded up), and the
            // 7-pixel checks' edges move by a fraction of an output pixel.
            Assert.IsTrue(mean < 3.0, $"image {i}: mean difference {mean:F2} levels");
        }
        CollectionAssert.AreEqual(full[2][0], scaled[2][0], "the PNG changed");
        // The labels and paths are those of LoadImages' listing.
        CollectionAssert.AreEqual(ml.Data.LoadFromImageFolder(Folder).GetColumn<string>("ImagePath").ToArray(),
            ml.Data.LoadFromImageFolder(Folder, coverWidth: 64, coverHeight: 64).GetColumn<string>("ImagePath").ToArray());
    }

    [TestMethod]
    public void AScaleIsOnlyTakenWhereItStillCovers()
    {
        var ml = new MLContext(seed: 1);
        // 1600×1200 for 300×300: 1/4 gives 400×300, which covers; 1/8 (200×150) would not.
        var (_, sizes) = Read(ml, ml.Data.LoadFromImageFolder(Folder, coverWidth: 300, coverHeight: 300), 300);
        Assert.AreEqual((400, 300), sizes[1]);
        // Wider than tall: 1600×1200 for 400×100 needs the width, 400 of 1600 (1/4).
        (_, sizes) = Read(ml, ml.Data.LoadFromImageFolder(Folder, coverWidth: 400, coverHeight: 100), 64);
        Assert.AreEqual((400, 300), sizes[1]);
        (_, sizes) = Read(ml, ml.Data.LoadFromImageFolder(Folder, coverWidth: 2000, coverHeight: 2000), 64);
        Assert.AreEqual((1600, 1200), sizes[1], "an image smaller than the cover size is decoded in full");
        // In full, the pixels are LoadImages' own, byte for byte.
        foreach (var file in Directory.GetFiles(Folder, "*", SearchOption.AllDirectories))
        {
            using var image = MLImage.CreateFromFile(file);
            var (pixels, width, height, format) = ScaledDecode.Load(file, 0, 0);
            Assert.AreEqual((image.Width, image.Height, image.PixelFormat), (width, height, format), file);
            Assert.IsTrue(image.Pixels.SequenceEqual(pixels), $"{file}: the pixels differ from LoadImages'");
        }
    }

    [TestMethod]
    public void EveryExifOrientationTurnsUprightAsImageSharpsAutoOrientDoes()
    {
        // Four coloured quadrants of a 16×12 image: any flip or quarter turn moves them somewhere else.
        var colours = new[] { new Rgb24(255, 0, 0), new Rgb24(0, 255, 0), new Rgb24(0, 0, 255), new Rgb24(255, 255, 255) };
        for (ushort orientation = 1; orientation <= 8; orientation++)
        {
            string path = Path.Combine(Path.GetTempPath(), $"taming-orientation-{Environment.ProcessId}-{orientation}.jpg"); // not in Folder, which other tests list
            using (var stored = new Image<Rgb24>(16, 12))
            {
                for (int y = 0; y < 12; y++)
                for (int x = 0; x < 16; x++)
                    stored[x, y] = colours[(y < 6 ? 0 : 2) + (x < 8 ? 0 : 1)];
                stored.Metadata.ExifProfile = new SixLabors.ImageSharp.Metadata.Profiles.Exif.ExifProfile();
                stored.Metadata.ExifProfile.SetValue(SixLabors.ImageSharp.Metadata.Profiles.Exif.ExifTag.Orientation, orientation);
                stored.SaveAsJpeg(path, new SixLabors.ImageSharp.Formats.Jpeg.JpegEncoder { Quality = 100 });
            }
            try
            {
                using var expected = Image.Load<Rgb24>(path);
                expected.Mutate(x => x.AutoOrient());
                var (pixels, width, height, format) = ScaledDecode.Load(path, 0, 0, upright: true);
                Assert.AreEqual((expected.Width, expected.Height), (width, height), $"orientation {orientation}");
                using var image = MLImage.CreateFromPixels(width, height, format, pixels);
                var planar = ImagePixels.ToPlanarBytes(image, 3);
                foreach (var (x, y) in new[] { (2, 2), (width - 3, 2), (2, height - 3), (width - 3, height - 3) })
                {
                    var want = expected[x, y];
                    int n = width * height, i = y * width + x;
                    Assert.IsTrue(Math.Abs(planar[i] - want.R) < 40 && Math.Abs(planar[n + i] - want.G) < 40 && Math.Abs(planar[2 * n + i] - want.B) < 40,
                        $"orientation {orientation} at ({x}, {y}): {planar[i]},{planar[n + i]},{planar[2 * n + i]} vs {want}");
                }
                // Asked for the pixels as stored, every orientation reads 16×12.
                Assert.AreEqual((16, 12), (ScaledDecode.Load(path, 0, 0).Width, ScaledDecode.Load(path, 0, 0).Height));
            }
            finally { File.Delete(path); }
        }
    }

    [TestMethod]
    public void FilesThatGoMissingOrAreCutShortNameThemselves()
    {
        var folder = Folder + "-broken";
        Directory.CreateDirectory(folder);
        try
        {
            File.Copy(Path.Combine(Folder, "a", "wide.jpg"), Path.Combine(folder, "gone.jpg"));
            var bytes = File.ReadAllBytes(Path.Combine(Folder, "a", "wide.jpg"));
            File.WriteAllBytes(Path.Combine(folder, "short.jpg"), bytes[..(bytes.Length / 3)]);
            var ml = new MLContext();
            var data = ml.Data.LoadFromImageFolder(folder, coverWidth: 32, coverHeight: 32);
            File.Delete(Path.Combine(folder, "gone.jpg"));
            var options = TinyData.Options(steps: 1);
            options.Channels = 3;
            var pipeline = ml.Transforms.CropAndResizeImages("Image", TinyData.Side, TinyData.Side).Append(ml.Transforms.TokenizeImages("Tokens", "Image", options));
            var missing = Assert.ThrowsExactly<FileNotFoundException>(() => pipeline.Fit(data));
            StringAssert.Contains(missing.Message, "gone.jpg");
            var cut = Assert.ThrowsExactly<InvalidDataException>(() => pipeline.Fit(ml.Data.SkipRows(data, 1)));
            StringAssert.Contains(cut.Message, "short.jpg");
            StringAssert.Contains(cut.Message, "cut short");
            Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Data.LoadFromImageFolder(folder, coverWidth: 32));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [TestMethod]
    public void TheFirstPassOverTheDataIsReported()
    {
        var ml = new MLContext(seed: 1);
        var log = new List<string>();
        ml.Log += (_, e) => log.Add(e.RawMessage);
        var data = ml.Data.LoadFromImageFolder(Folder, coverWidth: TinyData.Side, coverHeight: TinyData.Side);
        var options = TinyData.Options(steps: 1);
        options.Channels = 3;
        var tokenizer = ml.Transforms.CropAndResizeImages("Image", TinyData.Side, TinyData.Side)
            .Append(ml.Transforms.TokenizeImages("Tokens", "Image", options)).Fit(data);
        ml.Transforms.FitPrior("Tokens", options: new GptOptions { Layers = 1, Width = 16, Heads = 2, Steps = 1, ValidationFraction = 0 })
            .Fit(tokenizer.Transform(data));
        Assert.IsTrue(log.Any(m => m.StartsWith("Read 4 images in ")), string.Join("\n", log));
        Assert.IsTrue(log.Any(m => m.StartsWith("Read 4 token grids in ")), string.Join("\n", log));

        var lines = new List<string>();
        var progress = new Taming.ML.Training.ReadProgress(lines.Add, "images", 1000, TimeSpan.Zero);
        for (int i = 0; i < 3; i++) progress.Add();
        Assert.AreEqual(3, lines.Count);
        StringAssert.StartsWith(lines[2], "Reading images: 3 of 1,000 (");
        StringAssert.Contains(lines[2], "ETA");
    }
}
