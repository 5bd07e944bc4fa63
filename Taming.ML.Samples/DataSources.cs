using Microsoft.ML;
using Microsoft.ML.Data;
using Taming.ML.MLNet;

namespace Taming.ML.Samples;

/// <summary>Where the sample's images come from: an IDX file (MNIST format) or a folder of images.</summary>
internal static class DataSources
{
    public static string EmbeddedMnistImages => Path.Combine(AppContext.BaseDirectory, "data", "mnist", "mnist10k-images-idx3-ubyte.gz");
    public static string EmbeddedMnistLabels => Path.Combine(AppContext.BaseDirectory, "data", "mnist", "mnist10k-labels-idx1-ubyte.gz");

    /// <summary>True when the path names an IDX file rather than a folder.</summary>
    public static bool IsIdx(string path) => File.Exists(path);

    /// <summary>
    /// Loads images (and labels) with an "Image" column: IDX files padded to <paramref name="idxPadTo"/>, or a folder,
    /// whose large JPEGs are decoded at the smallest scale that covers <paramref name="cover"/> (the size they will be
    /// resized to), and turned as their EXIF orientation says where <paramref name="upright"/>.
    /// </summary>
    public static IDataView Load(MLContext ml, string images, string? labels, int idxPadTo, (int Width, int Height) cover, bool upright = false)
    {
        if (IsIdx(images)) return ml.Data.LoadFromIdx(images, labels, padTo: idxPadTo);
        if (Directory.Exists(images)) return ml.Data.LoadFromImageFolder(images, coverWidth: cover.Width, coverHeight: cover.Height, upright: upright);
        throw new FileNotFoundException($"--images: '{images}' is neither an IDX file nor a folder.");
    }

    /// <summary>
    /// <see cref="Load"/> with the row options every image command shares: --skip N and --take N pick rows, --holdout F
    /// holds out a fixed random share F of them (the same rows for every command: training commands leave them out,
    /// <paramref name="heldOut"/> ones read only them), and --random-crops N [--downscale F] [--crop-seed S] takes N
    /// random crops of side <paramref name="side"/> from a folder's images instead. A folder's images are resized to
    /// <paramref name="cover"/> later (side × side by default); --upright turns photos as their EXIF orientation says.
    /// </summary>
    public static IDataView Load(MLContext ml, Arguments args, string images, string? labels, int side, bool heldOut = false,
        (int Width, int Height)? cover = null)
    {
        var (training, held) = LoadSplit(ml, args, images, labels, side, cover);
        return heldOut ? held ?? training : training;
    }

    /// <summary>The rows of the Load above both ways, from one read of the source: those a training command takes, and the
    /// --holdout rows (null without it).</summary>
    public static (IDataView Training, IDataView? HeldOut) LoadSplit(MLContext ml, Arguments args, string images, string? labels, int side,
        (int Width, int Height)? cover = null)
    {
        if (args.Int("random-crops") is { } crops)
        {
            if (!Directory.Exists(images)) throw new DirectoryNotFoundException($"--random-crops needs --images to be a folder; '{images}' is not.");
            if (new[] { "skip", "take", "holdout" }.FirstOrDefault(o => args.String(o) != null) is { } rows)
                throw new ArgumentException($"--{rows} picks rows of the images; --random-crops draws crops instead (--crop-seed S draws other ones, e.g. to evaluate on).");
            return (ml.Data.LoadRandomCrops(images, side, crops, seed: args.Int("crop-seed") ?? 1, downscale: args.Int("downscale") ?? 1,
                upright: args.Flag("upright")), null);
        }
        var data = Load(ml, images, labels, side, cover ?? (side, side), args.Flag("upright"));
        int? skip = args.Int("skip"), take = args.Int("take");
        if (skip is not null) data = ml.Data.SkipRows(data, skip.Value);
        if (take is not null) data = ml.Data.TakeRows(data, take.Value);
        if (skip is not null || take is not null) WarnOfMissingClasses(data);
        if (args.Double("holdout") is { } fraction)
        {
            if (fraction is <= 0 or >= 1) throw new ArgumentOutOfRangeException("--holdout", $"--holdout is the held-out share of the rows, between 0 and 1; got {fraction}.");
            return Split(ml, data, fraction);
        }
        return (data, null);
    }

    /// <summary>--skip and --take pick rows in the order they are read, which for a folder is class by class: says so where
    /// the rows they leave hold only some of the classes (reads the labels alone, not the images).</summary>
    private static void WarnOfMissingClasses(IDataView data)
    {
        if (data.Schema.GetColumnOrNull("Label") is not { Type: KeyDataViewType { Count: > 1 } type } label) return;
        int seen = data.GetColumn<uint>(label).Where(k => k > 0).Distinct().Count();
        if (seen < (int)type.Count)
            Console.WriteLine($"  warning: the rows that --skip/--take leave hold {seen} of the {type.Count} classes (a folder is read class by " +
                              "class); --holdout F holds out a random share of every class instead.");
    }

    /// <summary>
    /// The tokenizer resolution for a folder whose --resolution is not given: 64, or less where its images are smaller
    /// (the median shorter side of up to 64 of them, spread over the folder, rounded down to a multiple of 4), so that
    /// 32×32 images train at 32 rather than upsampled to 64.
    /// </summary>
    public static int FolderResolution(IDataView data, string folder)
    {
        var paths = data.GetColumn<string>("ImagePath").ToList();
        var sides = Enumerable.Range(0, Math.Min(64, paths.Count)).Select(i => paths[(int)((long)i * paths.Count / Math.Min(64, paths.Count))])
            .Select(p => SixLabors.ImageSharp.Image.Identify(Path.Combine(folder, p)))
            .Where(info => info != null).Select(info => Math.Min(info!.Width, info.Height)).Order().ToList();
        if (sides.Count == 0) return 64;
        return Math.Clamp(sides[sides.Count / 2] / 4 * 4, 8, 64);
    }

    /// <summary>A fixed random share of the rows held out (a folder sorted by class is held out across its classes), and the rest.</summary>
    public static (IDataView Training, IDataView HeldOut) Split(MLContext ml, IDataView data, double fraction)
    {
        var split = ml.Data.TrainTestSplit(data, testFraction: fraction, seed: 1);
        return (split.TrainSet, split.TestSet);
    }
}
