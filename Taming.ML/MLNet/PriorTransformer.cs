using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Taming.ML.MLNet;
using Taming.ML.Models;
using Taming.ML.Sampling;
using Taming.ML.Training;
using static TorchSharp.torch;

[assembly: LoadableClass(typeof(PriorTransformer), null, typeof(SignatureLoadModel),
    "Transformer prior", PriorTransformer.LoaderSignature)]

namespace Taming.ML.MLNet;

/// <summary>
/// A fitted transformer prior p(tokens | condition). As a transformer it scores rows: it adds a Single column
/// with each row's negative log-likelihood in bits per image token (higher = less typical), so the prior can
/// rank or flag unusual images downstream; token grids larger than the modelled grid are read with the sliding
/// window. <see cref="Sample"/> draws new token grids; the <see cref="TamingCatalogExtensions.GenerateTokens"/> stage
/// does so inside a pipeline.
/// </summary>
public sealed class PriorTransformer : BatchedTransformerBase
{
    internal const string LoaderSignature = "TamingTransformerPrior";
    // 1.2 adds the training state; older files read as of unknown history.
    private const uint TrainingStateVersion = 0x00010002;
    private static readonly VersionInfo Version = ModelFile.Version("TAMPRIOR", LoaderSignature, TrainingStateVersion);

    internal PriorTransformer(IHostEnvironment env, Gpt model, Device device, string scoreColumnName, string tokenColumnName,
        string? labelColumnName, string? conditionColumnName, PriorTrainingState? training = null) : base(env, nameof(PriorTransformer))
    {
        Model = model;
        Training = training ?? PriorTrainingState.Unknown;
        Device = device;
        ScoreColumnName = scoreColumnName;
        TokenColumnName = tokenColumnName;
        LabelColumnName = labelColumnName;
        ConditionColumnName = conditionColumnName;
    }

    /// <summary>The trained GPT, for direct TorchSharp use.</summary>
    public Gpt Model { get; }

    /// <summary>Training steps the prior has made, over every fit that trained it (0 for priors saved before this was
    /// recorded); <see cref="PriorEstimator.Fit(IDataView, PriorTransformer)"/> continues a prior.</summary>
    public int TrainedSteps => Training.Steps;

    /// <summary>The learning rate of the last training step (0 where unknown: priors saved before this was recorded). A fit
    /// that continues the prior warms up to it, unless its options say <c>RestartLearningRate</c>.</summary>
    public double FinalLearningRate => Training.LearningRate;

    internal PriorTrainingState Training { get; }

    /// <summary>Conditioning, grid shape and vocabulary.</summary>
    public PriorLayout Layout => Model.Layout;

    /// <summary>The bits-per-token column this transformer adds.</summary>
    public string ScoreColumnName { get; }

    /// <summary>The image-token column it reads.</summary>
    public string TokenColumnName { get; }

    /// <summary>The class-label column (class-conditional priors).</summary>
    public string? LabelColumnName { get; }

    /// <summary>The condition-token column (image-conditional priors).</summary>
    public string? ConditionColumnName { get; }

    internal Device Device { get; }

    /// <summary>The type of sampled token grids: the same key vector the tokenizer produces.</summary>
    public VectorDataViewType TokenType => new(new KeyDataViewType(typeof(uint), Layout.CodebookSize), Layout.Canvas.Height, Layout.Canvas.Width);

    /// <summary>
    /// Samples one token grid (row-major ids, 0-based) per condition: a class index (class-conditional), condition
    /// token ids (image-conditional: the prior's condition grid, or a condition canvas of the output canvas's size),
    /// or empty (unconditional). Each row has its own seed. The canvas is the options' size
    /// (<see cref="SamplingOptions.HeightTokens"/>, <see cref="SamplingOptions.WidthTokens"/>), else the grids the
    /// prior was fitted on (<see cref="PriorLayout.Canvas"/>); canvases larger than the modelled grid use the sliding window.
    /// </summary>
    public long[][] Sample(IReadOnlyList<long[]> conditions, IReadOnlyList<int> seeds, SamplingOptions? options = null)
    {
        options ??= new SamplingOptions();
        options.Validate();
        if (conditions.Count != seeds.Count) throw new ArgumentException($"{conditions.Count} conditions but {seeds.Count} seeds.");
        int height = options.HeightTokens > 0 ? options.HeightTokens : Layout.Canvas.Height;
        int width = options.WidthTokens > 0 ? options.WidthTokens : Layout.Canvas.Width;
        bool windowed = (height, width) != (Layout.GridHeight, Layout.GridWidth);
        var inputs = Inputs(conditions, windowed ? height * width : Layout.PrefixLength, windowed);
        return windowed ? SampleCanvases(inputs, seeds, options, height, width) : SamplePrefixes(inputs, seeds, options);
    }

