using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Taming.ML.Data;
using Taming.ML.Evaluation;
using Taming.ML.Perceptual;
using Taming.ML.Losses;
using Taming.ML.Models;
using Taming.ML.Sampling;

namespace Taming.ML.MLNet;

/// <summary>Taming.ML's entry points on ML.NET's catalogs.</summary>
public static class TamingCatalogExtensions
{
    /// <summary>
    /// Fits a VQGAN tokenizer on <paramref name="inputColumnName"/> (an image column from LoadImages/ResizeImages,
    /// or a [channels, height, width] float pixel vector from ExtractPixels) and adds
    /// <paramref name="outputColumnName"/>: each image's grid of codebook ids as a key vector.
    /// </summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="outputColumnName">Name of the token column to add.</param>
    /// <param name="inputColumnName">Name of the image column to read.</param>
    /// <param name="options">Architecture and training options; defaults suit 32×32 images on a CPU.</param>
    /// <param name="resizeToResolution">Resize images of another size to the trained resolution instead of failing.</param>
    /// <param name="perceptualDistance">Perceptual distance used when <see cref="VqganOptions.PerceptualWeight"/> is above 0.</param>
    public static VqganTokenizerEstimator TokenizeImages(this TransformsCatalog catalog, string outputColumnName,
        string inputColumnName, VqganOptions? options = null, bool resizeToResolution = false,
        IPerceptualDistance? perceptualDistance = null) =>
        new(Env(catalog), outputColumnName, inputColumnName, options, resizeToResolution, perceptualDistance);

    /// <summary>
    /// Adds <paramref name="outputColumnName"/>: the token grids of whole images of any size with a fitted
    /// <paramref name="tokenizer"/> — e.g. whole photographs with a tokenizer trained on crops of them, whose token
    /// grids a prior with <see cref="GptOptions.Window"/> learns and generates. The images' sides must be multiples of
    /// the tokenizer's downsampling factor and at least its resolution, and their column must state their size
    /// (ResizeImages does); the grid is height/f × width/f.
    /// </summary>
    public static WholeImageTokenizerEstimator TokenizeWholeImages(this TransformsCatalog catalog, string outputColumnName,
        string inputColumnName, VqganTokenizerTransformer tokenizer) =>
        new(Env(catalog), outputColumnName, inputColumnName, tokenizer);

    /// <summary>Adds <paramref name="outputColumnName"/>: the images that <paramref name="tokenizer"/>'s decoder makes from the token grids in <paramref name="inputColumnName"/>.</summary>
    public static TokenDecoderEstimator DecodeTokens(this TransformsCatalog catalog, string outputColumnName,
        string inputColumnName, VqganTokenizerTransformer tokenizer) =>
        new(Env(catalog), outputColumnName, inputColumnName, tokenizer);

    /// <summary>
    /// Resizes the images of <paramref name="inputColumnName"/> to <paramref name="imageWidth"/>×<paramref name="imageHeight"/>:
    /// each is scaled, keeping its aspect ratio, until it covers that size, and its centre is kept — what
    /// <c>ResizeImages</c> does by default, with every output pixel drawn from the image. ML.NET's ResizeImages (5.0
    /// and 6.0) truncates the scaled size and leaves the last row or column black for about one image size in eight (a
    /// 4032×3024 photo at any square size, for one), which a tokenizer would learn as an edge. It filters as
    /// SkiaSharp's high-quality setting (mipmaps when shrinking, Mitchell's cubic when enlarging) on ML.NET 5 and 6
    /// alike, where ML.NET 6's ResizeImages samples single points. Saved with the model.
    /// </summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="outputColumnName">Name of the image column to add (the input's name replaces it).</param>
    /// <param name="imageWidth">Width of the output images in pixels.</param>
    /// <param name="imageHeight">Height of the output images in pixels.</param>
    /// <param name="inputColumnName">Name of the image column to read; <paramref name="outputColumnName"/> when null.</param>
    public static ImageCropResizingEstimator CropAndResizeImages(this TransformsCatalog catalog, string outputColumnName,
        int imageWidth, int imageHeight, string? inputColumnName = null) =>
        new(Env(catalog), outputColumnName, inputColumnName ?? outputColumnName, imageWidth, imageHeight);

