using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using Microsoft.ML.Transforms.Image;

namespace Taming.ML.Tests;

/// <summary>
/// A text file of image paths through LoadImages, the way ML.NET's image tutorials load data: its rows are decoded on
/// several threads (TextLoader's cursor sets) and must come back as one cursor gives them.
/// </summary>
[TestClass]
public sealed class ParallelReadTests
{
    private static readonly string Folder = Path.Combine(Path.GetTempPath(), "taming-parallel-" + Environment.ProcessId);
    private const int Rows = 300, Damaged = 201;

    [ClassInitialize]
    public static void WriteImages(TestContext _)
    {
        Directory.CreateDirectory(Path.Combine(Folder, "images"));
        Directory.CreateDirectory(Path.Combine(Folder, "damaged"));
        var rng = new Random(4);
        var lines = new List<string>();
        for (int i = 0; i < Rows; i++)
        {
            using var image = new Image<L8>(TinyData.Side, TinyData.Side);
            for (int y = 0; y < TinyData.Side; y++)
            for (int x = 0; x < TinyData.Side; x++)
                image[x, y] = new L8((byte)(i % 7 * 30 + rng.Next(40)));
            image.SaveAsPng(Path.Combine(Folder, "images", $"{i:D3}.png"));
            lines.Add($"images/{i:D3}.png\tclass{i % 4}");
        }
        File.WriteAllLines(Path.Combine(Folder, "tags.tsv"), lines);
        File.WriteAllText(Path.Combine(Folder, "damaged", "damaged.png"), "not an image");
        lines[Damaged] = "damaged/damaged.png\tclass1";
        File.WriteAllLines(Path.Combine(Folder, "damaged.tsv"), lines);
    }

    [ClassCleanup]
    public static void Cleanup() => Directory.Delete(Folder, recursive: true);

    private sealed class Tag
    {
        [LoadColumn(0)] public string ImagePath { get; set; } = "";
        [LoadColumn(1)] public string Label { get; set; } = "";
    }

    private static IDataView Images(MLContext ml, string file = "tags.tsv")
    {
        var tags = ml.Data.LoadFromTextFile<Tag>(Path.Combine(Folder, file));
        return ml.Transforms.LoadImages("Image", Folder, nameof(Tag.ImagePath))
            .Append(ml.Transforms.ResizeImages("Image", TinyData.Side, TinyData.Side))
            .Append(ml.Transforms.ExtractPixels("Pixels", "Image", ImagePixelExtractingEstimator.ColorBits.Red))
            .Fit(tags).Transform(tags);
    }

    private static List<string> ReadAll(DataViewRowCursor cursor, DataViewSchema schema, int take = int.MaxValue)
    {
        var rows = new List<string>();
        var id = cursor.GetIdGetter();
        var label = cursor.GetGetter<ReadOnlyMemory<char>>(schema["Label"]);
        var pixels = cursor.GetGetter<VBuffer<float>>(schema["Pixels"]);
        DataViewRowId rowId = default;
        ReadOnlyMemory<char> text = default;
        VBuffer<float> values = default;
        while (rows.Count < take && cursor.MoveNext())
        {
            id(ref rowId);
            label(ref text);
            pixels(ref values);
            rows.Add($"{cursor.Position} {rowId} {text} {string.Join(",", values.DenseValues())}");
        }
        return rows;
    }

    [TestMethod]
    public void RowsDecodedOnSeveralThreadsComeInTheOrderOfOneCursor()
    {
        var ml = new MLContext(seed: 1);
        var data = Images(ml);
        var columns = new[] { data.Schema["Label"], data.Schema["Pixels"] };
        List<string> serial;
        using (var cursor = data.GetRowCursor(columns)) serial = ReadAll(cursor, data.Schema);
        Assert.HasCount(Rows, serial);
        using (var cursor = ParallelCursor.Create(data, columns))
        {
            // TextLoader hands its 64-line batches to a set of cursors, each read on its own thread here.
            Assert.IsInstanceOfType<ParallelCursor>(cursor, "the text loader gave a single cursor on a machine with "
                + Environment.ProcessorCount + " cores");
            CollectionAssert.AreEqual(serial, ReadAll(cursor, data.Schema));
        }
        // Left after a few rows, its threads stop and it frees what they had read ahead.
        using (var cursor = ParallelCursor.Create(data, columns))
            CollectionAssert.AreEqual(serial.Take(70).ToList(), ReadAll(cursor, data.Schema, take: 70));
    }

