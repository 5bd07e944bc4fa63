using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Taming.ML.MLNet;
using Taming.ML.Models;
using Taming.ML.Sampling;

[assembly: LoadableClass(typeof(TokenGeneratorTransformer), null, typeof(SignatureLoadModel),
    "Token generator", TokenGeneratorTransformer.LoaderSignature)]

namespace Taming.ML.MLNet;

/// <summary>
/// Generates a token grid per input row from a fitted prior: the row gives the condition (a class label, a
/// condition image's tokens, or nothing) and optionally a seed (Int32). The output is the tokenizer's key-vector
/// type, so <see cref="TamingCatalogExtensions.DecodeTokens"/> turns it into images: "labels in, images out" is
/// an ordinary pipeline.
/// </summary>
public sealed class TokenGeneratorTransformer : BatchedTransformerBase
{
    internal const string LoaderSignature = "TamingTokenGenerator";
    // 1.2: CUDA-graph sampling became the default; 1.1 files stored the old default (off), not a choice.
    private const uint GraphsByDefaultVersion = 0x00010002;
    private static readonly VersionInfo Version = ModelFile.Version("TAMGENTK", LoaderSignature, GraphsByDefaultVersion);

    internal TokenGeneratorTransformer(IHostEnvironment env, PriorTransformer prior, string outputColumnName,
        string? labelColumnName, string? conditionColumnName, string? seedColumnName, SamplingOptions options)
        : base(env, nameof(TokenGeneratorTransformer))
    {
        options.Validate();
        Prior = prior;
        OutputColumnName = outputColumnName;
        LabelColumnName = labelColumnName;
        ConditionColumnName = conditionColumnName;
        SeedColumnName = seedColumnName;
        Options = options.Clone();
    }

    /// <summary>The prior that samples.</summary>
    public PriorTransformer Prior { get; }

    /// <summary>The generated token column.</summary>
    public string OutputColumnName { get; }

    /// <summary>The class-label column, for class-conditional priors.</summary>
    public string? LabelColumnName { get; }

    /// <summary>The condition-token column, for image-conditional priors.</summary>
    public string? ConditionColumnName { get; }

    /// <summary>An Int32 column with each row's seed; without it row i uses Options.Seed + i.</summary>
    public string? SeedColumnName { get; }

    /// <summary>Temperature, top-k, top-p, seed, canvas size.</summary>
    public SamplingOptions Options { get; }

    /// <summary>The generated canvas in tokens: the options' size, or the grids the prior was fitted on (<see cref="PriorLayout.Canvas"/>).</summary>
    public (int Height, int Width) Canvas => (Options.HeightTokens > 0 ? Options.HeightTokens : Prior.Layout.Canvas.Height,
                                              Options.WidthTokens > 0 ? Options.WidthTokens : Prior.Layout.Canvas.Width);

    private bool Windowed => Canvas != (Prior.Layout.GridHeight, Prior.Layout.GridWidth);

    /// <summary>Condition tokens per row: the canvas for windowed image-conditioned sampling, else the prior's condition grid.</summary>
    private int? ConditionLength => Windowed && Prior.Layout.Conditioning == Conditioning.Image ? Canvas.Height * Canvas.Width : null;

    private protected override IBatchMapper MakeMapper(DataViewSchema inputSchema) => new Mapper(this, inputSchema);

    private protected override void SaveModel(ModelSaveContext ctx) =>
        PriorModelFile.Save(ctx, Version, Prior.Model,
            new[] { OutputColumnName, LabelColumnName, ConditionColumnName, SeedColumnName, Prior.ScoreColumnName, Prior.TokenColumnName, Prior.LabelColumnName, Prior.ConditionColumnName },
            new[] { ModelFile.Json(Options) });

