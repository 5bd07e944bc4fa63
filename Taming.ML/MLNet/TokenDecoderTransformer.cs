using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Microsoft.ML.Transforms.Image;
using Taming.ML.Data;
using Taming.ML.MLNet;
using Taming.ML.Models;
using static TorchSharp.torch;

[assembly: LoadableClass(typeof(TokenDecoderTransformer), null, typeof(SignatureLoadModel),
    "VQGAN token decoder", TokenDecoderTransformer.LoaderSignature)]

namespace Taming.ML.MLNet;

/// <summary>
/// Decodes a column of token grids (the tokenizer's key vectors, or Int32 vectors of ids 0 … K−1) back to
/// an image column (<see cref="MLImage"/>), so ML.NET's image transforms and saving work on it.
/// </summary>
/// <remarks>As ML.NET's image stages do, the stage owns the images it hands out: the next row of a cursor, or a
/// PredictionEngine's next Predict, disposes the previous image. Save it or copy its pixels to keep it.</remarks>
public sealed class TokenDecoderTransformer : BatchedTransformerBase
{
    internal const string LoaderSignature = "TamingTokenDecoder";
    private readonly Device device;

    internal TokenDecoderTransformer(IHostEnvironment env, Vqgan model, string outputColumnName, string inputColumnName, Device device)
        : base(env, nameof(TokenDecoderTransformer))
    {
        Model = model;
        OutputColumnName = outputColumnName;
        InputColumnName = inputColumnName;
        this.device = device;
    }

    /// <summary>The VQGAN whose decoder is used.</summary>
    public Vqgan Model { get; }

    /// <summary>The image column this transformer adds.</summary>
    public string OutputColumnName { get; }

    /// <summary>The token column it reads.</summary>
    public string InputColumnName { get; }

    private protected override IBatchMapper MakeMapper(DataViewSchema inputSchema) => new Mapper(this, inputSchema);

    private static readonly VersionInfo Version = ModelFile.Version("TAMVQDEC", LoaderSignature);

    private protected override void SaveModel(ModelSaveContext ctx) =>
        VqganModelFile.Save(ctx, Version, Model, OutputColumnName, InputColumnName);

    // Factory for SignatureLoadModel, called by mlContext.Model.Load.
    private static TokenDecoderTransformer Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        var (model, device, columns) = VqganModelFile.Load(env, ctx, Version, columnCount: 2);
        return new TokenDecoderTransformer(env, model, columns[0], columns[1], device);
    }

    private sealed class Mapper : IBatchMapper
    {
        private readonly TokenDecoderTransformer parent;

        public Mapper(TokenDecoderTransformer parent, DataViewSchema schema)
        {
            this.parent = parent;
            var column = SchemaColumns.Find(schema, parent.InputColumnName);
            (var keyCount, Height, Width) = TokenColumns.Inspect(column);
            if (keyCount is { } k && k != parent.Model.Options.CodebookSize)
                throw new ArgumentOutOfRangeException(nameof(schema), $"Column '{column.Name}' holds keys of {k} codes; this tokenizer's " +
                    $"codebook has {parent.Model.Options.CodebookSize} (tokens of another tokenizer?).");
            TokenColumns.CheckCodebook(column, parent.Model.Quantizer.Fingerprint(), "this decoder's tokenizer has",
                "Decode with the tokenizer that made the tokens (for generated tokens: the one the prior was fitted on).");
            int side = parent.Model.Options.TokenGridSide;
            if (Height < side || Width < side)
                throw new ArgumentOutOfRangeException(nameof(schema),
                    $"Column '{column.Name}' holds {Height}×{Width} tokens per row; this VQGAN decodes grids of at least {side}×{side} " +
                    "(give the vector [height, width] dimensions for other shapes).");
            int f = parent.Model.Options.Resolution / side; // the decoder upsamples each token to f×f pixels
            (PixelHeight, PixelWidth) = (Height * f, Width * f);
            InputColumns = new[] { column };
            OutputColumns = new[] { new DataViewSchema.DetachedColumn(parent.OutputColumnName, new ImageDataViewType(PixelHeight, PixelWidth)) };
        }

        /// <summary>The token grid's shape, and the decoded images'.</summary>
        public int Height { get; }
        public int Width { get; }
        public int PixelHeight { get; }
        public int PixelWidth { get; }

        public IReadOnlyList<DataViewSchema.Column> InputColumns { get; }
        public IReadOnlyList<DataViewSchema.DetachedColumn> OutputColumns { get; }
        public int BatchSize => parent.Model.Options.InferenceRows(PixelHeight, PixelWidth);
        public IBatchState CreateState(DataViewRow row, int capacity) => new State(parent, row, InputColumns[0], capacity, this);
    }

    private sealed class State : IBatchState
    {
        private readonly TokenDecoderTransformer parent;
        private readonly Func<long[]> readTokens;
        private readonly long[] tokens;
        private readonly byte[] pixels;
        private readonly int tokensPerImage, height, width, pixelHeight, pixelWidth, channels;

        public State(TokenDecoderTransformer parent, DataViewRow row, DataViewSchema.Column column, int capacity, Mapper shape)
        {
            this.parent = parent;
            var o = parent.Model.Options;
            (height, width, pixelHeight, pixelWidth) = (shape.Height, shape.Width, shape.PixelHeight, shape.PixelWidth);
            channels = o.Channels;
            tokensPerImage = height * width;
            tokens = new long[capacity * tokensPerImage];
            pixels = new byte[capacity * channels * pixelHeight * pixelWidth];
            readTokens = TokenColumns.Reader(row, column, o.CodebookSize, tokensPerImage);
        }

        public void ReadRow(int slot) => readTokens().CopyTo(tokens, slot * tokensPerImage);

        public void Compute(int count)
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var ids = tensor(tokens.AsSpan(0, count * tokensPerImage).ToArray(), new long[] { count, height, width }).to(parent.device);
            var images = PixelScale.ToBytes(parent.Model.DecodeTokens(ids)).cpu();
            images.data<byte>().CopyTo(pixels.AsSpan(0, (int)images.NumberOfElements));
        }

        public Delegate MakeGetter(int output, Func<int> slot)
        {
            ValueGetter<MLImage> getter = (ref MLImage dst) =>
            {
                int s = slot();
                dst?.Dispose();
                int size = channels * pixelHeight * pixelWidth;
                dst = ImagePixels.ToImage(pixels.AsSpan(s * size, size), channels, pixelHeight, pixelWidth);
            };
            return getter;
        }

        public void Dispose() { }
    }
}
