using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using Taming.ML.Data;
using Taming.ML.Sampling;

namespace Taming.ML.Tests;

[TestClass]
public sealed class RandomCropTests
{
    private static readonly string Folder = Path.Combine(Path.GetTempPath(), "taming-crops-" + Environment.ProcessId);
    private static string Photo => Path.Combine(Folder, "photo.png");

    [ClassInitialize]
    public static void WritePhoto(TestContext _)
    {
        Directory.CreateDirectory(Folder);
        using var image = new Image<Rgb24>(40, 24);
        for (int y = 0; y < 24; y++)
        for (int x = 0; x < 40; x++)
            image[x, y] = new Rgb24((byte)(x * 6), (byte)(y * 10), 77);
        image.SaveAsPng(Photo);
    }

    [ClassCleanup]
    public static void Cleanup() => Directory.Delete(Folder, recursive: true);

    [TestMethod]
    public void CropsAreRgbOfTheRequestedSizeAndRepeatableBySeed()
    {
        var ml = new MLContext();
        var log = new List<string>();
        ml.Log += (_, e) => log.Add(e.RawMessage);
        var crops = ml.Data.LoadRandomCrops(new[] { Photo }, cropSize: 8, count: 5, seed: 3, downscale: 2);
        Assert.IsTrue(log.Any(m => m.StartsWith("Read 1 images to crop in")), "the pass over the images is logged");
        var type = (Microsoft.ML.Transforms.Image.ImageDataViewType)crops.Schema["Image"].Type;
        Assert.AreEqual((8, 8), (type.Height, type.Width));
        byte[][] Read(IDataView view) => view.GetColumn<MLImage>(view.Schema["Image"]).Select(i => ImagePixels.ToPlanarBytes(i, 3)).ToArray();
        var first = Read(crops);
        Assert.AreEqual(5, first.Length);
        // Blue is constant, so every crop's blue plane is 77; red grows to the right (shrunk 2×: 12 per pixel).
        Assert.IsTrue(first.All(c => c.Skip(128).All(b => b == 77)));
        Assert.IsTrue(first.All(c => c[1] - c[0] == 12));
        CollectionAssert.AreEqual(first[4], Read(ml.Data.LoadRandomCrops(new[] { Photo }, 8, 5, seed: 3, downscale: 2))[4]);
        // A folder stands for every image in it: here the one photo, so the same crops.
        CollectionAssert.AreEqual(first[4], Read(ml.Data.LoadRandomCrops(Folder, 8, 5, seed: 3, downscale: 2))[4]);
    }

    [TestMethod]
    public void EachCropComesWholeFromOnePhotoOfSeveral()
    {
        string other = Path.Combine(Path.GetTempPath(), $"taming-crops-other-{Environment.ProcessId}.png"); // not in Folder, whose crops other tests read
        using (var image = new Image<Rgb24>(30, 50, new Rgb24(10, 20, 200))) image.SaveAsPng(other);
        byte[][] crops;
        try { crops = RandomCrops.Take(new[] { Photo, other }, size: 8, count: 40, seed: 5, downscale: 1); }
        finally { File.Delete(other); }
        // The photos differ in blue (77 and 200, constant in each), so a crop's blue plane says which one it came from.
        var blues = crops.Select(c => c.Skip(128).Distinct().Single()).ToList();
        CollectionAssert.AreEquivalent(new byte[] { 77, 200 }, blues.Distinct().ToArray());
        Assert.IsTrue(crops.Where((c, i) => blues[i] == 200).All(c => c.Take(64).All(r => r == 10)), "the second photo's crops are its own red");
    }