    /// <summary>
    /// Fits a transformer prior (GPT) on the token grids of <paramref name="tokenColumnName"/>: unconditional, or
    /// conditioned on a class label (<paramref name="labelColumnName"/>: key or Int32) or on a condition image's
    /// tokens (<paramref name="conditionColumnName"/>: a second tokenizer's output). The fitted prior adds
    /// <paramref name="scoreColumnName"/>: each row's negative log-likelihood in bits per token. A key label's class
    /// names (its key values, as MapValueToKey and LoadFromImageFolder give them) are kept in
    /// <see cref="PriorLayout.ClassNames"/>: the prior then reads text labels by name, and refuses key labels that
    /// name their classes otherwise.
    /// </summary>
    public static PriorEstimator FitPrior(this TransformsCatalog catalog, string tokenColumnName, string? labelColumnName = null,
        string? conditionColumnName = null, GptOptions? options = null, string scoreColumnName = "BitsPerToken") =>
        new(Env(catalog), tokenColumnName, labelColumnName, conditionColumnName, options, scoreColumnName);

    /// <summary>
    /// Adds <paramref name="outputColumnName"/>: a token grid sampled from <paramref name="prior"/> for every row,
    /// conditioned on the row's label (a key, an Int32 index, or text: a class name the prior knows) or condition
    /// tokens, seeded by <paramref name="seedColumnName"/> (Int32) or by SamplingOptions.Seed + row index.
    /// </summary>
    public static TokenGeneratorEstimator GenerateTokens(this TransformsCatalog catalog, string outputColumnName, PriorTransformer prior,
        string? labelColumnName = null, string? conditionColumnName = null, string? seedColumnName = null, SamplingOptions? options = null) =>
        new(Env(catalog), prior ?? throw new ArgumentNullException(nameof(prior)), outputColumnName,
            labelColumnName ?? (prior.Layout.Conditioning == Conditioning.Class ? prior.LabelColumnName : null),
            conditionColumnName ?? (prior.Layout.Conditioning == Conditioning.Image ? prior.ConditionColumnName : null),
            seedColumnName, options ?? new SamplingOptions());

    /// <summary>
    /// Loads an IDX data set (MNIST format, plain or .gz) as an image column and, with a label file, a key-typed
    /// label column. <paramref name="padTo"/> centres each image on a black square of that side (MNIST's 28 → 32).
    /// </summary>
    public static IDataView LoadFromIdx(this DataOperationsCatalog catalog, string imagesPath, string? labelsPath = null,
        int padTo = 0, string imageColumnName = "Image", string labelColumnName = "Label")
    {
        var (images, rows, cols) = IdxFile.ReadImages(imagesPath);
        if (images.Length == 0) throw new InvalidDataException($"IDX file '{imagesPath}' holds no images.");
        if (padTo > 0)
        {
            if (padTo < rows || padTo < cols) throw new ArgumentOutOfRangeException(nameof(padTo), $"padTo {padTo} is smaller than the {cols}×{rows} images.");
            images = images.Select(i => Pad(i, rows, cols, padTo)).ToArray();
            rows = cols = padTo;
        }
        byte[]? labels = labelsPath is null ? null : IdxFile.ReadLabels(labelsPath);
        int labelCount = labels is { Length: > 0 } ? labels.Max() + 1 : 0;
        return new InMemoryImageDataView(images, rows, cols, labels, labelCount, imageColumnName, labelColumnName);
    }

