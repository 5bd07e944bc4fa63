using Taming.ML.Data;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace Taming.ML.Tests;

[TestClass]
public sealed class ImageFolderTests
{
    private static readonly string Folder = Path.Combine(Path.GetTempPath(), "taming-folder-" + Environment.ProcessId);

    [ClassInitialize]
    public static void WriteImages(TestContext _)
    {
        var rng = new Random(1);
        foreach (var label in new[] { "red", "blue" })
        {
            Directory.CreateDirectory(Path.Combine(Folder, label));
            for (int i = 0; i < 6; i++)
            {
                using var image = new Image<Rgb24>(10, 12);
                for (int y = 0; y < 12; y++)
                for (int x = 0; x < 10; x++)
                {
                    byte v = (byte)rng.Next(256);
                    image[x, y] = label == "red" ? new Rgb24(200, v, 30) : new Rgb24(20, v, 220);
                }
                image.SaveAsPng(Path.Combine(Folder, label, $"{i}.png"));
            }
        }
        File.WriteAllText(Path.Combine(Folder, "notes.txt"), "not an image");
    }

    [ClassCleanup]
    public static void Cleanup() => Directory.Delete(Folder, recursive: true);

    [TestMethod]
    public void FolderOfColourImagesTrainsThroughResizeImages()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromImageFolder(Folder);
        Assert.AreEqual(2UL, ((KeyDataViewType)data.Schema["Label"].Type).Count);
        var options = TinyData.Options(steps: 4);
        options.Channels = 0; // taken from the image column: RGB
        var model = ml.Transforms.ResizeImages("Image", TinyData.Side, TinyData.Side)
            .Append(ml.Transforms.TokenizeImages("Tokens", "Image", options))
            .Fit(data);
        Assert.AreEqual(3, TamingCatalog.FindTokenizer(model).Channels);
        Assert.AreEqual(12 * 16, TinyData.Tokens(model.Transform(data)).Length);
    }

    [TestMethod]
    public void BytePixelsTokenizeAsFloatPixelsDo()
    {
        var ml = new MLContext(seed: 1);
        var images = ml.Transforms.ResizeImages("Image", TinyData.Side, TinyData.Side).Fit(ml.Data.LoadFromImageFolder(Folder))
            .Transform(ml.Data.LoadFromImageFolder(Folder));
        IDataView Pixels(bool floats) => ml.Transforms.ExtractPixels("Pixels", "Image", outputAsFloatArray: floats).Fit(images).Transform(images);
        var options = TinyData.Options(steps: 2);
        options.Channels = 0;
        var tokenizer = ml.Transforms.TokenizeImages("Tokens", "Pixels", options).Fit(Pixels(floats: false));
        Assert.AreEqual(3, tokenizer.Channels);
        CollectionAssert.AreEqual(TinyData.Tokens(tokenizer.Transform(Pixels(floats: true))), TinyData.Tokens(tokenizer.Transform(Pixels(floats: false))));
    }

    [TestMethod]
    public void MissingFolderIsNamed()
    {
        var e = Assert.ThrowsExactly<DirectoryNotFoundException>(() => new MLContext().Data.LoadFromImageFolder(Path.Combine(Folder, "nope")));
        StringAssert.Contains(e.Message, "nope");
    }

    [TestMethod]
    public void DamagedImageFilesAreNamedBeforeTraining()
    {
        var folder = Path.Combine(Folder + "-damaged", "red");
        Directory.CreateDirectory(folder);
        try
        {
            File.Copy(Path.Combine(Folder, "red", "0.png"), Path.Combine(folder, "good.png"));
            File.WriteAllBytes(Path.Combine(folder, "broken.jpg"), new byte[] { 0xFF, 0xD8, 0xFF, 0x00, 1, 2, 3 });
            var ml = new MLContext();
            var listing = Assert.ThrowsExactly<InvalidDataException>(() => ml.Data.LoadFromImageFolder(Path.GetDirectoryName(folder)!));
            StringAssert.Contains(listing.Message, Path.Combine("red", "broken.jpg"));
            Assert.IsFalse(listing.Message.Contains("good.png"), listing.Message);

            // A pipeline of the user's own: LoadImages decodes lazily, so the tokenizer names the column and the row.
            var rows = ml.Data.LoadFromEnumerable(new[] { new PathRow { Path = "good.png" }, new PathRow { Path = "broken.jpg" } });
            var images = ml.Transforms.LoadImages("Image", folder, "Path").Append(ml.Transforms.ResizeImages("Image", TinyData.Side, TinyData.Side))
                .Fit(rows).Transform(rows);
            var options = TinyData.Options(steps: 2);
            options.Channels = 0;
            var decode = Assert.ThrowsExactly<InvalidDataException>(() => ml.Transforms.TokenizeImages("Tokens", "Image", options).Fit(images));
            StringAssert.Contains(decode.Message, "'Image', row 1");
            StringAssert.Contains(decode.Message, "could not be decoded");
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(folder)!, recursive: true);
        }
    }

    [TestMethod]
    public void ImagesBesideTheClassFoldersAreWarnedAbout()
    {
        string folder = Folder + "-loose";
        Directory.CreateDirectory(Path.Combine(folder, "cats"));
        try
        {
            foreach (var copy in new[] { Path.Combine("cats", "a.png"), "stray.png" })
                File.Copy(Path.Combine(Folder, "red", "0.png"), Path.Combine(folder, copy));
            var ml = new MLContext();
            var warnings = Warnings(ml);
            var data = ml.Data.LoadFromImageFolder(folder);
            Assert.AreEqual(1UL, ((KeyDataViewType)data.Schema["Label"].Type).Count, "only the sub-folder is a class");
            CollectionAssert.AreEqual(new uint[] { 1, 0 }, data.GetColumn<uint>("Label").ToArray(), "the loose image's label is missing");
            Assert.AreEqual(1, warnings.Count, string.Join("\n", warnings));
            StringAssert.Contains(warnings[0], "1 image(s) lie beside the class sub-folders");
            StringAssert.Contains(warnings[0], "stray.png");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>The warnings the context logs from now on.</summary>
    private static List<string> Warnings(MLContext ml)
    {
        var warnings = new List<string>();
        ml.Log += (_, e) => { if (e.Kind == Microsoft.ML.Runtime.ChannelMessageKind.Warning) warnings.Add(e.Message); };
        return warnings;
    }

    [TestMethod]
    public void HiddenFilesAndFormatsThatCannotBeDecodedAreLeftOut()
    {
        var folder = Folder + "-tiff";
        Directory.CreateDirectory(Path.Combine(folder, "scans"));
        try
        {
            File.Copy(Path.Combine(Folder, "red", "0.png"), Path.Combine(folder, "scans", "good.png"));
            using (var image = new Image<Rgb24>(10, 12)) image.SaveAsTiff(Path.Combine(folder, "scans", "scan.tif"));
            File.WriteAllText(Path.Combine(folder, "readme.txt"), "not an image, and not reported");
            // Hidden files: macOS's AppleDouble copies carry the image's extension but are not images.
            File.WriteAllBytes(Path.Combine(folder, "scans", "._good.png"), new byte[] { 0, 5, 22, 7, 0, 2 });
            Directory.CreateDirectory(Path.Combine(folder, ".ipynb_checkpoints"));
            File.Copy(Path.Combine(Folder, "red", "0.png"), Path.Combine(folder, ".ipynb_checkpoints", "good.png"));
            var ml = new MLContext();
            var warnings = Warnings(ml);
            Assert.AreEqual(1, ml.Data.LoadFromImageFolder(folder).GetColumn<string>("ImagePath").Count());
            Assert.AreEqual(1, warnings.Count, string.Join("\n", warnings));
            StringAssert.Contains(warnings[0], "1 .tif");
            StringAssert.Contains(warnings[0], Path.Combine("scans", "scan.tif"));
            Assert.IsFalse(warnings[0].Contains("readme"), warnings[0]);

            // With nothing else there, the error says why the folder holds no images.
            File.Delete(Path.Combine(folder, "scans", "good.png"));
            var e = Assert.ThrowsExactly<InvalidDataException>(() => ml.Data.LoadRandomCrops(folder, 4, 1));
            StringAssert.Contains(e.Message, "cannot decode (1 .tif");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [TestMethod]
    public void PhotosThatExifTurnsAreReportedAsReadAsStoredOrTurnedUprightOnRequest()
    {
        var folder = Folder + "-exif";
        Directory.CreateDirectory(folder);
        try
        {
            // Stored 12×10, red above blue; orientation 6 shows it turned a quarter clockwise: 10×12, blue left of red.
            using (var image = new Image<Rgb24>(12, 10))
            {
                for (int y = 0; y < 10; y++)
                for (int x = 0; x < 12; x++)
                    image[x, y] = y < 5 ? new Rgb24(255, 0, 0) : new Rgb24(0, 0, 255);
                image.SaveAsJpeg(Path.Combine(folder, "upright.jpg"));
                image.Metadata.ExifProfile = new SixLabors.ImageSharp.Metadata.Profiles.Exif.ExifProfile();
                image.Metadata.ExifProfile.SetValue(SixLabors.ImageSharp.Metadata.Profiles.Exif.ExifTag.Orientation, (ushort)6); // 90° clockwise
                image.SaveAsJpeg(Path.Combine(folder, "portrait.jpg"));
            }
            var ml = new MLContext();
            var warnings = Warnings(ml);
            var data = ml.Data.LoadFromImageFolder(folder);
            Assert.AreEqual(2, data.GetColumn<string>("ImagePath").Count());
            Assert.IsNull(data.Schema.GetColumnOrNull("Label"), "images without class folders got a label column");
            Assert.AreEqual(1, warnings.Count, string.Join("\n", warnings));
            StringAssert.Contains(warnings[0], "1 image(s) carry an EXIF orientation");
            StringAssert.Contains(warnings[0], "'portrait.jpg'");
            StringAssert.Contains(warnings[0], "upright: true");
            Assert.AreEqual((12, 10), Read(data)[0].Size, "read as stored");

            // Upright, at full size and decoded smaller: the portrait turns, the other photo stays as it is.
            warnings.Clear();
            var full = Read(ml.Data.LoadFromImageFolder(folder, upright: true));
            Assert.AreEqual(0, warnings.Count, string.Join("\n", warnings));
            CollectionAssert.AreEqual(new[] { (10, 12), (12, 10) }, full.Select(i => i.Size).ToArray());
            var (_, rgb) = full[0];
            int Red(int x, int y) => rgb[y * 10 + x];
            int Blue(int x, int y) => rgb[2 * 120 + y * 10 + x];
            Assert.IsTrue(Red(8, 6) > 200 && Blue(8, 6) < 50 && Red(1, 6) < 50 && Blue(1, 6) > 200, "blue left of red");
            var small = Read(ml.Data.LoadFromImageFolder(folder, coverWidth: 5, coverHeight: 6, upright: true));
            // The portrait's half scale (6×5 stored) covers 5×6 upright; the other photo's would not (6×5 is not 5×6 and more).
            CollectionAssert.AreEqual(new[] { (5, 6), (12, 10) }, small.Select(i => i.Size).ToArray());
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>Each row's image: its width × height and planar RGB bytes.</summary>
    private static List<((int Width, int Height) Size, byte[] Rgb)> Read(IDataView data)
    {
        using var cursor = data.GetRowCursor(new[] { data.Schema["Image"] });
        var get = cursor.GetGetter<MLImage>(data.Schema["Image"]);
        MLImage image = null!;
        var rows = new List<((int, int), byte[])>();
        while (cursor.MoveNext())
        {
            get(ref image);
            rows.Add(((image.Width, image.Height), ImagePixels.ToPlanarBytes(image, 3)));
        }
        return rows;
    }

    private sealed class PathRow
    {
        public string Path { get; set; } = "";
    }

    [TestMethod]
    public void NonSquareImagesWithoutAResolutionAreExplained()
    {
        var ml = new MLContext();
        var data = ml.Data.LoadFromImageFolder(Folder);
        var options = TinyData.Options();
        options.Resolution = 0;
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Transforms.TokenizeImages("Tokens", "Image", options).Fit(data));
        StringAssert.Contains(e.Message, "10×12");
        StringAssert.Contains(e.Message, "square");
    }
}
