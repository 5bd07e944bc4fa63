using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Taming.ML.MLNet;
using Taming.ML.Models;
using static TorchSharp.torch;

[assembly: LoadableClass(typeof(VqganTokenizerTransformer), null, typeof(SignatureLoadModel),
    "VQGAN tokenizer", VqganTokenizerTransformer.LoaderSignature)]

namespace Taming.ML.MLNet;

/// <summary>
/// A fitted VQGAN tokenizer: maps each image of the input column to a fixed-length vector of codebook ids
/// (key-typed, count = codebook size, dimensions [grid height, grid width]) that ML.NET's ProduceNgrams,
/// OneHotEncoding and trainers consume directly. Create it with
/// <see cref="TamingCatalogExtensions.TokenizeImages"/>; save and load it with <c>mlContext.Model.Save/Load</c>.
/// </summary>
public sealed class VqganTokenizerTransformer : BatchedTransformerBase
{
    internal const string LoaderSignature = "TamingVqganTokenizer";
    private readonly Device device;

    internal VqganTokenizerTransformer(IHostEnvironment env, Vqgan model, string outputColumnName, string inputColumnName,
        bool resizeToResolution, Device device) : base(env, nameof(VqganTokenizerTransformer))
    {
        Model = model;
        OutputColumnName = outputColumnName;
        InputColumnName = inputColumnName;
        ResizeToResolution = resizeToResolution;
        this.device = device;
    }

    /// <summary>The trained VQGAN (encoder, codebook, decoder), for direct TorchSharp use.</summary>
    public Vqgan Model { get; }

    /// <summary>The token column this transformer adds.</summary>
    public string OutputColumnName { get; }

    /// <summary>The image column it reads.</summary>
    public string InputColumnName { get; }

    /// <summary>Whether images of another size are resized to the trained resolution (else they are an error).</summary>
    public bool ResizeToResolution { get; }

    /// <summary>Side of the square images the model works on, in pixels.</summary>
    public int Resolution => Model.Options.Resolution;

    /// <summary>Image channels (1 or 3).</summary>
    public int Channels => Model.Options.Channels;

    /// <summary>Number of codebook entries; token ids are 0 … CodebookSize−1 (stored as keys 1 … CodebookSize).</summary>
    public int CodebookSize => Model.Options.CodebookSize;

    /// <summary>Token grid height and width.</summary>
    public (int Height, int Width) GridShape => (Model.Options.TokenGridSide, Model.Options.TokenGridSide);

    /// <summary>The type of the token column: a key vector with dimensions [grid height, grid width].</summary>
    public VectorDataViewType TokenType => new(new KeyDataViewType(typeof(uint), CodebookSize), GridShape.Height, GridShape.Width);

    internal Device Device => device;

    /// <summary>
    /// Tokenizes one image of any size whose sides are multiples of the downsampling factor (the encoder is
    /// convolutional), e.g. a whole photograph for a windowed prior's condition canvas: row-major ids and the grid shape.
    /// </summary>
    public (long[] Tokens, int Height, int Width) TokenizeImage(MLImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        int f = Resolution / GridShape.Height;
        if (image.Height % f != 0 || image.Width % f != 0 || image.Height < Resolution || image.Width < Resolution)
            throw new ArgumentException($"The image is {image.Width}×{image.Height}; whole-image tokenizing needs sides that are multiples of {f} and at least {Resolution}.");
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

    private protected override IBatchMapper MakeMapper(DataViewSchema inputSchema) => new Mapper(this, inputSchema);

    private static readonly VersionInfo Version = ModelFile.Version("TAMVQTOK", LoaderSignature);

    private protected override void SaveModel(ModelSaveContext ctx)
    {
        VqganModelFile.Save(ctx, Version, Model, OutputColumnName, InputColumnName);
        ctx.Writer.Write(ResizeToResolution);
    }

    // Factory for SignatureLoadModel, called by mlContext.Model.Load.
    private static VqganTokenizerTransformer Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        var (model, device, columns) = VqganModelFile.Load(env, ctx, Version, columnCount: 2);
        bool resize = ctx.Reader.ReadBoolean();
        return new VqganTokenizerTransformer(env, model, columns[0], columns[1], resize, device);
    }

    private sealed class Mapper : IBatchMapper
    {
        private readonly VqganTokenizerTransformer parent;

        public Mapper(VqganTokenizerTransformer parent, DataViewSchema schema)
        {
            this.parent = parent;
            var column = schema.GetColumnOrNull(parent.InputColumnName)
                ?? throw new ArgumentOutOfRangeException(nameof(schema), $"Input column '{parent.InputColumnName}' not found in the data.");
            var (c, h, w) = ImageColumnReader.Inspect(column);
            if (c != 0 && c != parent.Channels)
                throw new ArgumentOutOfRangeException(nameof(schema),
                    $"Column '{column.Name}' holds {c}-channel pixels but the tokenizer was trained on {parent.Channels} channels.");
            if (!parent.ResizeToResolution && h > 0 && w > 0 && (h != parent.Resolution || w != parent.Resolution))
                throw new ArgumentOutOfRangeException(nameof(schema),
                    $"Column '{column.Name}' holds {w}×{h} images but the tokenizer works on {parent.Resolution}×{parent.Resolution}. " +
                    "Add mlContext.Transforms.ResizeImages before it, or set ResizeToResolution in the tokenizer's options.");
            InputColumns = new[] { column };
            OutputColumns = new[] { new DataViewSchema.DetachedColumn(parent.OutputColumnName, parent.TokenType) };
        }

        public IReadOnlyList<DataViewSchema.Column> InputColumns { get; }
        public IReadOnlyList<DataViewSchema.DetachedColumn> OutputColumns { get; }
        public int BatchSize => parent.Model.Options.InferenceBatchSize;

        public IBatchState CreateState(DataViewRow row, int capacity) => new State(parent, row, InputColumns[0], capacity);
    }

    private sealed class State : IBatchState
    {
        private readonly VqganTokenizerTransformer parent;
        private readonly ImageColumnReader reader;
        private readonly float[] pixels;
        private readonly long[] tokens;
        private readonly int pixelsPerImage, tokensPerImage;

        public State(VqganTokenizerTransformer parent, DataViewRow row, DataViewSchema.Column column, int capacity)
        {
            this.parent = parent;
            int r = parent.Resolution;
            reader = new ImageColumnReader(row, column, parent.Channels, r, parent.ResizeToResolution);
            pixelsPerImage = parent.Channels * r * r;
            tokensPerImage = parent.GridShape.Height * parent.GridShape.Width;
            pixels = new float[capacity * pixelsPerImage];
            tokens = new long[capacity * tokensPerImage];
        }

        public void ReadRow(int slot) => reader.Read(pixels.AsSpan(slot * pixelsPerImage, pixelsPerImage));

        public void Compute(int count)
        {
            int r = parent.Resolution;
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var x = tensor(pixels.AsSpan(0, count * pixelsPerImage).ToArray(), new long[] { count, parent.Channels, r, r });
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
