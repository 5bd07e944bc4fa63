using System.Text.Json.Serialization;

namespace Taming.ML.Models;

/// <summary>
/// Every knob of the transformer prior in one place, minGPT-style: architecture and training. The
/// defaults suit a 2-core CPU and 8×8 token grids; the sequence length is set from the data (or the
/// <see cref="Window"/>).
/// </summary>
public sealed class GptOptions
{
    // ---- architecture -------------------------------------------------------------------------

    /// <summary>Transformer blocks. Default 4.</summary>
    public int Layers { get; set; } = 4;

    /// <summary>Attention heads per block; must divide <see cref="Width"/>. Default 4.</summary>
    public int Heads { get; set; } = 4;

    /// <summary>Embedding width. Default 128.</summary>
    public int Width { get; set; } = 128;

    /// <summary>Dropout on embeddings, attention and residual paths. Default 0, as the reference's priors.</summary>
    public double Dropout { get; set; }

    /// <summary>
    /// Side, in tokens, of the square window the prior models; 0 (default): the whole token grid. Token grids larger
    /// than the window are learnt as random Window×Window blocks (an image condition's grid cut at the same place), as
    /// the reference learns high-resolution images, and the fitted prior generates and scores whole grids of the
    /// training size, or larger, with the sliding window. A side larger than the grid's is the grid's.
    /// </summary>
    public int Window { get; set; }

    // ---- training -----------------------------------------------------------------------------

    /// <summary>Optimisation steps. Default 4000.</summary>
    public int Steps { get; set; } = 4000;

    /// <summary>Sequences per step. Default 32.</summary>
    public int BatchSize { get; set; } = 32;

    /// <summary>Peak AdamW learning rate (betas 0.9, 0.95); linear warm-up, then a cosine to a tenth. Default 1e-3.</summary>
    public double LearningRate { get; set; } = 1e-3;

    /// <summary>AdamW weight decay, applied to Linear weights only. Default 0.01.</summary>
    public double WeightDecay { get; set; } = 0.01;

    /// <summary>Gradient-norm clipping threshold (<see cref="double.PositiveInfinity"/>: no clipping). Default 1.</summary>
    public double GradientClip { get; set; } = 1.0;

    /// <summary>Probability of keeping each input image token; the rest are replaced by random codes
    /// during training (the reference's <c>pkeep</c>). Default 1 (off).</summary>
    public double PKeep { get; set; } = 1.0;

    /// <summary>Share of the rows held out to measure validation loss (where there are at least 20), unless
    /// <see cref="ValidationSet"/> is given. Default 0.05.</summary>
    public double ValidationFraction { get; set; } = 0.05;

    /// <summary>
    /// Held-out rows with the training data's columns (the tokens, and the label or condition tokens), whose loss every
    /// progress report gives (and early stopping follows) instead of that of a <see cref="ValidationFraction"/> of the
    /// training rows, which then all train; as ML.NET's <c>ImageClassificationTrainer.Options.ValidationSet</c>. Every
    /// report scores all of its rows (a windowed prior: as many windows of each as of a training canvas), so a few thousand
    /// grids are plenty. Null (default): the fraction. Not saved with the model.
    /// </summary>
    [JsonIgnore] public Microsoft.ML.IDataView? ValidationSet { get; set; }

    /// <summary>Stop when validation loss has not improved for this many progress reports, and keep the best
    /// weights. 0 disables early stopping. Default 5.</summary>
    public int EarlyStoppingPatience { get; set; } = 5;

    /// <summary>Stop after this much wall-clock time; the learning-rate schedule follows whichever of
    /// steps and time runs out first (its warm-up takes at most a tenth of the budget, so a budget shorter than the
    /// warm-up's steps still decays). Null (default): no limit.</summary>
    public TimeSpan? TimeBudget { get; set; }

    /// <summary>Random seed. Null (default): the MLContext's seed, if any.</summary>
    public int? Seed { get; set; }

    /// <summary>Torch device: "cpu" (default), "cuda" or "cuda:N".</summary>
    public string Device { get; set; } = "cpu";

    /// <summary>Arithmetic of training and inference: <see cref="Models.Precision.Float32"/> (default),
    /// <see cref="Models.Precision.TensorFloat32"/> or mixed <see cref="Models.Precision.BFloat16"/>. Parameters stay
    /// float32 in every mode; saved with the model.</summary>
    public Precision Precision { get; set; } = Precision.Float32;

    /// <summary>On a GPU, capture the training step once as a CUDA graph and replay it, so that the host's cost per
    /// libtorch call (a few thousand per step for the 24-layer prior) leaves the loop. Falls back to eager steps where
    /// libtorch's CUDA graph functions are missing or a capture fails. No effect on a CPU, nor on sampling
    /// (<see cref="Sampling.SamplingOptions.CudaGraphs"/>). Default true.</summary>
    public bool CudaGraphs { get; set; } = true;

    /// <summary>Rows per forward pass when the fitted prior scores or samples. Default 64. Cached sampling draws
    /// fewer at once where their key/value caches would take more than 2 GB.</summary>
    public int InferenceBatchSize { get; set; } = 64;

    /// <summary>Steps between progress reports (and validation). Default 100.</summary>
    public int ProgressInterval { get; set; } = 100;