    /// <summary>
    /// <paramref name="count"/> random RGB crops of <paramref name="cropSize"/>² pixels from a few large images (each
    /// first shrunk by <paramref name="downscale"/>), as an image column: training data for texture and landscape
    /// priors whose windowed samples are larger than the crops. Each image is decoded once, on all cores, and only its
    /// crops are kept; crops that would not fit in memory are refused (InvalidOperationException) before any is cut.
    /// A JPEG shrinks by libjpeg's scaled decoding as far as the factor allows (to 1/2, 1/4 or 1/8 of its size, sides
    /// rounded up: the pixels <see cref="LoadFromImageFolder"/>'s cover sizes give, under a level from an area average
    /// on average, and for phone photos 5–10 times faster); the rest of the factor, and other formats, by area
    /// averaging (sides rounded down).
    /// <paramref name="upright"/>: each image turned as its EXIF orientation says first (see
    /// <see cref="LoadFromImageFolder"/>).
    /// </summary>
    public static IDataView LoadRandomCrops(this DataOperationsCatalog catalog, IReadOnlyList<string> imagePaths, int cropSize,
        int count, int seed = 0, int downscale = 1, string imageColumnName = "Image", bool upright = false)
    {
        if (cropSize < 1 || count < 1) throw new ArgumentOutOfRangeException(nameof(cropSize), "cropSize and count must be positive.");
        using var ch = ((IInternalCatalog)catalog).Environment.Register(nameof(RandomCrops)).Start("Crop");
        var crops = RandomCrops.Take(imagePaths, cropSize, count, seed, downscale, log: m => ch.Info(m), upright: upright);
        return new InMemoryImageDataView(crops, cropSize, cropSize, null, 0, imageColumnName, channels: 3);
    }

    /// <summary>
    /// <see cref="LoadRandomCrops(DataOperationsCatalog, IReadOnlyList{string}, int, int, int, int, string, bool)"/> from every
    /// image in <paramref name="folder"/> and its sub-folders (png, jpg, bmp, gif, webp; damaged files are named, files in
    /// formats that cannot be decoded, such as TIFF, are left out with a warning in the context's log).
    /// </summary>
    public static IDataView LoadRandomCrops(this DataOperationsCatalog catalog, string folder, int cropSize,
        int count, int seed = 0, int downscale = 1, string imageColumnName = "Image", bool upright = false) =>
        catalog.LoadRandomCrops(ListImages(catalog, folder, upright).Select(i => Path.Combine(folder, i.RelativePath)).ToList(),
            cropSize, count, seed, downscale, imageColumnName, upright);

