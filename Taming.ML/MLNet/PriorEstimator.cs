using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Taming.ML.Models;
using Taming.ML.Native;
using Taming.ML.Training;

namespace Taming.ML.MLNet;

/// <summary>
/// Fits a transformer prior on a token column (a tokenizer's output), unconditionally, on a class label, or on a
/// second token column of condition images. <see cref="Fit(IDataView)"/> returns a <see cref="PriorTransformer"/>;
/// <see cref="Fit(IDataView, PriorTransformer)"/> continues training a fitted one.
/// </summary>
public sealed class PriorEstimator : IEstimator<PriorTransformer>
{
    private readonly IHostEnvironment env;
    private readonly IHost host;
    private readonly string scoreColumnName, tokenColumnName;
    private readonly string? labelColumnName, conditionColumnName;
    private readonly GptOptions options;

    internal PriorEstimator(IHostEnvironment env, string tokenColumnName, string? labelColumnName, string? conditionColumnName,
        GptOptions? options, string scoreColumnName)
    {
        if (labelColumnName != null && conditionColumnName != null)
            throw new ArgumentException("A prior is conditioned on a label or on condition tokens, not both.");
        this.env = env;
        host = env.Register(nameof(PriorEstimator));
        this.tokenColumnName = tokenColumnName;
        this.labelColumnName = labelColumnName;
        this.conditionColumnName = conditionColumnName;
        this.options = (options ?? new GptOptions()).Clone();
        this.scoreColumnName = scoreColumnName;
    }

