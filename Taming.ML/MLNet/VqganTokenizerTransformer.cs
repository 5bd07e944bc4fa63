using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Taming.ML.MLNet;
using Taming.ML.Models;
using Taming.ML.Modules;
using Taming.ML.Training;
using TorchSharp;
using static TorchSharp.torch;

[assembly: LoadableClass(typeof(VqganTokenizerTransformer), null, typeof(SignatureLoadModel),
    "VQGAN tokenizer", VqganTokenizerTransformer.LoaderSignature)]

namespace Taming.ML.MLNet;

/// <summary>
/// A fitted VQGAN tokenizer: maps each image of the input column to a fixed-length vector of codebook ids
/// (key-typed, count = codebook size, dimensions [grid height, grid width]) that ML.NET's ProduceNgrams,
/// OneHotEncoding and trainers consume directly. Create it with
/// <see cref="TamingCatalogExtensions.TokenizeImages"/>, or apply a fitted one to whole images of another size with
/// <see cref="TamingCatalogExtensions.TokenizeWholeImages"/>; save and load it with <c>mlContext.Model.Save/Load</c>.
/// </summary>
public sealed class VqganTokenizerTransformer : BatchedTransformerBase
{
    internal const string LoaderSignature = "TamingVqganTokenizer";
    private readonly Device device;

    internal VqganTokenizerTransformer(IHostEnvironment env, Vqgan model, string outputColumnName, string inputColumnName,
        bool resizeToResolution, Device device, bool wholeImages = false, VqganTrainingState? training = null)
        : base(env, nameof(VqganTokenizerTransformer))
    {
        Model = model;
        Training = training ?? VqganTrainingState.Unknown;
        OutputColumnName = outputColumnName;
        InputColumnName = inputColumnName;
        ResizeToResolution = resizeToResolution && !wholeImages;
        WholeImages = wholeImages;
        this.device = device;
    }

    /// <summary>The trained VQGAN (encoder, codebook, decoder), for direct TorchSharp use.</summary>
    public Vqgan Model { get; }

    /// <summary>Training steps the model has made, over every fit that trained it (0 for models saved before this was
    /// recorded). A fit that continues the model (<see cref="VqganTokenizerEstimator.Fit(IDataView, VqganTokenizerTransformer)"/>)
    /// counts on from here.</summary>
    public int TrainedSteps => Training.Steps;

    /// <summary>Of <see cref="TrainedSteps"/>, the steps that trained the GAN (and its discriminator, which the model zip
    /// then holds too).</summary>
    public int GanSteps => Training.GanSteps;

    /// <summary>The learning rate of the last training step (0 where unknown: models saved before this was recorded). A fit
    /// that continues the model warms up to it, unless its options say <c>RestartLearningRate</c>.</summary>
    public double FinalLearningRate => Training.LearningRate;

    internal VqganTrainingState Training { get; }

    /// <summary>The token column this transformer adds.</summary>
    public string OutputColumnName { get; }

    /// <summary>The image column it reads.</summary>
    public string InputColumnName { get; }

    /// <summary>Whether images of another size are resized to the trained resolution (else they are an error).</summary>
    public bool ResizeToResolution { get; }

    /// <summary>
    /// Whether images are tokenized whole at the size their column states, into a grid of height/f × width/f tokens
    /// (f: <see cref="DownsamplingFactor"/>), rather than at the trained resolution (<see cref="TamingCatalogExtensions.TokenizeWholeImages"/>).
    /// </summary>
    public bool WholeImages { get; }

    /// <summary>Pixels per token along each side: the encoder's downsampling factor.</summary>
    public int DownsamplingFactor => Resolution / GridShape.Height;

    /// <summary>Side of the square images the model works on, in pixels.</summary>
    public int Resolution => Model.Options.Resolution;

    /// <summary>Image channels (1 or 3).</summary>
    public int Channels => Model.Options.Channels;

    /// <summary>Number of codebook entries; token ids are 0 … CodebookSize−1 (stored as keys 1 … CodebookSize).</summary>
    public int CodebookSize => Model.Options.CodebookSize;

    /// <summary>Token grid height and width at the trained resolution.</summary>
    public (int Height, int Width) GridShape => (Model.Options.TokenGridSide, Model.Options.TokenGridSide);

    /// <summary>The type of the token column at the trained resolution: a key vector with dimensions [grid height, grid width].</summary>
    public VectorDataViewType TokenType => GridType(GridShape.Height, GridShape.Width);

    private VectorDataViewType GridType(int height, int width) => new(new KeyDataViewType(typeof(uint), CodebookSize), height, width);

    internal Device Device => device;