    /// <summary>
    /// Loads the images of a folder with one sub-folder per class (ML.NET's image-classification layout) through
    /// ML.NET's LoadImages (or, given the size they will be resized to, a decoder that reads large JPEGs smaller): an image column, a text column with the path, and a key-typed label column (none when no
    /// image lies in a sub-folder: a folder of unlabelled images). Damaged files are named in an exception; files in
    /// formats that cannot be decoded (TIFF, HEIC, …) are left out, and photos whose EXIF orientation LoadImages does
    /// not apply are counted, with a warning in the context's log.
    /// </summary>
    /// <param name="catalog">The data catalog.</param>
    /// <param name="folder">The folder; its sub-folders' names are the classes.</param>
    /// <param name="imageColumnName">Name of the image column.</param>
    /// <param name="labelColumnName">Name of the key-typed class column.</param>
    /// <param name="pathColumnName">Name of the text column of paths relative to <paramref name="folder"/>.</param>
    /// <param name="coverWidth">With <paramref name="coverHeight"/>, the size the images will be resized to (by
    /// <see cref="CropAndResizeImages"/> or ResizeImages), which lets large images be decoded smaller: each JPEG is then
    /// decoded at the smallest of 1/8, 1/4 or 1/2 of its size that still covers it (a 4032×3024 photo for 64×64 at
    /// 504×378, about ten times faster), on all cores; other formats at full size. The pixels are those LoadImages
    /// gives at that scale. 0 (default): every image at full size, through LoadImages (which Taming.ML's stages read on
    /// all cores too).</param>
    /// <param name="coverHeight">See <paramref name="coverWidth"/>.</param>
    /// <param name="upright">True: photos whose EXIF orientation says they are stored on their side or mirrored are
    /// turned upright, as photo viewers show them. False (default): the pixels as stored, as LoadImages (and PIL, for the
    /// reference) read them; such photos are counted in a warning.</param>
    public static IDataView LoadFromImageFolder(this DataOperationsCatalog catalog, string folder,
        string imageColumnName = "Image", string labelColumnName = "Label", string pathColumnName = "ImagePath",
        int coverWidth = 0, int coverHeight = 0, bool upright = false)
    {
        if (coverWidth < 0 || coverHeight < 0 || (coverWidth == 0) != (coverHeight == 0))
            throw new ArgumentOutOfRangeException(nameof(coverWidth),
                $"coverWidth and coverHeight are both positive (the size the images will be resized to) or both 0; got {coverWidth}×{coverHeight}.");
        var env = ((IInternalCatalog)catalog).Environment;
        var items = ListImages(catalog, folder, upright).Select(i => new ImageFolderRow { ImagePath = i.RelativePath, Label = i.Label }).ToList();
        // Cached, the listing splits into the cursor sets over which LoadImages decodes on all cores (ParallelCursor).
        var listing = catalog.Cache(catalog.LoadFromEnumerable(items));
        var transforms = new TransformsCatalog(env); // the user's context: its log and seed
        IEstimator<ITransformer> labels = items.Any(i => i.Label.Length > 0)
            ? transforms.Conversion.MapValueToKey(labelColumnName, nameof(ImageFolderRow.Label))
            : transforms.DropColumns(nameof(ImageFolderRow.Label)); // no classes: a key of no values would only warn
        var pipeline = transforms.CopyColumns(pathColumnName, nameof(ImageFolderRow.ImagePath)).Append(labels);
        if (coverWidth > 0 || upright)
        {
            var paths = pipeline.Fit(listing).Transform(listing);
            return new BatchedDataView(paths, new ScaledImageLoader(paths.Schema, imageColumnName, pathColumnName, folder, coverWidth, coverHeight, upright));
        }
        var loaded = pipeline.Append(transforms.LoadImages(imageColumnName, folder, pathColumnName));
        return loaded.Fit(listing).Transform(listing);
    }

    /// <summary>The folder's images; files in formats that LoadImages cannot read go to the context's log as a warning.</summary>
    private static List<(string RelativePath, string Label)> ListImages(DataOperationsCatalog catalog, string folder, bool upright = false)
    {
        var host = ((IInternalCatalog)catalog).Environment.Register(nameof(ImageFolder));
        using var ch = host.Start("List");
        return ImageFolder.List(folder, m => ch.Warning(m), upright);
    }

    /// <summary>Taming.ML's evaluation and model helpers.</summary>
    public static TamingCatalog Taming(this MLContext mlContext) => new(mlContext);

    private static byte[] Pad(byte[] image, int rows, int cols, int side)
    {
        var padded = new byte[side * side];
        int top = (side - rows) / 2, left = (side - cols) / 2;
        for (int y = 0; y < rows; y++) Array.Copy(image, y * cols, padded, (top + y) * side + left, cols);
        return padded;
    }

    private static IHostEnvironment Env(TransformsCatalog catalog) => ((IInternalCatalog)catalog).Environment;

    private sealed class ImageFolderRow
    {
        public string ImagePath { get; set; } = "";
        public string Label { get; set; } = "";
    }
}

/// <summary>Evaluation and model-file helpers, reached with <c>mlContext.Taming()</c>.</summary>
public sealed class TamingCatalog
{
    private readonly MLContext ml;

    internal TamingCatalog(MLContext ml) => this.ml = ml;