    /// <summary>Checks the input columns and describes the score column the prior adds.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        foreach (var name in new[] { tokenColumnName, labelColumnName, conditionColumnName }.OfType<string>())
            SchemaColumns.Find(inputSchema, name);
        var result = inputSchema.ToDictionary(c => c.Name);
        result[scoreColumnName] = new SchemaShape.Column(scoreColumnName, SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.Single, false);
        return new SchemaShape(result.Values);
    }

    /// <summary>Reads the token grids (and conditions) into memory and trains the prior.</summary>
    public PriorTransformer Fit(IDataView input) => Train(input, initial: null);

    /// <summary>
    /// Continues training <paramref name="initial"/>, a fitted or loaded prior (which is left as it is), on the rows of the
    /// input, as ML.NET's trainers continue from given model parameters. The rows must be what it was fitted on: tokens of
    /// the same codebook and grid size (any canvas size for a prior fitted on windows, whose default canvas becomes the
    /// new rows'), and the same conditioning (class count and names, or condition grid); a mismatch is an error that names
    /// it. The network's shape and weights come from <paramref name="initial"/> (options that would shape it otherwise are
    /// logged and not used); this estimator's options give everything else. AdamW's moments are not saved with a model: the
    /// learning rate warms up again, to the rate at which the prior's last fit ended (or the options' rate where that is
    /// lower), and decays to a tenth of it over this fit's steps, no lower than a hundredth of the options' rate
    /// (<c>RestartLearningRate</c>: to the options' rate, as a new fit).
    /// </summary>
    public PriorTransformer Fit(IDataView input, PriorTransformer initial) =>
        Train(input, initial ?? throw new ArgumentNullException(nameof(initial)));

    private PriorTransformer Train(IDataView input, PriorTransformer? initial)
    {
        ArgumentNullException.ThrowIfNull(input);
        using var ch = host.Start("Fit");
        var o = initial is null ? options.Clone() : options.WithArchitectureOf(initial.Model.Options, m => ch.Info(m));
        var layout = Layout(input, o.Window);
        if (initial is not null) layout = Continuing(layout, initial.Layout);
        o.Seed ??= (env as IHostEnvironmentInternal)?.Seed;
        o.Validate();
        TimeBudget.Check(o.TimeBudget, nameof(GptOptions));
        var device = TorchRuntime.ResolveDevice(o.Device);
        if (layout.ImageLength > LongSequence)
            ch.Warning($"The prior models {layout.GridHeight}×{layout.GridWidth} tokens at a time ({layout.ImageLength:N0} a sequence): every " +
                       $"step attends over all of them, so its work grows with the square of that (a 16×16 window: 256). GptOptions.Window " +
                       "fits it on windows of the grids and generates and scores whole grids with the sliding window, as the reference " +
                       "does for high resolution.");
        var validation = o.ValidationSet is { } heldOut ? ReadValidation(heldOut, layout, o.Window, m => ch.Info(m)) : null; // fails before a long read
        var sequences = ReadSequences(input, layout, m => ch.Info(m));
        if (sequences.Count == 0) throw new InvalidOperationException("The training data is empty: the prior needs at least one token grid.");
        if (MissingClasses(sequences, layout) is { Length: > 0 } missing) ch.Warning(missing);
        var (canvasHeight, canvasWidth) = layout.Canvas;
        string windows = (canvasHeight, canvasWidth) == (layout.GridHeight, layout.GridWidth) ? "" : $" in random {layout.GridHeight}×{layout.GridWidth} windows";
        if (o.Window > Math.Min(canvasHeight, canvasWidth))
            ch.Info($"GptOptions.Window {o.Window} is larger than the {canvasHeight}×{canvasWidth} token grids, so the prior models " +
                    $"{layout.GridHeight}×{layout.GridWidth} tokens at a time.");
        string kind = layout.Conditioning switch { Conditioning.Class => "a class-conditional", Conditioning.Image => "an image-conditioned", _ => "an unconditional" };
        ch.Info($"Training {kind} prior on {sequences.Count} grids of " +
                $"{canvasHeight}×{canvasWidth} tokens{windows} ({layout.CodebookSize} codes), {o.Layers} layers × {o.Width} wide, on {device}.");
        PriorTransformer Fitted(Gpt model, PriorTrainingState training, TorchSharp.torch.Device on) =>
            new(env, model, on, scoreColumnName, tokenColumnName, labelColumnName, conditionColumnName, training);
        var checkpoint = Checkpoints.Calling<Gpt, PriorTrainingState, PriorTransformer>(o.Checkpoint,
            (m, s) => Fitted(m, s, TorchSharp.torch.CPU), p => p.TrainedSteps, nameof(GptOptions), m => ch.Info(m), m => ch.Warning(m));
        var (model, training) = new GptTrainer(o, layout, device, m => ch.Info(m))
            .Train(sequences, initial is null ? null : (initial.Model, initial.Training), checkpoint, validation);
        return Fitted(model, training, device);
    }

    /// <summary>Modelled sequences longer than this (a 32×32 grid) are warned about: their steps are slow.</summary>
    private const int LongSequence = 1024;

    /// <summary>The layout of the rows, with the codebooks that their token columns name.</summary>
    private PriorLayout Layout(IDataView input, int window)
    {
        var layout = ShapeOf(input, window);
        return layout with
        {
            Codebook = TokenColumns.CodebookOf(input.Schema[tokenColumnName]),
            ConditionCodebook = conditionColumnName is null ? null : TokenColumns.CodebookOf(input.Schema[conditionColumnName]),
        };
    }

    /// <summary>
    /// The layout of the rows, checked against that of the prior a fit continues: all must match but the canvas of a prior
    /// fitted on windows. Codebooks and class names that only one side knows are taken from it.
    /// </summary>
    private static PriorLayout Continuing(PriorLayout data, PriorLayout prior)
    {
        var (rows, differences) = Compare(data, prior, "the prior's", anyCanvas: true);
        if (differences.Length == 0) return rows;
        throw new ArgumentOutOfRangeException("input", "The rows do not fit the prior that the fit would continue: " +
            string.Join("; ", differences) + ". Continue a prior on rows like those it was fitted on (the same tokenizer, " +
            "conditioning and classes).");
    }

    /// <summary>
    /// <paramref name="rows"/>' layout, with the codebooks and class names that only <paramref name="other"/> knows, and
    /// how the two differ ("codes 16 (the prior's: 64)"); <paramref name="anyCanvas"/>: canvases of any size match.
    /// </summary>
    private static (PriorLayout Rows, string[] Differences) Compare(PriorLayout rows, PriorLayout other, string otherName, bool anyCanvas)
    {
        rows = rows with
        {
            Codebook = rows.Codebook ?? other.Codebook, ConditionCodebook = rows.ConditionCodebook ?? other.ConditionCodebook,
            ClassNames = rows.ClassNames ?? other.ClassNames,
        };
        other = other with
        {
            Codebook = other.Codebook ?? rows.Codebook, ConditionCodebook = other.ConditionCodebook ?? rows.ConditionCodebook,
            ClassNames = other.ClassNames ?? rows.ClassNames,
            CanvasHeight = anyCanvas ? rows.CanvasHeight : other.CanvasHeight, CanvasWidth = anyCanvas ? rows.CanvasWidth : other.CanvasWidth,
        };
        if (rows.Equals(other)) return (rows, Array.Empty<string>());
        static string Names(PriorLayout l) => l.ClassNames is { } names ? string.Join(", ", names.Take(10)) + (names.Count > 10 ? ", …" : "") : "";
        var differences = new (string What, object Rows, object Other)[]
        {
            ("conditioning", rows.Conditioning, other.Conditioning), ("codes", rows.CodebookSize, other.CodebookSize),
            ("token grid", $"{rows.GridHeight}×{rows.GridWidth}", $"{other.GridHeight}×{other.GridWidth}"),
            ("canvas", $"{rows.Canvas.Height}×{rows.Canvas.Width}", $"{other.Canvas.Height}×{other.Canvas.Width}"),
            ("classes", rows.ClassCount, other.ClassCount), ("class names", Names(rows), Names(other)),
            ("condition codes", rows.ConditionCodebookSize, other.ConditionCodebookSize),
            ("condition grid", $"{rows.ConditionHeight}×{rows.ConditionWidth}", $"{other.ConditionHeight}×{other.ConditionWidth}"),
            ("codebook", rows.Codebook ?? "", other.Codebook ?? ""), ("condition codebook", rows.ConditionCodebook ?? "", other.ConditionCodebook ?? ""),
        }.Where(d => !Equals(d.Rows, d.Other)).Select(d => $"{d.What} {d.Rows} ({otherName}: {d.Other})").ToArray();
        return (rows, differences);
    }

    /// <summary>The rows of <see cref="GptOptions.ValidationSet"/>, which must be like the training rows.</summary>
    private List<long[]> ReadValidation(IDataView view, PriorLayout layout, int window, Action<string> log)
    {
        try
        {
            var (_, differences) = Compare(Layout(view, window), layout, "the training rows'", anyCanvas: false);
            if (differences.Length > 0)
                throw new ArgumentException($"its rows are not like the training rows: {string.Join("; ", differences)}.");
            var rows = ReadSequences(view, layout, log, "held-out token grids");
            if (rows.Count == 0) throw new ArgumentException("it holds no rows.");
            log($"Validation: {rows.Count:N0} held-out token grids (GptOptions.ValidationSet), scored at every progress report.");
            return rows;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or InvalidDataException)
        {
            throw SchemaColumns.InOption("GptOptions.ValidationSet", e);
        }
    }

    private PriorLayout ShapeOf(IDataView input, int window)
    {
        var tokens = SchemaColumns.Find(input.Schema, tokenColumnName, parameter: nameof(input));
        var (count, h, w) = TokenColumns.Inspect(tokens);
        int codebook = count ?? MaxPlusOne(input, tokens);
        // The modelled grid: the whole grid, or the window, which then slides over the grid (its canvas).
        var (gh, gw) = window > 0 ? (Math.Min(window, h), Math.Min(window, w)) : (h, w);
        var (canvasHeight, canvasWidth) = (gh, gw) == (h, w) ? (0, 0) : (h, w);
        if (labelColumnName != null)
        {
            var label = SchemaColumns.Find(input.Schema, labelColumnName, "Label", nameof(input));
            int classes = TokenColumns.InspectLabel(label) ?? MaxPlusOne(input, label);
            return new PriorLayout(Conditioning.Class, codebook, gh, gw, ClassCount: classes, CanvasHeight: canvasHeight, CanvasWidth: canvasWidth,
                ClassNames: TokenColumns.ClassNamesOf(label));
        }
        if (conditionColumnName != null)
        {
            var condition = SchemaColumns.Find(input.Schema, conditionColumnName, "Condition", nameof(input));
            var (ck, ch, cw) = TokenColumns.Inspect(condition);
            if (canvasHeight > 0 && (ch, cw) != (h, w))
                throw new ArgumentOutOfRangeException(nameof(input), $"Column '{condition.Name}' holds {ch}×{cw} condition tokens, column " +
                    $"'{tokens.Name}' {h}×{w}: a prior fitted on windows cuts both grids at the same place, so they must have the same size.");
            return new PriorLayout(Conditioning.Image, codebook, gh, gw,
                ConditionCodebookSize: ck ?? MaxPlusOne(input, condition), ConditionHeight: canvasHeight > 0 ? gh : ch, ConditionWidth: canvasHeight > 0 ? gw : cw,
                CanvasHeight: canvasHeight, CanvasWidth: canvasWidth);
        }
        return new PriorLayout(Conditioning.None, codebook, gh, gw, CanvasHeight: canvasHeight, CanvasWidth: canvasWidth);
    }

    /// <summary>
    /// "" where every class of a class-conditional prior has training rows; otherwise which have none (say, rows taken
    /// from the start of a folder read class by class), whose samples the prior then never learns.
    /// </summary>
    private static string MissingClasses(List<long[]> sequences, PriorLayout layout)
    {
        if (layout.Conditioning != Conditioning.Class) return "";
        var seen = new bool[layout.ClassCount];
        foreach (var s in sequences) seen[s[0] - layout.CodebookSize] = true;
        var missing = Enumerable.Range(0, layout.ClassCount).Where(c => !seen[c]).ToList();
        if (missing.Count == 0) return "";
        var named = missing.Take(10).Select(c => layout.ClassNames is { } names ? $"'{names[c]}'" : c.ToString());
        return $"{missing.Count} of the {layout.ClassCount} classes have no training rows ({string.Join(", ", named)}{(missing.Count > 10 ? ", …" : "")}), " +
               "so the prior does not learn them and their samples are noise. Train on rows of every class (rows taken from the start of " +
               "data sorted by class hold only its first classes; mlContext.Data.ShuffleRows or TrainTestSplit mixes them).";
    }

    /// <summary>1 + the largest id in an Int32 column (a scalar label or a token vector).</summary>
    private static int MaxPlusOne(IDataView input, DataViewSchema.Column column)
    {
        int max = -1;
        using var cursor = input.GetRowCursor(new[] { column });
        if (column.Type is VectorDataViewType)
        {
            var getter = cursor.GetGetter<VBuffer<int>>(column);
            var buffer = default(VBuffer<int>);
            while (cursor.MoveNext()) { getter(ref buffer); foreach (var v in buffer.DenseValues()) max = Math.Max(max, v); }
        }
        else
        {
            var getter = cursor.GetGetter<int>(column);
            int v = 0;
            while (cursor.MoveNext()) { getter(ref v); max = Math.Max(max, v); }
        }
        if (max < 0) throw new InvalidOperationException($"Column '{column.Name}' has no values ≥ 0: the data is empty or holds no valid ids.");
        return max + 1;
    }

    /// <summary>Each row's prefix and image tokens in vocabulary ids; for a windowed prior the whole canvas (see <see cref="TokenWindows"/>).</summary>
    private List<long[]> ReadSequences(IDataView input, PriorLayout layout, Action<string> log, string what = "token grids")
    {
        var progress = new ReadProgress(log, what, input.GetRowCount());
        layout = layout.CanvasLayout();
        var columns = PriorInputs.Columns(input.Schema, layout, tokenColumnName, labelColumnName, conditionColumnName);
        var sequences = new List<long[]>();
        using var cursor = input.GetRowCursor(columns);
        var inputs = new PriorInputs(cursor, layout, tokenColumnName, labelColumnName, conditionColumnName);
        while (cursor.MoveNext())
        {
            options.CancellationToken.ThrowIfCancellationRequested();
            StopRequest.ThrowIfBeforeTraining(options.StopToken, nameof(GptOptions));
            sequences.Add(inputs.Prefix().Concat(inputs.Tokens()).ToArray());
            progress.Add();
        }
        progress.Done();
        return sequences;
    }
}