    /// <summary>
    /// Checks user conditions and turns them into sampler inputs: a one-token vocabulary prefix for unconditional and
    /// class priors; condition ids for image priors — raw for the sliding window (<paramref name="canvas"/>), which
    /// crops and shifts them itself, else shifted past the image codes as a prefix.
    /// </summary>
    private List<long[]> Inputs(IReadOnlyList<long[]> conditions, int conditionLength, bool canvas) =>
        conditions.Select(c => Layout.Conditioning switch
        {
            Conditioning.None => new long[] { Layout.CodebookSize },
            Conditioning.Class => c.Length == 1 && c[0] >= 0 && c[0] < Layout.ClassCount
                ? new long[] { Layout.CodebookSize + c[0] }
                : throw new ArgumentOutOfRangeException(nameof(conditions), $"Class {string.Join(",", c)} is outside the trained classes 0 … {Layout.ClassCount - 1}."),
            _ => c.Length == conditionLength && c.All(t => t >= 0 && t < Layout.ConditionCodebookSize)
                ? (canvas ? c : c.Select(t => t + Layout.CodebookSize).ToArray())
                : throw new ArgumentOutOfRangeException(nameof(conditions), $"Condition tokens must be {conditionLength} ids in 0 … {Layout.ConditionCodebookSize - 1}."),
        }).ToList();

    /// <summary>
    /// The prior's negative log-likelihood, in bits per token, of token canvases (row-major ids) of
    /// <paramref name="height"/>×<paramref name="width"/> under the reference's sliding window; conditions as for
    /// <see cref="Sample"/>. Lower is more typical of the training data.
    /// </summary>
    public double[] BitsPerToken(IReadOnlyList<long[]> conditions, IReadOnlyList<long[]> canvases, int height, int width) =>
        BitsPerToken(conditions, canvases, height, width, prefixesAreInputs: false);

    /// <summary><see cref="BitsPerToken(IReadOnlyList{long[]}, IReadOnlyList{long[]}, int, int)"/>; with
    /// <paramref name="prefixesAreInputs"/> the conditions are already sampler inputs (checked columns).</summary>
    internal double[] BitsPerToken(IReadOnlyList<long[]> conditions, IReadOnlyList<long[]> canvases, int height, int width, bool prefixesAreInputs)
    {
        if (conditions.Count != canvases.Count) throw new ArgumentException($"{conditions.Count} conditions but {canvases.Count} canvases.");
        if (height < Layout.GridHeight || width < Layout.GridWidth)
            throw new ArgumentOutOfRangeException(nameof(height), $"The canvas ({height}×{width} tokens) is smaller than the prior's window ({Layout.GridHeight}×{Layout.GridWidth}).");
        if (canvases.Any(c => c.Length != height * width || c.Any(t => t < 0 || t >= Layout.CodebookSize)))
            throw new ArgumentOutOfRangeException(nameof(canvases), $"Each canvas must hold {height * width} ids in 0 … {Layout.CodebookSize - 1}.");
        using var scope = NewDisposeScope();
        long b = canvases.Count;
        var canvas = tensor(canvases.SelectMany(c => c).ToArray(), new long[] { b, height, width }).to(Device);
        bool image = Layout.Conditioning == Conditioning.Image;
        var inputs = prefixesAreInputs ? conditions : Inputs(conditions, height * width, canvas: true);
        var flat = tensor(inputs.SelectMany(c => c).ToArray()).to(Device);
        return WindowedSampler.BitsPerToken(Model, canvas, image ? null : flat.view(b, 1), image ? flat.view(b, height, width) : null);
    }

    /// <summary>
    /// Samples canvases of <paramref name="height"/>×<paramref name="width"/> tokens with the sliding window. Each
    /// row of <paramref name="inputs"/> is a (1-token) vocabulary prefix, or for image-conditioned priors the
    /// condition canvas (height·width condition ids).
    /// </summary>
    internal long[][] SampleCanvases(IReadOnlyList<long[]> inputs, IReadOnlyList<int> seeds, SamplingOptions options, int height, int width)
    {
        using var scope = NewDisposeScope();
        long b = inputs.Count;
        var flat = tensor(inputs.SelectMany(p => p).ToArray()).to(Device);
        bool image = Layout.Conditioning == Conditioning.Image;
        var canvas = WindowedSampler.Sample(Model, height, width, image ? null : flat.view(b, 1), image ? flat.view(b, height, width) : null,
            seeds, options, options.WindowMode);
        var tokens = canvas.cpu().data<long>().ToArray();
        int n = height * width;
        return Enumerable.Range(0, inputs.Count).Select(r => tokens[(r * n)..((r + 1) * n)]).ToArray();
    }

    internal long[][] SamplePrefixes(IReadOnlyList<long[]> prefixes, IReadOnlyList<int> seeds, SamplingOptions options)
    {
        using var scope = NewDisposeScope();
        var prefix = tensor(prefixes.SelectMany(p => p).ToArray(), new long[] { prefixes.Count, Layout.PrefixLength }).to(Device);
        var tokens = PriorSampler.Sample(Model, prefix, seeds, options).cpu().data<long>().ToArray();
        int n = Layout.ImageLength;
        return Enumerable.Range(0, prefixes.Count).Select(r => tokens[(r * n)..((r + 1) * n)]).ToArray();
    }

