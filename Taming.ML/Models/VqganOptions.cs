using System.Text.Json.Serialization;

namespace Taming.ML.Models;

/// <summary>
/// Every knob of the VQGAN tokenizer in one place: architecture, quantizer, loss and training.
/// Names follow the reference (CompVis/taming-transformers). The defaults are sized for a 2-core CPU
/// and small images (32×32 → 8×8 tokens); the reference's ImageNet f16 model is
/// <see cref="ImageNetF16"/>.
/// </summary>
public sealed class VqganOptions
{
    // ---- architecture -------------------------------------------------------------------------

    /// <summary>Side of the square images the model is trained on, in pixels. Must be divisible by
    /// 2^(ChMult.Length−1). 0 (the default) takes it from the input column's image size.</summary>
    public int Resolution { get; set; }

    /// <summary>Image channels: 1 (grayscale) or 3 (RGB). 0 (the default) takes 3 for image columns and
    /// the first dimension of a pixel-vector column.</summary>
    public int Channels { get; set; }

    /// <summary>Base channel count of encoder and decoder (reference: <c>ch</c>). Default 32.</summary>
    public int Ch { get; set; } = 32;

    /// <summary>Channel multiplier per resolution level; each level after the first halves the resolution,
    /// so the token grid is Resolution / 2^(ChMult.Length−1) on a side (reference: <c>ch_mult</c>).
    /// Default [1, 2, 2]: a downsampling factor of 4.</summary>
    public int[] ChMult { get; set; } = { 1, 2, 2 };

    /// <summary>ResNet blocks per level in the encoder (the decoder has one more). Default 1.</summary>
    public int NumResBlocks { get; set; } = 1;

    /// <summary>Resolutions (in pixels of the feature map) at which attention blocks are inserted.
    /// Default empty: only the middle attention block.</summary>
    public int[] AttnResolutions { get; set; } = Array.Empty<int>();

    /// <summary>Put the reference's attention block in the middle of encoder and decoder. Default true. Without it
    /// (and without <see cref="AttnResolutions"/>) the tokenizer is fully convolutional, so a whole large image
    /// tokenizes and decodes as its crops do — what windowed, high-resolution generation wants.</summary>
    public bool MidAttention { get; set; } = true;

    /// <summary>Fewest channels in a group-norm group. The reference's group norms have 32 groups, 4 or more channels
    /// each at its widths (128 channels and up); narrower networks get fewer groups, so that no group holds a single
    /// channel. A one-channel group (instance normalisation) removes each channel's mean over the image, so colours come
    /// to depend on the image's extent: a tokenizer trained on small crops then shifts the colours of whole images
    /// (photos demo, 32-pixel crops: whole photos reconstructed at 12.6–17.9 dB with 1, 19.0–25.8 dB with 4; crops
    /// 26.2–26.7 dB). Default 4, which leaves the reference's configurations unchanged. Models saved before this
    /// option existed load with 1, as they were trained.</summary>
    public int GroupNormMinChannels { get; set; } = 4;

    /// <summary>Channels of the encoder output / decoder input (reference: <c>z_channels</c>). Default 64.</summary>
    public int ZChannels { get; set; } = 64;

    /// <summary>Dimension of the codebook vectors (reference: <c>embed_dim</c>). Default 8: low-dimensional
    /// lookup codes, which together with <see cref="L2NormalizeCodes"/> keep most codes in use.</summary>
    public int EmbedDim { get; set; } = 8;

    /// <summary>Number of codebook vectors (reference: <c>n_embed</c>). Default 512.</summary>
    public int CodebookSize { get; set; } = 512;

    /// <summary>Dropout inside ResNet blocks. Default 0.</summary>
    public double Dropout { get; set; }

    // ---- quantizer ----------------------------------------------------------------------------

    /// <summary>Commitment weight β in ‖sg[z]−z_q‖² + β‖z−sg[z_q]‖². Default 0.25.</summary>
    public double Beta { get; set; } = 0.25;

    /// <summary>Look up codes by cosine similarity (l2-normalised encoder outputs and codes), as ViT-VQGAN
    /// does. Default true; false gives the reference's Euclidean lookup.</summary>
    public bool L2NormalizeCodes { get; set; } = true;

    /// <summary>Re-seed a code from recent encoder outputs when no batch has used it for this many
    /// training steps. 0 disables restarts (the reference). Default 50.</summary>
    public int DeadCodeRestartSteps { get; set; } = 50;

    // ---- loss ---------------------------------------------------------------------------------

    /// <summary>Weight of the quantizer loss (reference: <c>codebook_weight</c>). Default 1.</summary>
    public double CodebookWeight { get; set; } = 1.0;