    /// <summary>
    /// How a fit that continues a model (<c>Fit(data, initial)</c>) sets its learning rate. Default false: it warms up to
    /// the rate at which the model's last fit ended (or <see cref="LearningRate"/> where that is lower) and decays to a
    /// tenth of that (no lower than a hundredth of <see cref="LearningRate"/>), as suits a model trained to the end of
    /// its schedule or stopped part-way. True: to <see cref="LearningRate"/>, as a new fit does, as suits a model whose
    /// first fit was short.
    /// </summary>
    public bool RestartLearningRate { get; set; }

    /// <summary>Called every <see cref="ProgressInterval"/> steps and at the last step; <see cref="Training.PriorProgress.RequestStop"/> ends training early.</summary>
    [JsonIgnore] public Action<Training.PriorProgress>? Progress { get; set; }

    /// <summary>Cancels training (an <see cref="OperationCanceledException"/> is thrown).</summary>
    [JsonIgnore] public CancellationToken CancellationToken { get; set; }

    /// <summary>Ends training after the step in progress, as the time budget does: the fit reports, validates and returns
    /// the prior trained so far (the best weights, with early stopping; the sample's Ctrl+C). Set before the first step
    /// (while the rows are read), it abandons the fit with an <see cref="OperationCanceledException"/>, as there is no
    /// trained prior yet. <see cref="CancellationToken"/> abandons the fit at any time.</summary>
    [JsonIgnore] public CancellationToken StopToken { get; set; }

    /// <summary>
    /// Called with a copy of the prior trained so far every <see cref="CheckpointInterval"/> of training, between steps, so
    /// that a fit of hours can save itself as it goes: <c>options.Checkpoint = t => mlContext.Model.Save(t, data.Schema,
    /// "prior.zip")</c>. The copy holds the current weights (not the best ones that early stopping would keep) and the
    /// steps made, so that after a crash <c>Fit(data, loaded)</c> continues it for the steps that were left (Adam's moments
    /// are not in it: the learning rate warms up again, as for any continued fit). The copy is the callee's, on the CPU (so
    /// that a GPU needs no memory for it; saved, it loads onto the options' <see cref="Device"/>): training waits while the
    /// callback runs, and neither changes the other (a fit with checkpoints trains the model one without them does). An
    /// exception from the callback is logged as a warning and training goes on. Null (default): no checkpoints.
    /// </summary>
    [JsonIgnore] public Action<MLNet.PriorTransformer>? Checkpoint { get; set; }

    /// <summary>Training time between two calls of <see cref="Checkpoint"/> (the first comes this long after the first
    /// step). Default 30 minutes.</summary>
    public TimeSpan CheckpointInterval { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>A copy (callbacks included).</summary>
    public GptOptions Clone() => (GptOptions)MemberwiseClone();

    // What shapes the network and how it runs once fitted: a fit that continues a prior takes these from its options.
    private static readonly string[] ModelSettings = { nameof(Layers), nameof(Heads), nameof(Width), nameof(Window), nameof(InferenceBatchSize) };

    /// <summary>A copy whose network settings are <paramref name="trained"/>'s (a continued fit's options); logs each that
    /// these options set otherwise to <paramref name="log"/>.</summary>
    internal GptOptions WithArchitectureOf(GptOptions trained, Action<string> log)
    {
        var copy = Clone();
        Models.ModelSettings.Take(copy, trained, ModelSettings, log);
        return copy;
    }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first bad option.</summary>
    public void Validate()
    {
        void Require(bool ok, string name, string why) { if (!ok) throw new ArgumentException($"GptOptions.{name}: {why}", name); }
        Require(Layers > 0, nameof(Layers), "must be positive.");
        Require(Heads > 0 && Width % Heads == 0, nameof(Heads), $"must be positive and divide Width ({Width}).");
        Require(Width > 0, nameof(Width), "must be positive.");
        Require(Dropout is >= 0 and < 1, nameof(Dropout), "must be in [0, 1).");
        Require(Window >= 0, nameof(Window), "must be 0 (the whole grid) or a positive side in tokens.");
        Require(Steps > 0, nameof(Steps), "must be positive.");
        Require(BatchSize > 0, nameof(BatchSize), "must be positive.");
        Require(LearningRate > 0 && double.IsFinite(LearningRate), nameof(LearningRate), "must be a positive number.");
        Require(WeightDecay >= 0 && double.IsFinite(WeightDecay), nameof(WeightDecay), "must be a non-negative number.");
        Require(GradientClip > 0, nameof(GradientClip), "must be a positive norm (PositiveInfinity: no clipping).");
        Require(EarlyStoppingPatience >= 0, nameof(EarlyStoppingPatience), "must be 0 (no early stopping) or positive.");
        Require(PKeep is > 0 and <= 1, nameof(PKeep), "must be in (0, 1].");
        Require(ValidationFraction is >= 0 and < 1, nameof(ValidationFraction), "must be in [0, 1).");
        Require(InferenceBatchSize > 0, nameof(InferenceBatchSize), "must be positive.");
        Require(ProgressInterval > 0, nameof(ProgressInterval), "must be positive.");
        Require(CheckpointInterval > TimeSpan.Zero, nameof(CheckpointInterval), $"must be positive, got {CheckpointInterval}.");
        Require(Enum.IsDefined(Precision), nameof(Precision), $"unknown value {(int)Precision}.");
    }
}
