using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Microsoft.ML.Transforms.Image;

namespace Taming.ML.MLNet;

/// <summary>
/// Resizes images to a fixed size by scaling them to cover it and keeping the centre; nothing is trained, so
/// <see cref="Fit"/> only checks the data. Made by <see cref="TamingCatalogExtensions.CropAndResizeImages"/>.
/// </summary>
public sealed class ImageCropResizingEstimator : IEstimator<ImageCropResizingTransformer>
{
    private readonly IHostEnvironment env;
    private readonly string outputColumnName, inputColumnName;
    private readonly int width, height;

    internal ImageCropResizingEstimator(IHostEnvironment env, string outputColumnName, string inputColumnName, int width, int height)
    {
        if (width < 1 || height < 1)
            throw new ArgumentOutOfRangeException(nameof(width), $"The image size must be positive; got {width}×{height}.");
        this.env = env;
        this.outputColumnName = outputColumnName;
        this.inputColumnName = inputColumnName;
        this.width = width;
        this.height = height;
    }

    /// <summary>Checks that the input is an image column and describes the image column that will be added.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        var column = SchemaColumns.Find(inputSchema, inputColumnName);
        if (column.Kind != SchemaShape.Column.VectorKind.Scalar || column.ItemType is not ImageDataViewType)
            throw NotImages(inputColumnName, column.GetTypeString());
        var result = inputSchema.ToDictionary(c => c.Name);
        result[outputColumnName] = new SchemaShape.Column(outputColumnName, SchemaShape.Column.VectorKind.Scalar,
            new ImageDataViewType(height, width), isKey: false);
        return new SchemaShape(result.Values);
    }

    /// <summary>Returns the transformer after checking the input column against the data's schema.</summary>
    public ImageCropResizingTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var transformer = new ImageCropResizingTransformer(env, outputColumnName, inputColumnName, width, height);
        transformer.GetOutputSchema(input.Schema);
        return transformer;
    }

    /// <summary>The error for an input column that does not hold images.</summary>
    internal static ArgumentOutOfRangeException NotImages(string name, string type) => new("inputSchema",
        $"Column '{name}' has type {type}; expected an image column (from LoadImages, ResizeImages or DecodeTokens).");
}