    /// <summary>Weight of the perceptual distance added to the L1 loss (reference: <c>perceptual_weight</c>, 1 with
    /// LPIPS). Above 0, training uses the distance given to the estimator, or else the shipped ResNet18 one
    /// (<see cref="Perceptual.ResNetPerceptualDistance"/>, which has no learned channel weights and so runs larger
    /// than LPIPS: 0.1 is a moderate setting). Default 0.1: it lowers rFID (MNIST: 50 → 28 at 0.1, 17 at 1) at some
    /// PSNR, and keeps textures where L1 and the GAN alone blur them or draw stripes (the photos demo's moss: rFID on
    /// crops 1,791 → 472). It costs a ResNet18 forward and backward pass per step; 0 trains on L1 and the GAN alone.</summary>
    public double PerceptualWeight { get; set; } = 0.1;

    /// <summary>Training step at which the discriminator and the GAN term start (reference: <c>disc_start</c>).
    /// Null (default): at 60% of training (of <see cref="Steps"/>, or of <see cref="TimeBudget"/> when that runs out
    /// first), so the autoencoder converges before the GAN sharpens it, but not before step 1,000: the reference trains
    /// its autoencoder for 30,000 steps or more first, and in runs of a few hundred steps the GAN (its discriminator
    /// starting untrained) costs more quality than it adds, so such runs train without it (the log says so). Negative:
    /// no GAN. A step number starts it there in any run.</summary>
    public int? DiscStart { get; set; }

    /// <summary>Multiplier of the adaptive GAN weight λ (reference: <c>disc_weight</c>). Default 0.8; 0 trains without
    /// the GAN and its discriminator.</summary>
    public double DiscWeight { get; set; } = 0.8;

    /// <summary>Convolution layers of the PatchGAN discriminator (reference: <c>disc_num_layers</c>). Default 2,
    /// which suits 32–64 pixel images; the reference uses 3 at 256 pixels. Smaller images take fewer: at most
    /// <see cref="MaxDiscLayers"/> of the resolution (1 at 8 pixels).</summary>
    public int DiscLayers { get; set; } = 2;

    /// <summary>Base channel count of the discriminator (reference: <c>disc_ndf</c>). Default 32.</summary>
    public int DiscChannels { get; set; } = 32;

    /// <summary>δ in λ = ‖∇L_rec‖ / (‖∇L_GAN‖ + δ). Default 1e-4 as the reference's code (the paper says 1e-6).</summary>
    public double AdaptiveWeightDelta { get; set; } = 1e-4;

    // ---- training -----------------------------------------------------------------------------

    /// <summary>Optimisation steps. Default 3000.</summary>
    public int Steps { get; set; } = 3000;

    /// <summary>Images per step. 0 (the default): 32 for images up to 128×128, proportionally fewer for larger ones (as
    /// many pixels per step, at least one). Training memory grows with the pixels per step: with the default widths
    /// and the perceptual term, 32 images of 256² took 20 GB on a CPU, 8 (the automatic size) 5.8 GB with the GAN's steps.</summary>
    public int BatchSize { get; set; }

    /// <summary>The batch size a fit uses: <see cref="BatchSize"/>, or the automatic one for <see cref="Resolution"/>.</summary>
    internal int TrainingBatchSize => BatchSize > 0 ? BatchSize : (int)Math.Clamp(32L * 128 * 128 / ((long)Resolution * Resolution), 1, 32);

    /// <summary>
    /// Where the training images are held. 0 (the default): in memory, as bytes, where they all fit in three quarters of
    /// the memory the process may use; otherwise streamed from the input (each pass decodes them again, on a thread of its
    /// own while training runs), with batches drawn from a shuffle pool of as many images as fit in a quarter of that
    /// memory, at most 20,000 (ML.NET's <c>ShuffleRows</c> pool). A positive number streams through a pool of that many
    /// images (at least one batch) whatever the set's size; an input no larger than the pool is held whole. A stream
    /// draws from a mixed subset rather than a full permutation of each epoch, so a larger pool shuffles better.
    /// </summary>
    public int ShufflePoolSize { get; set; }

    /// <summary>Peak Adam learning rate for both networks (betas 0.5, 0.9 as the reference); it decays along a
    /// cosine to a tenth by the last step. Default 5e-4.</summary>
    public double LearningRate { get; set; } = 5e-4;