    [TestMethod]
    public void UprightCropsComeFromThePhotoTurnedAsItsExifOrientationSays()
    {
        // Stored 12×10, red above blue, with orientation 6 (shown turned a quarter clockwise: 10×12, blue left of red).
        string path = Path.Combine(Path.GetTempPath(), $"taming-crops-turned-{Environment.ProcessId}.jpg");
        using (var image = new Image<Rgb24>(12, 10))
        {
            for (int y = 0; y < 10; y++)
            for (int x = 0; x < 12; x++)
                image[x, y] = y < 5 ? new Rgb24(255, 0, 0) : new Rgb24(0, 0, 255);
            image.Metadata.ExifProfile = new SixLabors.ImageSharp.Metadata.Profiles.Exif.ExifProfile();
            image.Metadata.ExifProfile.SetValue(SixLabors.ImageSharp.Metadata.Profiles.Exif.ExifTag.Orientation, (ushort)6);
            image.SaveAsJpeg(path);
        }
        try
        {
            static int Red(byte[] crop, int x, int y) => crop[y * 10 + x];
            var stored = RandomCrops.Take(new[] { path }, size: 10, count: 3, seed: 1, downscale: 1);
            Assert.IsTrue(stored.All(c => Red(c, 5, 1) > 200 && Red(c, 5, 8) < 50), "as stored: red above blue");
            var upright = RandomCrops.Take(new[] { path }, size: 10, count: 3, seed: 1, downscale: 1, upright: true);
            Assert.IsTrue(upright.All(c => Red(c, 8, 5) > 200 && Red(c, 1, 5) < 50), "upright: blue left of red");
            // Upright, the photo is 10 wide: an 11-pixel crop no longer fits, and the message gives the upright size.
            var e = Assert.ThrowsExactly<ArgumentException>(() => RandomCrops.Take(new[] { path }, 11, 1, 1, 1, upright: true));
            StringAssert.Contains(e.Message, "10×12");
        }
        finally { File.Delete(path); }
    }

    [TestMethod]
    public void MissingPhotosAndOversizedCropsAreNamed()
    {
        var ml = new MLContext();
        Assert.ThrowsExactly<FileNotFoundException>(() => ml.Data.LoadRandomCrops(new[] { Path.Combine(Folder, "none.png") }, 8, 1));
        var e = Assert.ThrowsExactly<ArgumentException>(() => ml.Data.LoadRandomCrops(new[] { Photo }, 16, 1, downscale: 2));
        StringAssert.Contains(e.Message, "20×12");
        // A photo cut short is named, as itself, not wrapped by the parallel decoding nor cropped from its grey rest.
        string cut = Path.Combine(Path.GetTempPath(), $"taming-crops-cut-{Environment.ProcessId}.jpg");
        try
        {
            using (var noise = new Image<Rgb24>(64, 64))
            {
                var rng = new Random(1);
                for (int y = 0; y < 64; y++)
                for (int x = 0; x < 64; x++)
                    noise[x, y] = new Rgb24((byte)rng.Next(256), (byte)rng.Next(256), (byte)rng.Next(256));
                noise.SaveAsJpeg(cut);
            }
            File.WriteAllBytes(cut, File.ReadAllBytes(cut)[..(int)(new FileInfo(cut).Length / 2)]);
            var damaged = Assert.ThrowsExactly<InvalidDataException>(() => ml.Data.LoadRandomCrops(new[] { Photo, cut }, 8, 20));
            StringAssert.Contains(damaged.Message, cut);
        }
        finally { File.Delete(cut); }
        // Crops that would not fit in memory are refused before any photo is decoded.
        var tooMany = Assert.ThrowsExactly<InvalidOperationException>(() => RandomCrops.Take(new[] { Photo }, 8, 1000, 1, 1, memoryLimit: 100_000));
        StringAssert.Contains(tooMany.Message, "1,000 images of 8×8×3");
        StringAssert.Contains(tooMany.Message, "fewer crops");
    }