    /// <summary>
    /// Tokenizes one image of any size whose sides are multiples of the downsampling factor (the encoder is
    /// convolutional), e.g. a whole photograph for a windowed prior's condition canvas: row-major ids and the grid shape.
    /// </summary>
    public (long[] Tokens, int Height, int Width) TokenizeImage(MLImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (WholeImageSizeProblem(image.Height, image.Width) is { } problem) throw new ArgumentException($"The image is {problem}.");
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var pixels = tensor(Data.ImagePixels.ToPlanar(image, Channels), new long[] { 1, Channels, image.Height, image.Width });
        var ids = Model.Tokenize(Data.PixelScale.ToModel(pixels.to(device))).cpu();
        return (ids.data<long>().ToArray(), (int)ids.shape[1], (int)ids.shape[2]);
    }

    /// <summary>Decodes one token grid of any size (row-major ids) to an image — the inverse of <see cref="TokenizeImage"/>.</summary>
    public MLImage DecodeImage(IReadOnlyList<long> tokens, int height, int width)
    {
        if (tokens.Count != height * width || tokens.Any(t => t < 0 || t >= CodebookSize))
            throw new ArgumentOutOfRangeException(nameof(tokens), $"Expected {height}×{width} ids in 0 … {CodebookSize - 1}.");
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var ids = tensor(tokens.ToArray(), new long[] { 1, height, width }).to(device);
        var image = Data.PixelScale.ToBytes(Model.DecodeTokens(ids)).cpu();
        return Data.ImagePixels.ToImage(image.data<byte>().ToArray(), Channels, (int)image.shape[2], (int)image.shape[3]);
    }

    /// <summary>Why an image of this size cannot be tokenized whole (null where it can): the encoder needs sides that
    /// are multiples of its downsampling factor, and at least the trained resolution.</summary>
    private string? WholeImageSizeProblem(int height, int width) =>
        height % DownsamplingFactor != 0 || width % DownsamplingFactor != 0 || height < Resolution || width < Resolution
            ? $"{width}×{height}; whole-image tokenizing needs sides that are multiples of {DownsamplingFactor} and at least {Resolution}"
            : null;

    /// <summary>
    /// The size this tokenizer reads the images of <paramref name="column"/> at, after checking their channels and
    /// size: the trained resolution, or for whole images the size the column states (which it must).
    /// </summary>
    internal (int Height, int Width) ImageSizeOf(DataViewSchema.Column column)
    {
        var (c, h, w) = ImageColumnReader.Inspect(column);
        if (c != 0 && c != Channels)
            throw new ArgumentOutOfRangeException(nameof(column), $"Column '{column.Name}' holds {c}-channel pixels but the tokenizer was trained on {Channels} channels.");
        if (!WholeImages)
        {
            if (!ResizeToResolution && h > 0 && w > 0 && (h != Resolution || w != Resolution))
                throw new ArgumentOutOfRangeException(nameof(column),
                    $"Column '{column.Name}' holds {w}×{h} images but the tokenizer works on {Resolution}×{Resolution}. " +
                    "Add mlContext.Transforms.CropAndResizeImages (or ResizeImages) before it, set ResizeToResolution in the tokenizer's options, or " +
                    "tokenize them whole (mlContext.Transforms.TokenizeWholeImages).");
            return (Resolution, Resolution);
        }
        // The token grid follows the images' size, which the column's type must state.
        if (h == 0 || w == 0)
            throw new ArgumentOutOfRangeException(nameof(column), $"Column '{column.Name}' holds images of no stated size; whole-image " +
                "tokenizing makes grids of the images' size, so give them one with mlContext.Transforms.CropAndResizeImages (or ResizeImages, or ExtractPixels' shape).");
        if (WholeImageSizeProblem(h, w) is { } problem)
            throw new ArgumentOutOfRangeException(nameof(column), $"Column '{column.Name}' holds images of {problem}.");
        return (h, w);
    }

    private protected override IBatchMapper MakeMapper(DataViewSchema inputSchema) => new Mapper(this, inputSchema);

    // 1.2 adds the whole-images flag (1.1 files read as fixed-resolution tokenizers), 1.3 the training state (older files
    // read as of unknown history, without a discriminator).
    private const uint WholeImagesVersion = 0x00010002, TrainingStateVersion = 0x00010003;
    private static readonly VersionInfo Version = ModelFile.Version("TAMVQTOK", LoaderSignature, TrainingStateVersion);
    private const string DiscriminatorEntry = "VqganDiscriminator";

    private protected override void SaveModel(ModelSaveContext ctx)
    {
        VqganModelFile.Save(ctx, Version, Model, OutputColumnName, InputColumnName);
        ctx.Writer.Write(ResizeToResolution);
        ctx.Writer.Write(WholeImages);
        ctx.Writer.Write(Training.Steps);
        ctx.Writer.Write(Training.GanSteps);
        ctx.Writer.Write(Training.LearningRate);
        ctx.Writer.Write(Training.Discriminator is not null);
        if (Training.Discriminator is { } critic) ctx.SaveBinaryStream(DiscriminatorEntry, w => critic.save(w));
    }