    /// <summary>Stop training after this much wall-clock time even if <see cref="Steps"/> is not reached; the
    /// learning-rate schedule follows whichever runs out first (its warm-up takes at most a tenth of the budget, so a
    /// budget shorter than the warm-up's steps still decays). Null (default): no limit.</summary>
    public TimeSpan? TimeBudget { get; set; }

    /// <summary>Random seed for initialisation and batch order. Null (default): the MLContext's seed, if any.</summary>
    public int? Seed { get; set; }

    /// <summary>Torch device: "cpu" (default), "cuda" or "cuda:N".</summary>
    public string Device { get; set; } = "cpu";

    /// <summary>Arithmetic of training and inference: <see cref="Models.Precision.Float32"/> (default),
    /// <see cref="Models.Precision.TensorFloat32"/> or mixed <see cref="Models.Precision.BFloat16"/>. Parameters stay
    /// float32 in every mode; saved with the model.</summary>
    public Precision Precision { get; set; } = Precision.Float32;

    /// <summary>Run the encoder, decoder and discriminator channels-last (NHWC in memory, PyTorch's
    /// <c>channels_last</c>): true or false forces it. Null (default): channels-last on a CPU for networks with at least
    /// 128 channels in every group norm (<see cref="Ch"/> ≥ 128, as <see cref="ImageNetF16"/>), where oneDNN's
    /// convolutions gain from it, the standard layout for narrower networks; on a GPU, channels-last for inference
    /// (encoding, decoding, evaluation: 1.2–1.3× faster on an H200) and the standard layout for training (1.3–1.6×
    /// faster there). On a GPU, channels-last group norms are computed from their statistics by Taming.ML (libtorch's
    /// CUDA group norm returns the standard layout).
    /// The result is the same in either layout up to rounding.</summary>
    public bool? ChannelsLast { get; set; }

    /// <summary>On a GPU, capture the training iteration once as a CUDA graph and replay it (two graphs: before and after
    /// the discriminator starts), so that the host's cost per libtorch call (thousands per iteration) leaves the loop.
    /// Uses libtorch's exported CUDA graph functions and falls back to eager iterations where they are missing or a
    /// capture fails. No effect on a CPU. Default true.</summary>
    public bool CudaGraphs { get; set; } = true;

    /// <summary>Rows per forward pass when the fitted tokenizer (or its decoder) transforms images of the trained
    /// resolution; proportionally fewer, at least one, for larger images (whole photos, large canvases). Default 64.</summary>
    public int InferenceBatchSize { get; set; } = 64;

    /// <summary>Images of <paramref name="height"/>×<paramref name="width"/> pixels per inference batch: a batch's
    /// memory stays that of <see cref="InferenceBatchSize"/> images of the trained resolution.</summary>
    internal int InferenceRows(long height, long width) =>
        (int)Math.Clamp((long)InferenceBatchSize * Resolution * Resolution / (height * width), 1, int.MaxValue);

    /// <summary>
    /// How a fit that continues a model (<c>Fit(data, initial)</c>) sets its learning rate. Default false: it warms up to
    /// the rate at which the model's last fit ended (or <see cref="LearningRate"/> where that is lower) and decays to a
    /// tenth of that (no lower than a hundredth of <see cref="LearningRate"/>), as suits a model trained to the end of
    /// its schedule or stopped part-way. True: to <see cref="LearningRate"/>, as a new fit does, as suits a model whose
    /// first fit was short.
    /// </summary>
    public bool RestartLearningRate { get; set; }

    /// <summary>Steps between progress reports. Default 50.</summary>
    public int ProgressInterval { get; set; } = 50;

    /// <summary>
    /// Held-out images, with the training data's image column (as the tokenizer receives it: after the pipeline's stages
    /// before it, such as <c>CropAndResizeImages</c>). At every progress report the fit reconstructs the first
    /// <see cref="ValidationImages"/> of them and reports their L1 loss (<see cref="Training.VqganProgress.ValidationLoss"/>),
    /// which shows whether the tokenizer carries images it has not seen as well as its training images (a small set
    /// overfits). Null (default): none. As ML.NET's <c>ImageClassificationTrainer.Options.ValidationSet</c>; not saved
    /// with the model.
    /// </summary>
    [JsonIgnore] public Microsoft.ML.IDataView? ValidationSet { get; set; }

    /// <summary>How many of <see cref="ValidationSet"/>'s images (the first ones) each report reconstructs. Default 128, whose
    /// cost is within run-to-run noise (MNIST's digits, 300 steps on 2 CPU cores, reports every 50 steps: 93–96 s with them,
    /// 90–95 s without).</summary>
    public int ValidationImages { get; set; } = 128;