    [TestMethod]
    public void JpegsShrinkByScaledDecodingToWithinALevelOfAnAreaAverage()
    {
        // A smooth 100×100 JPEG, and the same pixels as a PNG (which does not decode scaled).
        string jpeg = Path.Combine(Path.GetTempPath(), $"taming-crops-shrink-{Environment.ProcessId}.jpg");
        string png = Path.ChangeExtension(jpeg, ".png");
        using (var image = new Image<Rgb24>(100, 100))
        {
            for (int y = 0; y < 100; y++)
            for (int x = 0; x < 100; x++)
                image[x, y] = new Rgb24((byte)(x * 2.5), (byte)(y * 2.5), (byte)(128 + 100 * Math.Sin(x / 9.0)));
            image.SaveAsJpeg(jpeg, new SixLabors.ImageSharp.Formats.Jpeg.JpegEncoder { Quality = 95 });
            image.SaveAsPng(png);
        }
        try
        {
            var (full, w, h, format) = ScaledDecode.Load(jpeg, 0, 0);
            var planar = ImagePixels.ToPlanar<byte>(full, format, w * h, 3);
            foreach (var (factor, side) in new[] { (2, 50), (3, 33), (4, 25), (8, 13), (16, 6) })
            {
                // libjpeg rounds scaled sides up (1/8 of 100: 13), an area average down (then 2× more: 6); a PNG only averages.
                Assert.AreEqual((side, side), ScaledDecode.Size(jpeg, upright: false, factor), $"factor {factor}");
                Assert.AreEqual((100 / factor, 100 / factor), ScaledDecode.Size(png, upright: false, factor), $"PNG, factor {factor}");
                Assert.AreEqual(3 * (100 / factor) * (100 / factor), RandomCrops.Take(new[] { png }, 100 / factor, 1, 1, factor)[0].Length);
                // The whole shrunk image as one crop, against the area average of the full decode where that covers whole pixels.
                var crop = RandomCrops.Take(new[] { jpeg }, size: side, count: 1, seed: 1, downscale: factor)[0];
                double total = 0, most = 0;
                int n = 0;
                for (int c = 0; c < 3; c++)
                for (int y = 0; y < 100 / factor; y++)
                for (int x = 0; x < 100 / factor; x++)
                {
                    double sum = 0;
                    for (int dy = 0; dy < factor; dy++)
                    for (int dx = 0; dx < factor; dx++)
                        sum += planar[(c * h + y * factor + dy) * w + x * factor + dx];
                    double d = Math.Abs(crop[(c * side + y) * side + x] - sum / (factor * factor));
                    (total, most, n) = (total + d, Math.Max(most, d), n + 1);
                }
                Assert.IsTrue(total / n < 1.5 && most < 8, $"factor {factor}: mean {total / n:F2}, largest {most:F1} levels");
            }
        }
        finally
        {
            File.Delete(jpeg);
            File.Delete(png);
        }
    }

    [TestMethod]
    public void WholeImageTokenizingMatchesTheTransformOnTrainingSizedImages()
    {
        var ml = new MLContext(seed: 1);
        var data = TinyData.ImageView(2);
        var tokenizer = ml.Transforms.TokenizeImages("Tokens", "Image", TinyData.Options(steps: 3)).Fit(data);
        var viaTransform = TinyData.Tokens(tokenizer.Transform(data)).Take(16).Select(k => (long)k - 1).ToArray();
        using var image = ImagePixels.ToImage(TinyData.Images(1)[0], 1, 8, 8);
        var (ids, h, w) = tokenizer.TokenizeImage(image);
        Assert.AreEqual((4, 4), (h, w));
        CollectionAssert.AreEqual(viaTransform, ids);

        using var wide = ImagePixels.ToImage(new byte[8 * 12], 1, 8, 12);
        Assert.AreEqual((4, 6), (tokenizer.TokenizeImage(wide).Height, tokenizer.TokenizeImage(wide).Width));
        using var odd = ImagePixels.ToImage(new byte[8 * 9], 1, 8, 9);
        Assert.ThrowsExactly<ArgumentException>(() => tokenizer.TokenizeImage(odd));
    }

