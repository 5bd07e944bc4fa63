using Microsoft.ML;
using Microsoft.ML.Data;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using Taming.ML.Data;
using Taming.ML.MLNet;

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
        var crops = ml.Data.LoadRandomCrops(new[] { Photo }, cropSize: 8, count: 5, seed: 3, downscale: 2);
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
    public void MissingPhotosAndOversizedCropsAreNamed()
    {
        var ml = new MLContext();
        Assert.ThrowsExactly<FileNotFoundException>(() => ml.Data.LoadRandomCrops(new[] { Path.Combine(Folder, "none.png") }, 8, 1));
        var e = Assert.ThrowsExactly<ArgumentException>(() => ml.Data.LoadRandomCrops(new[] { Photo }, 16, 1, downscale: 2));
        StringAssert.Contains(e.Message, "20×12");
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
}