    private protected override IBatchMapper MakeMapper(DataViewSchema inputSchema) => new Mapper(this, inputSchema);

    private protected override void SaveModel(ModelSaveContext ctx)
    {
        PriorModelFile.Save(ctx, Version, Model, new[] { ScoreColumnName, TokenColumnName, LabelColumnName, ConditionColumnName }, Array.Empty<string>());
        ctx.Writer.Write(Training.Steps);
        ctx.Writer.Write(Training.LearningRate);
    }

    private static PriorTransformer Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        var (model, device, columns, _) = PriorModelFile.Load(env, ctx, Version, columnCount: 4, extraCount: 0);
        var training = PriorTrainingState.Unknown;
        if (ctx.Header.ModelVerWritten >= TrainingStateVersion)
        {
            int steps = ctx.Reader.ReadInt32();
            double rate = ctx.Reader.ReadDouble();
            if (steps < 0 || !(rate >= 0 && double.IsFinite(rate)))
                throw new InvalidDataException($"The model file's training state is corrupt: {steps} steps, learning rate {rate}.");
            training = new PriorTrainingState(steps, rate);
        }
        return new PriorTransformer(env, model, device, columns[0]!, columns[1]!, columns[2], columns[3], training);
    }

    private sealed class Mapper : IBatchMapper
    {
        private readonly PriorTransformer parent;

        public Mapper(PriorTransformer parent, DataViewSchema schema)
        {
            this.parent = parent;
            // Token grids of the modelled size are scored in one pass; larger ones (a windowed prior's canvases) with the sliding window.
            var tokens = schema.GetColumnOrNull(parent.TokenColumnName);
            var (_, h, w) = tokens is null ? (null, 0, 0) : TokenColumns.Inspect(tokens.Value);
            var layout = parent.Layout;
            Layout = h * w != layout.ImageLength && h >= layout.GridHeight && w >= layout.GridWidth ? layout.CanvasLayout(h, w) : layout;
            InputColumns = PriorInputs.Columns(schema, Layout, parent.TokenColumnName, parent.LabelColumnName, parent.ConditionColumnName);
            OutputColumns = new[] { new DataViewSchema.DetachedColumn(parent.ScoreColumnName, NumberDataViewType.Single) };
        }

        /// <summary>The layout of the rows: the prior's, or its canvas layout for larger grids.</summary>
        public PriorLayout Layout { get; }

        public IReadOnlyList<DataViewSchema.Column> InputColumns { get; }
        public IReadOnlyList<DataViewSchema.DetachedColumn> OutputColumns { get; }
        public int BatchSize => parent.Model.Options.InferenceBatchSize;

        public IBatchState CreateState(DataViewRow row, int capacity) => new State(parent, Layout, row, capacity);
    }

    private sealed class State : IBatchState
    {
        private readonly PriorTransformer parent;
        private readonly PriorLayout layout;
        private readonly PriorInputs inputs;
        private readonly long[][] prefixes, tokens;
        private readonly float[] scores;

        public State(PriorTransformer parent, PriorLayout layout, DataViewRow row, int capacity)
        {
            this.parent = parent;
            this.layout = layout;
            inputs = new PriorInputs(row, layout, parent.TokenColumnName, parent.LabelColumnName, parent.ConditionColumnName);
            prefixes = new long[capacity][];
            tokens = new long[capacity][];
            scores = new float[capacity];
        }

        private bool Windowed => layout != parent.Layout;

        public void ReadRow(int slot)
        {
            // The sliding window takes image conditions as condition ids, not as a prefix.
            prefixes[slot] = Windowed && layout.Conditioning == Conditioning.Image ? inputs.Condition() : inputs.Prefix();
            tokens[slot] = inputs.Tokens();
        }

        public void Compute(int count)
        {
            if (Windowed)
            {
                var bits = parent.BitsPerToken(prefixes[..count], tokens[..count], layout.GridHeight, layout.GridWidth, prefixesAreInputs: true);
                for (int i = 0; i < count; i++) scores[i] = (float)bits[i];
                return;
            }
            int p = layout.PrefixLength, n = layout.ImageLength;
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var ids = tensor(Enumerable.Range(0, count).SelectMany(i => prefixes[i].Concat(tokens[i])).ToArray(), new long[] { count, p + n }).to(parent.Device);
            var nll = parent.Model.ImageTokenNll(ids).mean(new long[] { 1 }) / Math.Log(2);
            nll.cpu().data<float>().CopyTo(scores.AsSpan(0, count));
        }

        public Delegate MakeGetter(int output, Func<int> slot)
        {
            ValueGetter<float> getter = (ref float dst) => dst = scores[slot()];
            return getter;
        }

        public void Dispose() { }
    }
}