    [TestMethod]
    public void WholeImagesTokenizeInAPipelineAndAWindowedPriorGeneratesThemWhole()
    {
        var ml = new MLContext(seed: 1);
        var tokenizer = ml.Transforms.TokenizeImages("Tokens", "Image", TinyData.Options(steps: 3)).Fit(TinyData.ImageView(8));
        var paths = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 3).Select(_ => new PathRow { Path = Photo }).ToArray());
        var loaded = ml.Transforms.LoadImages("Photo", null, "Path").Fit(paths).Transform(paths);
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Transforms.TokenizeWholeImages("Tokens", "Photo", tokenizer).Fit(loaded));
        StringAssert.Contains(e.Message, "no stated size");
        var odd = ml.Transforms.ResizeImages("Photo", 41, 24, "Photo").Fit(loaded).Transform(loaded);
        e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Transforms.TokenizeWholeImages("Tokens", "Photo", tokenizer).Fit(odd));
        StringAssert.Contains(e.Message, "multiples of 2");
        e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => tokenizer.Transform(TinyData.ImageView(1, side: 16)));
        StringAssert.Contains(e.Message, "TokenizeWholeImages"); // the trained-size tokenizer points to the whole-image one

        // The 40×24 photo, whole: a 12×20 grid, the ids TokenizeImage gives, kept through save and load.
        var sized = ml.Transforms.ResizeImages("Photo", 40, 24, "Photo").Fit(loaded).Transform(loaded);
        var whole = ml.Transforms.TokenizeWholeImages("Tokens", "Photo", tokenizer).Fit(sized);
        var tokens = whole.Transform(sized);
        CollectionAssert.AreEqual(new[] { 12, 20 }, ((VectorDataViewType)tokens.Schema["Tokens"].Type).Dimensions.ToArray());
        var ids = TinyData.Tokens(tokens);
        Assert.AreEqual(3 * 240, ids.Length);
        using (var photo = MLImage.CreateFromFile(Photo))
            CollectionAssert.AreEqual(tokenizer.TokenizeImage(photo).Tokens, ids.Take(240).Select(k => (long)k - 1).ToArray());
        // Reconstruction metrics of whole images: the whole-image tokenizer measures them at their size; the
        // trained-size one refuses them and names the other.
        var metrics = ml.Taming().EvaluateReconstruction(sized, whole, "Photo", gridPath: Path.Combine(Folder, "whole.png"), rfid: false);
        Assert.AreEqual(3, metrics.Count);
        Assert.IsTrue(metrics.Psnr is > 5 and < 100, $"PSNR {metrics.Psnr}");
        using (var grid = MLImage.CreateFromFile(Path.Combine(Folder, "whole.png")))
            Assert.IsTrue(grid.Width >= 2 * 40 && grid.Height >= 2 * 2 * 24, $"{grid.Width}×{grid.Height}");
        e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Taming().EvaluateReconstruction(sized, tokenizer, "Photo", rfid: false));
        StringAssert.Contains(e.Message, "TokenizeWholeImages");

        // Row by row through a PredictionEngine, as a serving application would.
        var engine = ml.Model.CreatePredictionEngine<PhotoRow, TokenRow>(whole);
        using (var photo = MLImage.CreateFromFile(Photo))
            CollectionAssert.AreEqual(ids.Take(240).ToArray(), engine.Predict(new PhotoRow { Photo = photo }).Tokens);
        string path = Path.Combine(Folder, "whole.zip");
        ml.Model.Save(whole, sized.Schema, path);
        var reloaded = (VqganTokenizerTransformer)new MLContext().Model.Load(path, out _);
        Assert.IsTrue(reloaded.WholeImages);
        CollectionAssert.AreEqual(ids, TinyData.Tokens(reloaded.Transform(sized)));

        // A prior fitted on 4×4 windows of the whole grids generates, by default, whole grids, which decode to whole photos.
        var prior = ml.Transforms.FitPrior("Tokens", options: new GptOptions { Layers = 1, Heads = 1, Width = 16, Steps = 3, Window = 4 }).Fit(tokens);
        Assert.AreEqual((4, 4, (12, 20)), (prior.Layout.GridHeight, prior.Layout.GridWidth, prior.Layout.Canvas));
        var rows = ml.Data.LoadFromEnumerable(new[] { new PathRow { Path = "" } });
        var generated = ml.Transforms.GenerateTokens("Generated", prior, options: new SamplingOptions { WindowMode = WindowMode.Strided })
            .Append(ml.Transforms.DecodeTokens("Decoded", "Generated", tokenizer)).Fit(rows).Transform(rows);
        var decoded = generated.GetColumn<MLImage>(generated.Schema["Decoded"]).Single();
        Assert.AreEqual((24, 40), (decoded.Height, decoded.Width));
    }

    private sealed class PhotoRow
    {
        [Microsoft.ML.Transforms.Image.ImageType(24, 40)] public MLImage Photo { get; set; } = null!;
    }

    private sealed class TokenRow
    {
        public uint[] Tokens { get; set; } = Array.Empty<uint>();
    }

    private sealed class PathRow
    {
        public string Path { get; set; } = "";
    }
}
