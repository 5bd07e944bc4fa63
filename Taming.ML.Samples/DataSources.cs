using Microsoft.ML;
using Taming.ML.MLNet;

namespace Taming.ML.Samples;

/// <summary>Where the sample's images come from: an IDX file (MNIST format) or a folder of images.</summary>
internal static class DataSources
{
    public static string EmbeddedMnistImages => Path.Combine(AppContext.BaseDirectory, "data", "mnist", "mnist10k-images-idx3-ubyte.gz");
    public static string EmbeddedMnistLabels => Path.Combine(AppContext.BaseDirectory, "data", "mnist", "mnist10k-labels-idx1-ubyte.gz");

    /// <summary>True when the path names an IDX file rather than a folder.</summary>
    public static bool IsIdx(string path) => File.Exists(path);

    /// <summary>Loads images (and labels) with an "Image" column: IDX files padded to <paramref name="idxPadTo"/>, or a folder through LoadImages.</summary>
    public static IDataView Load(MLContext ml, string images, string? labels, int idxPadTo)
    {
        if (IsIdx(images)) return ml.Data.LoadFromIdx(images, labels, padTo: idxPadTo);
        if (Directory.Exists(images)) return ml.Data.LoadFromImageFolder(images);
        throw new FileNotFoundException($"--images: '{images}' is neither an IDX file nor a folder.");
    }
}