    /// <summary>
    /// Reconstructs every image of <paramref name="imageColumnName"/> with <paramref name="tokenizer"/> and returns
    /// PSNR, SSIM, L1, codebook usage, perplexity and the reconstruction FID on the shipped ResNet18's features
    /// (<paramref name="rfid"/>: null, the default, computes it when the network file is found; true requires it;
    /// false skips it). Optionally writes a PNG grid of originals (odd rows) over reconstructions (even rows) of
    /// <paramref name="gridImages"/> images spread evenly over the data (every class of a folder sorted by class). A whole-image tokenizer (<see cref="TamingCatalogExtensions.TokenizeWholeImages"/>)
    /// measures whole images at the size their column states.
    /// </summary>
    public ReconstructionMetrics EvaluateReconstruction(IDataView data, VqganTokenizerTransformer tokenizer,
        string imageColumnName = "Image", string? gridPath = null, int gridImages = 32, bool? rfid = null)
    {
        var kept = gridPath is null ? null : new List<(byte[] Original, byte[] Reconstruction)>();
        // rFID by default when the network file is at hand; asked for explicitly, a missing file is an error.
        using var features = rfid == true || (rfid is null && ResNet18Features.DefaultPath() != null)
            ? ResNet18Features.Load(device: tokenizer.Device) : null;
        var metrics = ReconstructionEvaluator.Evaluate(tokenizer, data, imageColumnName, gridPath is null ? 0 : gridImages, kept, features);
        if (gridPath != null && kept!.Count > 0)
        {
            int perRow = (int)Math.Ceiling(Math.Sqrt(kept.Count));
            var rows = new List<IReadOnlyList<byte[]>>();
            for (int start = 0; start < kept.Count; start += perRow)
            {
                var chunk = kept.Skip(start).Take(perRow).ToList();
                rows.Add(chunk.Select(k => k.Original).ToList());
                rows.Add(chunk.Select(k => k.Reconstruction).ToList());
            }
            var (h, w) = tokenizer.ImageSizeOf(data.Schema[imageColumnName]);
            ImageGrid.SavePng(gridPath, rows, tokenizer.Channels, h, w, scale: Math.Max(1, 64 / Math.Min(h, w)));
        }
        return metrics;
    }

    /// <summary>
    /// Trains a small CNN on real labelled images (gray or RGB, square), to judge generated images with
    /// <see cref="EvaluateClassification"/>. The images must have the resolution of the data it will judge. It trains
    /// and judges on <paramref name="device"/> ("cpu", "cuda" or "cuda:N").
    /// </summary>
    public ImageClassifier TrainImageClassifier(IDataView data, string imageColumnName = "Image", string labelColumnName = "Label",
        int channels = 1, int epochs = 3, int seed = 1, string device = "cpu")
    {
        var torchDevice = Native.TorchRuntime.ResolveDevice(device);
        var image = SchemaColumns.Find(data.Schema, imageColumnName, "Image", nameof(imageColumnName));
        var (_, h, w) = ImageColumnReader.Inspect(image);
        if (h == 0 || h != w) throw new ArgumentOutOfRangeException(nameof(imageColumnName), $"Column '{imageColumnName}' must hold square images of a known size (use CropAndResizeImages or ResizeImages).");
        var (images, labels) = ImageClassifier.Read(data, imageColumnName, labelColumnName, channels, h);
        int classes = TokenColumns.InspectLabel(data.Schema[labelColumnName]) ?? labels.Max() + 1;
        var host = ((IHostEnvironment)ml).Register(nameof(ImageClassifier));
        using var ch = host.Start("Train");
        return ImageClassifier.Train(images, labels, classes, epochs, seed, torchDevice, m => ch.Info(m));
    }

    /// <summary>
    /// The share of images that <paramref name="classifier"/> assigns to the class in <paramref name="labelColumnName"/>,
    /// overall and per class: accuracy on real images, class consistency on generated ones.
    /// </summary>
    public ClassificationMetrics EvaluateClassification(IDataView data, ImageClassifier classifier, string imageColumnName = "Image",
        string labelColumnName = "Label")
    {
        var (images, labels) = ImageClassifier.Read(data, imageColumnName, labelColumnName, classifier.Channels, classifier.Resolution);
        if (labels.Count == 0) throw new InvalidOperationException("The evaluation data is empty.");
        if (labels.Any(l => l >= classifier.ClassCount))
            throw new InvalidDataException($"Column '{labelColumnName}' holds classes the classifier does not know (it has {classifier.ClassCount}).");
        return ClassificationMetrics.From(labels, classifier.Predict(images), classifier.ClassCount);
    }