    private static TokenGeneratorTransformer Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        var (model, device, c, extra) = PriorModelFile.Load(env, ctx, Version, columnCount: 8, extraCount: 1);
        var prior = new PriorTransformer(env, model, device, c[4]!, c[5]!, c[6], c[7]);
        var options = ModelFile.FromJson<SamplingOptions>(extra[0], "sampling settings");
        if (ctx.Header.ModelVerWritten < GraphsByDefaultVersion) options.CudaGraphs = true;
        return new TokenGeneratorTransformer(env, prior, c[0]!, c[1], c[2], c[3], options);
    }

    private sealed class Mapper : IBatchMapper
    {
        private readonly TokenGeneratorTransformer parent;

        public Mapper(TokenGeneratorTransformer parent, DataViewSchema schema)
        {
            this.parent = parent;
            var (height, width) = parent.Canvas;
            var layout = parent.Prior.Layout;
            if (height < layout.GridHeight || width < layout.GridWidth)
                throw new ArgumentOutOfRangeException(nameof(schema), $"The canvas ({height}×{width} tokens) is smaller than the prior's window ({layout.GridHeight}×{layout.GridWidth}).");
            var columns = PriorInputs.Columns(schema, layout, null, parent.LabelColumnName, parent.ConditionColumnName, parent.ConditionLength);
            if (parent.SeedColumnName != null)
            {
                var seed = SchemaColumns.Find(schema, parent.SeedColumnName, "Seed");
                if (seed.Type != NumberDataViewType.Int32)
                    throw new ArgumentOutOfRangeException(nameof(schema), $"The seed column '{seed.Name}' has type {seed.Type}; expected Int32.");
                columns.Add(seed);
            }
            InputColumns = columns;
            OutputColumns = new[] { new DataViewSchema.DetachedColumn(parent.OutputColumnName,
                new VectorDataViewType(new KeyDataViewType(typeof(uint), layout.CodebookSize), height, width), TokenColumns.Annotations(layout.CodebookSize, layout.Codebook)) };
        }

        public IReadOnlyList<DataViewSchema.Column> InputColumns { get; }
        public IReadOnlyList<DataViewSchema.DetachedColumn> OutputColumns { get; }
        public int BatchSize => parent.Prior.Model.Options.InferenceBatchSize;

        public IBatchState CreateState(DataViewRow row, int capacity) => new State(parent, row, capacity);
    }

    private sealed class State : IBatchState
    {
        private readonly TokenGeneratorTransformer parent;
        private readonly DataViewRow row;
        private readonly PriorInputs inputs;
        private readonly ValueGetter<int>? seedGetter;
        private readonly long[][] prefixes, tokens;
        private readonly int[] seeds;

        public State(TokenGeneratorTransformer parent, DataViewRow row, int capacity)
        {
            this.parent = parent;
            this.row = row;
            inputs = new PriorInputs(row, parent.Prior.Layout, null, parent.LabelColumnName, parent.ConditionColumnName, parent.ConditionLength);
            if (parent.SeedColumnName != null) seedGetter = row.GetGetter<int>(row.Schema[parent.SeedColumnName]);
            prefixes = new long[capacity][];
            tokens = new long[capacity][];
            seeds = new int[capacity];
        }

        public void ReadRow(int slot)
        {
            prefixes[slot] = parent.Windowed && parent.Prior.Layout.Conditioning == Conditioning.Image ? inputs.Condition() : inputs.Prefix();
            int seed = 0;
            seedGetter?.Invoke(ref seed);
            seeds[slot] = seedGetter != null ? seed : unchecked(parent.Options.Seed + (int)row.Position);
        }

        public void Compute(int count)
        {
            var sampled = parent.Windowed
                ? parent.Prior.SampleCanvases(prefixes[..count], seeds[..count], parent.Options, parent.Canvas.Height, parent.Canvas.Width)
                : parent.Prior.SamplePrefixes(prefixes[..count], seeds[..count], parent.Options);
            for (int i = 0; i < count; i++) tokens[i] = sampled[i];
        }

        public Delegate MakeGetter(int output, Func<int> slot)
        {
            ValueGetter<VBuffer<uint>> getter = (ref VBuffer<uint> dst) => TokenColumns.WriteKeys(ref dst, tokens[slot()]);
            return getter;
        }

        public void Dispose() { }
    }
}