    // Factory for SignatureLoadModel, called by mlContext.Model.Load.
    private static VqganTokenizerTransformer Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        var (model, device, columns) = VqganModelFile.Load(env, ctx, Version, columnCount: 2);
        bool resize = ctx.Reader.ReadBoolean();
        bool whole = ctx.Header.ModelVerWritten >= WholeImagesVersion && ctx.Reader.ReadBoolean();
        var training = VqganTrainingState.Unknown;
        if (ctx.Header.ModelVerWritten >= TrainingStateVersion)
        {
            int steps = ctx.Reader.ReadInt32(), ganSteps = ctx.Reader.ReadInt32();
            double rate = ctx.Reader.ReadDouble();
            if (steps < 0 || ganSteps < 0 || ganSteps > steps || !(rate >= 0 && double.IsFinite(rate)))
                throw new InvalidDataException($"The model file's training state is corrupt: {ganSteps} GAN steps of {steps}, learning rate {rate}.");
            NLayerDiscriminator? critic = null;
            if (ctx.Reader.ReadBoolean())
            {
                var o = model.Options;
                critic = new NLayerDiscriminator(o.Channels, o.DiscChannels, o.DiscLayers);
                ModelFile.LoadWeights(ctx, DiscriminatorEntry, critic, "discriminator");
                critic.to(device);
            }
            training = new VqganTrainingState(steps, ganSteps, rate, critic);
        }
        return new VqganTokenizerTransformer(env, model, columns[0], columns[1], resize, device, whole, training);
    }

    private sealed class Mapper : IBatchMapper
    {
        private readonly VqganTokenizerTransformer parent;

        public Mapper(VqganTokenizerTransformer parent, DataViewSchema schema)
        {
            this.parent = parent;
            var column = SchemaColumns.Find(schema, parent.InputColumnName);
            ImageSize = parent.ImageSizeOf(column);
            InputColumns = new[] { column };
            int f = parent.DownsamplingFactor;
            OutputColumns = new[] { new DataViewSchema.DetachedColumn(parent.OutputColumnName, parent.GridType(ImageSize.Height / f, ImageSize.Width / f),
                TokenColumns.Annotations(parent.CodebookSize, parent.Model.Quantizer.Fingerprint())) };
        }

        /// <summary>The size the images are tokenized at: the trained resolution, or the column's (whole images).</summary>
        public (int Height, int Width) ImageSize { get; }

        public IReadOnlyList<DataViewSchema.Column> InputColumns { get; }
        public IReadOnlyList<DataViewSchema.DetachedColumn> OutputColumns { get; }
        public int BatchSize => parent.Model.Options.InferenceRows(ImageSize.Height, ImageSize.Width);

        public IBatchState CreateState(DataViewRow row, int capacity) => new State(parent, row, InputColumns[0], ImageSize, capacity);
    }

    private sealed class State : IBatchState
    {
        private readonly VqganTokenizerTransformer parent;
        private readonly ImageColumnReader reader;
        private readonly float[] pixels;
        private readonly long[] tokens;
        private readonly int height, width, pixelsPerImage, tokensPerImage;

        public State(VqganTokenizerTransformer parent, DataViewRow row, DataViewSchema.Column column, (int Height, int Width) size, int capacity)
        {
            this.parent = parent;
            (height, width) = size;
            reader = new ImageColumnReader(row, column, parent.Channels, height, width, parent.ResizeToResolution);
            pixelsPerImage = parent.Channels * height * width;
            int f = parent.DownsamplingFactor;
            tokensPerImage = height / f * (width / f);
            pixels = new float[capacity * pixelsPerImage];
            tokens = new long[capacity * tokensPerImage];
        }

        public void ReadRow(int slot) => reader.Read(pixels.AsSpan(slot * pixelsPerImage, pixelsPerImage));

        public void Compute(int count)
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var x = tensor(pixels.AsSpan(0, count * pixelsPerImage).ToArray(), new long[] { count, parent.Channels, height, width });
            var ids = parent.Model.Tokenize(Data.PixelScale.ToModel(x.to(parent.device))).cpu();
            ids.data<long>().CopyTo(tokens.AsSpan(0, count * tokensPerImage));
        }

        public Delegate MakeGetter(int output, Func<int> slot)
        {
            ValueGetter<VBuffer<uint>> getter = (ref VBuffer<uint> dst) =>
                TokenColumns.WriteKeys(ref dst, tokens.AsSpan(slot() * tokensPerImage, tokensPerImage));
            return getter;
        }

        public void Dispose() { }
    }
}
