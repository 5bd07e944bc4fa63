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
            var column = schema.GetColumnOrNull(parent.InputColumnName)
                ?? throw new ArgumentOutOfRangeException(nameof(schema), $"Input column '{parent.InputColumnName}' not found in the data.");
            var (_, h, w) = TokenColumns.Inspect(column);
            int side = parent.Model.Options.TokenGridSide;
            if (h * w != side * side)
                throw new ArgumentOutOfRangeException(nameof(schema),
                    $"Column '{column.Name}' holds {h * w} tokens per row; this VQGAN decodes {side}×{side} = {side * side}.");
            int r = parent.Model.Options.Resolution;
            InputColumns = new[] { column };
            OutputColumns = new[] { new DataViewSchema.DetachedColumn(parent.OutputColumnName, new ImageDataViewType(r, r)) };
        }

        public IReadOnlyList<DataViewSchema.Column> InputColumns { get; }
        public IReadOnlyList<DataViewSchema.DetachedColumn> OutputColumns { get; }
        public int BatchSize => parent.Model.Options.InferenceBatchSize;
        public IBatchState CreateState(DataViewRow row, int capacity) => new State(parent, row, InputColumns[0], capacity);
    }

    private sealed class State : IBatchState
    {
        private readonly TokenDecoderTransformer parent;
        private readonly Func<long[]> readTokens;
        private readonly long[] tokens;
        private readonly byte[] pixels;
        private readonly int tokensPerImage, side, resolution, channels;

        public State(TokenDecoderTransformer parent, DataViewRow row, DataViewSchema.Column column, int capacity)
        {
            this.parent = parent;
            var o = parent.Model.Options;
            side = o.TokenGridSide;
            resolution = o.Resolution;
            channels = o.Channels;
            tokensPerImage = side * side;
            tokens = new long[capacity * tokensPerImage];
            pixels = new byte[capacity * channels * resolution * resolution];
            readTokens = TokenColumns.Reader(row, column, o.CodebookSize, tokensPerImage);
        }

        public void ReadRow(int slot) => readTokens().CopyTo(tokens, slot * tokensPerImage);

        public void Compute(int count)
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var ids = tensor(tokens.AsSpan(0, count * tokensPerImage).ToArray(), new long[] { count, side, side }).to(parent.device);
            var images = PixelScale.ToBytes(parent.Model.DecodeTokens(ids)).cpu();
            images.data<byte>().CopyTo(pixels.AsSpan(0, (int)images.NumberOfElements));
        }

        public Delegate MakeGetter(int output, Func<int> slot)
        {
            ValueGetter<MLImage> getter = (ref MLImage dst) =>
            {
                int s = slot();
                dst?.Dispose();
                dst = ImagePixels.ToImage(pixels.AsSpan(s * channels * resolution * resolution, channels * resolution * resolution),
                    channels, resolution, resolution);
            };
            return getter;
        }

        public void Dispose() { }
    }
}