    /// <summary>Called every <see cref="ProgressInterval"/> steps and at the end; call
    /// <see cref="Training.VqganProgress.RequestStop"/> on the argument to end training early.</summary>
    [JsonIgnore] public Action<Training.VqganProgress>? Progress { get; set; }

    /// <summary>Cancels training (an <see cref="OperationCanceledException"/> is thrown).</summary>
    [JsonIgnore] public CancellationToken CancellationToken { get; set; }

    /// <summary>Ends training after the step in progress, as the time budget does: the fit returns the model trained so
    /// far (the sample's Ctrl+C). Set before the first step (while the images are read), it abandons the fit with an
    /// <see cref="OperationCanceledException"/>, as there is no trained model yet. <see cref="CancellationToken"/> abandons
    /// the fit at any time.</summary>
    [JsonIgnore] public CancellationToken StopToken { get; set; }

    /// <summary>
    /// Called with a copy of the tokenizer trained so far every <see cref="CheckpointInterval"/> of training, between steps,
    /// so that a fit of hours can save itself as it goes: <c>options.Checkpoint = t => mlContext.Model.Save(t, data.Schema,
    /// "tokenizer.zip")</c>. The copy holds the weights, the steps made and, once the GAN has trained, the discriminator, so
    /// that after a crash <c>Fit(data, loaded)</c> continues it for the steps that were left (Adam's moments are not in it:
    /// the learning rate warms up again, as for any continued fit). The copy is the callee's, on the CPU (so that a GPU
    /// needs no memory for it; saved, it loads onto the options' <see cref="Device"/>): training waits while the callback
    /// runs, and neither changes the other (a fit with checkpoints trains the model one without them does). An
    /// exception from the callback is logged as a warning and training goes on. Null (default): no checkpoints.
    /// </summary>
    [JsonIgnore] public Action<MLNet.VqganTokenizerTransformer>? Checkpoint { get; set; }