    /// <summary>
    /// Compares generated images with real ones: the FID- and KID-style distances between their ResNet18 features and, given a
    /// <paramref name="classifier"/> trained on real data, the class consistency of the generated images with the
    /// classes in <paramref name="labelColumnName"/>. Both columns hold images or 0–255 pixel vectors; real images are
    /// resized to the generated ones' size (height and width, so canvases keep their shape) when it is known.
    /// </summary>
    public GenerationMetrics EvaluateGeneration(IDataView generated, IDataView real, string generatedImageColumnName = "Image",
        string realImageColumnName = "Image", ImageClassifier? classifier = null, string labelColumnName = "Label", string device = "cpu")
    {
        var torchDevice = Native.TorchRuntime.ResolveDevice(device);
        var size = ImageFeatures.Size(generated, generatedImageColumnName) is { Height: > 0 } g ? g
            : ImageFeatures.Size(real, realImageColumnName) is { Height: > 0 } r ? r : (Height: 64, Width: 64);
        using var network = ResNet18Features.Load(device: torchDevice);
        using var a = ImageFeatures.Read(network, generated, generatedImageColumnName, size.Height, size.Width, torchDevice);
        using var b = ImageFeatures.Read(network, real, realImageColumnName, size.Height, size.Width, torchDevice);
        return new GenerationMetrics
        {
            Count = (int)a.shape[0], RealCount = (int)b.shape[0], Fid = FrechetDistance.Between(a, b), Kid = KernelDistance.Between(a, b),
            ClassConsistency = classifier is null ? null : EvaluateClassification(generated, classifier, generatedImageColumnName, labelColumnName),
        };
    }

    /// <summary>
    /// Loads a model zip saved with <c>mlContext.Model.Save</c>, like <c>mlContext.Model.Load</c>, but with an
    /// error that names the problem when the file is missing, damaged or not an ML.NET model.
    /// </summary>
    public ITransformer LoadModel(string path, out DataViewSchema inputSchema)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Model file not found: '{path}'.", path);
        try
        {
            return ml.Model.Load(path, out inputSchema);
        }
        catch (Exception e)
        {
            // ML.NET calls loaders through reflection: report the innermost cause, not the wrapper.
            var inner = e;
            while (inner.InnerException != null && inner is not InvalidDataException) inner = inner.InnerException;
            throw new InvalidDataException($"'{path}' could not be loaded as an ML.NET model (damaged, or written by another program): {inner.Message}", e);
        }
    }

    /// <summary>The tokenizer inside a loaded model (a single transformer or a chain).</summary>
    public static VqganTokenizerTransformer FindTokenizer(ITransformer model) => Find<VqganTokenizerTransformer>(model, "VQGAN tokenizer");

    /// <summary>The prior inside a loaded model (a prior, a generator, or a chain holding either).</summary>
    public static PriorTransformer FindPrior(ITransformer model) =>
        FindOrNull<PriorTransformer>(model) ?? FindOrNull<TokenGeneratorTransformer>(model)?.Prior
        ?? throw NotFound(model, "transformer prior");

    private static T Find<T>(ITransformer model, string what) where T : class, ITransformer =>
        FindOrNull<T>(model) ?? throw NotFound(model, what);

    private static InvalidDataException NotFound(ITransformer model, string what) =>
        new($"The model holds no {what}; it holds {string.Join(", ", Stages(model).Select(t => t.GetType().Name).DefaultIfEmpty("no transformer"))}.");

    private static IEnumerable<ITransformer> Stages(ITransformer model) =>
        model is IEnumerable<ITransformer> chain ? chain.SelectMany(Stages) : new[] { model };

    private static T? FindOrNull<T>(ITransformer model) where T : class, ITransformer => model switch
    {
        T t => t,
        IEnumerable<ITransformer> chain => chain.Select(FindOrNull<T>).FirstOrDefault(t => t != null),
        _ => null,
    };
}