    [TestMethod]
    public void AnImageFoldersImagesAreDecodedOnSeveralThreadsToo()
    {
        var ml = new MLContext(seed: 1);
        var folder = ml.Data.LoadFromImageFolder(Path.Combine(Folder, "images"));
        // CropAndResizeImages maps row by row, so it splits as the folder's listing does.
        var images = ml.Transforms.CropAndResizeImages("Image", TinyData.Side, TinyData.Side).Fit(folder).Transform(folder);
        var columns = new[] { images.Schema["ImagePath"], images.Schema["Image"] };
        List<string> Read(DataViewRowCursor cursor)
        {
            var path = cursor.GetGetter<ReadOnlyMemory<char>>(images.Schema["ImagePath"]);
            var image = cursor.GetGetter<MLImage>(images.Schema["Image"]);
            var rows = new List<string>();
            (ReadOnlyMemory<char> text, MLImage picture) = (default, null!);
            while (cursor.MoveNext())
            {
                path(ref text);
                image(ref picture);
                rows.Add($"{cursor.Position} {text} {Convert.ToHexString(picture.Pixels)}");
            }
            return rows;
        }
        List<string> serial;
        using (var cursor = images.GetRowCursor(columns)) serial = Read(cursor);
        Assert.HasCount(Rows, serial);
        StringAssert.StartsWith(serial[7], "7 007.png ");
        using var parallel = ParallelCursor.Create(images, columns);
        Assert.IsInstanceOfType<ParallelCursor>(parallel);
        CollectionAssert.AreEqual(serial, Read(parallel));
    }

    [TestMethod]
    public void GreyImagesThatLoadImagesMadeColourAreNamedInTheLog()
    {
        var ml = new MLContext(seed: 1);
        var infos = new List<string>();
        ml.Log += (_, m) => { if (m.Kind == Microsoft.ML.Runtime.ChannelMessageKind.Info) infos.Add(m.RawMessage); };
        var options = TinyData.Options(steps: 1);
        options.Channels = 0; // from the column: LoadImages' images are colour
        var tokenizer = ml.Transforms.TokenizeImages("Tokens", "Image", options).Fit(Images(ml));
        Assert.AreEqual(3, tokenizer.Channels);
        Assert.IsTrue(infos.Any(i => i.StartsWith("The training images are grey") && i.Contains("VqganOptions.Channels = 1")), string.Join("\n", infos));
        var set = new Taming.ML.Data.ImageSet(3, 1, 2);
        set.Add(new byte[] { 1, 2, 1, 2, 1, 2 });
        Assert.IsTrue(set.AllGrey());
        set.Add(new byte[] { 1, 2, 1, 3, 1, 2 });
        Assert.IsFalse(set.AllGrey());
    }

    [TestMethod]
    public void TokensAndTheirErrorsAreThoseOfOneCursor()
    {
        var ml = new MLContext(seed: 1);
        var data = Images(ml);
        var options = TinyData.Options(steps: 2);
        var tokenizer = ml.Transforms.TokenizeImages("Tokens", "Image", options).Fit(data);
        // The same rows through a view that gives one cursor only.
        var single = ml.Data.LoadFromEnumerable(ml.Data.CreateEnumerable<Tag>(ml.Data.LoadFromTextFile<Tag>(Path.Combine(Folder, "tags.tsv")), false).ToList());
        var images = ml.Transforms.LoadImages("Image", Folder, nameof(Tag.ImagePath))
            .Append(ml.Transforms.ResizeImages("Image", TinyData.Side, TinyData.Side)).Fit(single).Transform(single);
        var tokens = TinyData.Tokens(tokenizer.Transform(data));
        Assert.HasCount(Rows * 16, tokens);
        CollectionAssert.AreEqual(TinyData.Tokens(tokenizer.Transform(images)), tokens);

        // A damaged file names its row, as on one cursor, whichever thread decoded it: in a fit and in a transform.
        var damaged = Images(ml, "damaged.tsv");
        var fit = Assert.ThrowsExactly<InvalidDataException>(() => ml.Transforms.TokenizeImages("Tokens", "Image", options).Fit(damaged));
        StringAssert.Contains(fit.Message, $"Column 'Image', row {Damaged}: the image could not be decoded");
        var transform = Assert.ThrowsExactly<InvalidDataException>(() => TinyData.Tokens(tokenizer.Transform(damaged)));
        StringAssert.Contains(transform.Message, $"Column 'Image', row {Damaged}: the image could not be decoded");
    }
}