    /// <summary>Training time between two calls of <see cref="Checkpoint"/> (the first comes this long after the first
    /// step). Default 30 minutes.</summary>
    public TimeSpan CheckpointInterval { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>Side of the token grid: Resolution / 2^(ChMult.Length−1).</summary>
    [JsonIgnore] public int TokenGridSide => Resolution >> (ChMult.Length - 1);

    /// <summary>The reference's ImageNet f16 configuration (256×256 RGB, 16×16 tokens, 1024 codes), transforming 16 images per batch.</summary>
    public static VqganOptions ImageNetF16() => new()
    {
        Resolution = 256, Channels = 3, Ch = 128, ChMult = new[] { 1, 1, 2, 2, 4 }, NumResBlocks = 2,
        AttnResolutions = new[] { 16 }, ZChannels = 256, EmbedDim = 256, CodebookSize = 1024,
        L2NormalizeCodes = false, DeadCodeRestartSteps = 0, DiscLayers = 3, DiscChannels = 64, BatchSize = 8,
        InferenceBatchSize = 16, // 256² images at these widths: about 5 GB of activations per batch on a CPU
    };

    // What shapes the network and its discriminator, and how it transforms once fitted: a fit that continues a model
    // takes these from the model's options.
    private static readonly string[] ModelSettings =
    {
        nameof(Resolution), nameof(Channels), nameof(Ch), nameof(ChMult), nameof(NumResBlocks), nameof(AttnResolutions),
        nameof(MidAttention), nameof(GroupNormMinChannels), nameof(ZChannels), nameof(EmbedDim), nameof(CodebookSize),
        nameof(L2NormalizeCodes), nameof(DiscLayers), nameof(DiscChannels), nameof(InferenceBatchSize),
    };

    /// <summary>A copy whose network settings are <paramref name="trained"/>'s (a continued fit's options); logs each that
    /// these options set otherwise to <paramref name="log"/>.</summary>
    internal VqganOptions WithArchitectureOf(VqganOptions trained, Action<string> log)
    {
        var copy = Clone();
        Models.ModelSettings.Take(copy, trained, ModelSettings, log);
        return copy;
    }

    /// <summary>A copy (callbacks included).</summary>
    public VqganOptions Clone()
    {
        var copy = (VqganOptions)MemberwiseClone();
        copy.ChMult = (int[])ChMult.Clone();
        copy.AttnResolutions = (int[])AttnResolutions.Clone();
        return copy;
    }

    /// <summary>Checks that the options describe a buildable model; throws <see cref="ArgumentException"/> naming the bad option.</summary>
    public void Validate()
    {
        void Require(bool ok, string name, string why) { if (!ok) throw new ArgumentException($"VqganOptions.{name}: {why}", name); }
        Require(Channels is 1 or 3, nameof(Channels), $"must be 1 or 3, got {Channels}.");
        Require(ChMult.Length >= 1 && ChMult.All(m => m > 0), nameof(ChMult), "needs at least one positive multiplier.");
        int factor = 1 << (ChMult.Length - 1);
        Require(Resolution > 0 && Resolution % factor == 0, nameof(Resolution),
            $"{Resolution} must be positive and divisible by 2^(ChMult.Length-1) = {factor}" +
            (Resolution > factor ? $" ({Resolution / factor * factor} or {(Resolution / factor + 1) * factor})." : "."));
        Require(Ch > 0, nameof(Ch), "must be positive.");
        Require(GroupNormMinChannels > 0, nameof(GroupNormMinChannels), "must be positive.");
        Require(NumResBlocks > 0, nameof(NumResBlocks), "must be positive.");
        Require(ZChannels > 0, nameof(ZChannels), "must be positive.");
        Require(EmbedDim > 0, nameof(EmbedDim), "must be positive.");
        Require(CodebookSize >= 2, nameof(CodebookSize), "must be at least 2.");
        Require(Dropout is >= 0 and < 1, nameof(Dropout), "must be in [0, 1).");
        Require(Beta >= 0 && double.IsFinite(Beta), nameof(Beta), "must be a non-negative number.");
        Require(DeadCodeRestartSteps >= 0, nameof(DeadCodeRestartSteps), "must be 0 (no restarts) or positive.");
        // A negative or non-finite loss weight trains towards nonsense (a negative GAN weight helps the discriminator).
        Require(CodebookWeight >= 0 && double.IsFinite(CodebookWeight), nameof(CodebookWeight), "must be a non-negative number.");
        Require(PerceptualWeight >= 0 && double.IsFinite(PerceptualWeight), nameof(PerceptualWeight), "must be a non-negative number (0 leaves the term out).");
        Require(DiscWeight >= 0 && double.IsFinite(DiscWeight), nameof(DiscWeight), "must be a non-negative number (0 leaves the GAN out).");
        Require(AdaptiveWeightDelta > 0 && double.IsFinite(AdaptiveWeightDelta), nameof(AdaptiveWeightDelta), "must be a positive number.");
        Require(DiscChannels > 0, nameof(DiscChannels), "must be positive.");
        Require(Steps > 0, nameof(Steps), "must be positive.");
        Require(BatchSize >= 0, nameof(BatchSize), "must be positive, or 0 for the automatic size.");
        Require(ShufflePoolSize >= 0, nameof(ShufflePoolSize), "must be 0 (automatic) or positive.");
        Require(InferenceBatchSize > 0, nameof(InferenceBatchSize), "must be positive.");
        Require(ProgressInterval > 0, nameof(ProgressInterval), "must be positive.");
        Require(CheckpointInterval > TimeSpan.Zero, nameof(CheckpointInterval), $"must be positive, got {CheckpointInterval}.");
        Require(ValidationImages > 0, nameof(ValidationImages), "must be positive.");
        Require(LearningRate > 0 && double.IsFinite(LearningRate), nameof(LearningRate), "must be a positive number.");
        Require(DiscLayers >= 1, nameof(DiscLayers), "must be at least 1.");
        Require(Enum.IsDefined(Precision), nameof(Precision), $"unknown value {(int)Precision}.");
        // Each layer halves the side, then two stride-1 4×4 convolutions take one pixel off each: a side below 3 after
        // the halvings leaves the patch map empty, which libtorch only reports once the GAN starts, deep into the fit.
        bool gan = DiscWeight > 0 && DiscStart is not < 0;
        int most = MaxDiscLayers(Resolution);
        Require(!gan || DiscLayers <= most, nameof(DiscLayers), most > 0
            ? $"{DiscLayers} layers shrink {Resolution}-pixel images to no patch; at most {most} fit (or DiscWeight = 0 leaves the GAN out)."
            : $"{Resolution}-pixel images are too small for the PatchGAN discriminator; DiscWeight = 0 leaves the GAN out.");
    }

    /// <summary>
    /// The most <see cref="DiscLayers"/> that leave images of <paramref name="resolution"/> pixels a side at least one
    /// patch of the PatchGAN discriminator (each layer halves the side; the last two convolutions take two pixels off):
    /// 1 at 8 pixels, 2 at 12 to 23, 3 at 24 to 47. 0 where none do (images under 6 pixels).
    /// </summary>
    public static int MaxDiscLayers(int resolution)
    {
        int layers = 0;
        while ((resolution >> (layers + 1)) >= 3) layers++;
        return layers;
    }
}
