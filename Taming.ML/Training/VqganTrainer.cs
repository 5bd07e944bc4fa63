using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;
using Taming.ML.Data;
using Taming.ML.Losses;
using Taming.ML.Perceptual;
using Taming.ML.Models;
using Taming.ML.Modules;
using Taming.ML.Quantization;

namespace Taming.ML.Training;

/// <summary>
/// Trains a <see cref="Vqgan"/> as the reference does: autoencoder step on L1 (+ perceptual) + quantizer loss
/// (+ λ·GAN after disc_start), then a discriminator step on the hinge loss; Adam (0.5, 0.9) for both.
/// </summary>
internal sealed class VqganTrainer
{
    private readonly VqganOptions o;
    private readonly Device device;
    private readonly IPerceptualDistance? perceptual;
    private readonly Action<string>? log;

    public VqganTrainer(VqganOptions options, Device device, IPerceptualDistance? perceptual = null, Action<string>? log = null)
    {
        options.Validate();
        o = options;
        this.device = device;
        this.perceptual = perceptual;
        this.log = log;
    }

    /// <summary>Trains a new model, or continues <paramref name="from"/> (its weights are copied, not changed): step numbers
    /// (<see cref="VqganOptions.DiscStart"/>, the default GAN start) then count on from its steps. Each progress report
    /// gives the L1 loss of <paramref name="validation"/>'s reconstructions where there are held-out images.
    /// <paramref name="checkpoint"/> gets a copy of the model (on the CPU) and its state every <see cref="VqganOptions.CheckpointInterval"/>.</summary>
    public (Vqgan Model, VqganTrainingState State) Train(ITrainingImages data, (Vqgan Model, VqganTrainingState State)? from = null,
        ImageSet? validation = null, Action<Vqgan, VqganTrainingState>? checkpoint = null)
    {
        if (data.Count == 0) throw new InvalidOperationException(TrainingImages.EmptyMessage);
        int seed = o.Seed ?? 0;
        random.manual_seed(seed);
        using var generator = new Generator((ulong)seed); // CPU draws: restarts do not depend on the device
        var rng = new Random(seed);

        // The shipped ResNet18 distance unless the caller brought one.
        using var shipped = o.PerceptualWeight > 0 && perceptual is null ? ResNetPerceptualDistance.Load(device) : null;
        var distance = o.PerceptualWeight > 0 ? perceptual ?? shipped : null;
        var model = new Vqgan(o);
        model.to(device).train();
        var start = from?.State ?? VqganTrainingState.Unknown;
        if (from is { } initial) model.CopyWeightsFrom(initial.Model);
        using var precision = MixedPrecision.Enter(o.Precision); // backward passes and the discriminator too
        // Training repeats the same convolution shapes thousands of times, so timing cuDNN's algorithms once per shape
        // pays: 4–8 % more bf16 training iterations per second on an H200 (none in float32, nor in inference).
        using var autotune = Native.CudnnAutotuner.On(device);
        var discriminator = new NLayerDiscriminator(o.Channels, o.DiscChannels, o.DiscLayers);
        discriminator.to(device).train();
        if (start.Discriminator is { } critic) discriminator.CopyWeightsFrom(critic);
        var schedule = LearningRateSchedule.For(o.LearningRate, Math.Min(100, o.Steps / 50), start.LearningRate, o.RestartLearningRate);
        if (from is not null)
            log?.Invoke($"Continuing a tokenizer trained for {start.Steps:N0} steps ({start.GanSteps:N0} with the GAN" +
                        (start.Discriminator is null ? "" : ", whose discriminator goes on training") +
                        $"), at {schedule.Describe()}.");
        using var optAe = new FlatAdam(new[] { (model.parameters(), 0.0) }, beta1: 0.5, beta2: 0.9, computeDtype: MixedPrecision.ComputeDtype);
        using var optD = new FlatAdam(new[] { (discriminator.parameters(), 0.0) }, beta1: 0.5, beta2: 0.9, computeDtype: MixedPrecision.ComputeDtype);
        using var computeCopies = MixedPrecision.Training(optAe.ComputeCopies, optD.ComputeCopies); // no per-step weight casts
        var lastLayer = MixedPrecision.Differentiated(model.LastLayerWeight); // G_L as the decoder's last layer uses it
        long batchSize = Math.Min(o.TrainingBatchSize, data.Count);
        log?.Invoke($"Training on {data.Description}, {batchSize} per step" +
                    (o.BatchSize == 0 ? " (automatic for the resolution; VqganOptions.BatchSize sets it)." : "."));
        if (device.type == DeviceType.CPU && Native.OneDnnCheck.Finding is { } finding)
            log?.Invoke($"CPU convolutions: {finding}.");
        if (device.type == DeviceType.CPU && Native.MallocTuning.Finding is { } heap)
            log?.Invoke($"malloc: {heap}.");
        using var iteration = new VqganTrainingStep(model, discriminator, optAe, optD, distance, lastLayer, o,
            new[] { batchSize, data.Channels, data.Height, data.Width }, device, log);
        // Counts and loss sums stay on the device: a step queues its work without waiting for the device to finish.
        using var usage = new CodebookUsage(o.CodebookSize, device);
        using var window = new WindowStats(device);

        StopRequest.ThrowIfBeforeTraining(o.StopToken, nameof(VqganOptions));
        var clock = Stopwatch.StartNew();
        var heartbeat = new Heartbeat(log, o.Steps, o.TimeBudget, o.ProgressInterval);
        var checkpoints = new Checkpoints(o.CheckpointInterval);
        int step = 0, ganSteps = 0;
        double rate = 0;
        while (step < o.Steps)
        {
            o.CancellationToken.ThrowIfCancellationRequested();
            double progress = TimeBudget.Progress(step, o.Steps, o.TimeBudget, clock.Elapsed);
            if (progress >= 1) break;
            optAe.LearningRate = optD.LearningRate = rate = schedule.At(progress, step);
            int total = start.Steps + step; // steps count on from the model a fit continues
            bool gan = o.DiscWeight > 0 && o.DiscStart switch
            {
                null => start.GanSteps > 0 || progress >= 0.6 && total >= DefaultDiscStartMinimum, < 0 => false, var first => total >= first,
            };
            ganSteps += gan ? 1 : 0;

            using (NewDisposeScope()) iteration.Input.copy_(data.Batch((int)batchSize, rng, device));
            iteration.Run(gan);
            step++;
            usage.Add(iteration.Indices, step);
            if (o.DeadCodeRestartSteps > 0 && step % 10 == 0)
            {
                var dead = usage.DeadCodes(step, o.DeadCodeRestartSteps);
                model.Quantizer.Restart(dead, iteration.LookupVectors, generator);
                usage.Revive(dead, step);
            }
            window.Add(batchSize, iteration.Losses, gan ? iteration.Lambda : null);

            // The last step reports too when the time budget ends the fit, so that its losses are shown and checked.
            bool stop = o.StopToken.IsCancellationRequested;
            bool last = stop || TimeBudget.Progress(step, o.Steps, o.TimeBudget, clock.Elapsed) >= 1;
            bool reporting = step % o.ProgressInterval == 0 || last;
            heartbeat.Step(step, clock.Elapsed, reporting);
            if (reporting)
            {
                var report = window.Report(step, o, usage, rate, clock.Elapsed,
                    validation is null ? double.NaN : ValidationLoss(model, validation, device, o.InferenceBatchSize));
                log?.Invoke(report.ToString());
                TrainingDivergedException.ThrowIfNotFinite("The tokenizer's training", step, nameof(VqganOptions), schedule.Peak,
                    ("L1 reconstruction loss", report.ReconstructionLoss), ("quantizer loss", report.QuantizerLoss),
                    ("generator loss", report.GeneratorLoss), ("discriminator loss", report.DiscriminatorLoss), ("λ", report.Lambda));
                o.Progress?.Invoke(report);
                if (stop) log?.Invoke($"Stopped at step {step:N0} on request (VqganOptions.StopToken).");
                if (report.StopRequested || stop) break;
            }
            if (checkpoint is not null && !last && checkpoints.Due(clock.Elapsed))
            {
                var began = clock.Elapsed;
                var criticCopy = start.GanSteps + ganSteps > 0
                    ? Checkpoints.Copy(() => new NLayerDiscriminator(o.Channels, o.DiscChannels, o.DiscLayers), discriminator) : null;
                checkpoint(Checkpoints.Copy(() => new Vqgan(o), model),
                    new VqganTrainingState(start.Steps + step, start.GanSteps + ganSteps, rate, criticCopy));
                checkpoints.Taken(clock.Elapsed);
                window.Exclude(clock.Elapsed - began); // the next report's images/s are training's
            }
        }
        var state = new VqganTrainingState(start.Steps + step, start.GanSteps + ganSteps, rate, null);
        if (state.GanSteps == 0 && o.DiscStart is null && o.DiscWeight > 0)
            log?.Invoke($"The GAN did not start: by default it starts at 60 % of training once {DefaultDiscStartMinimum:N0} steps are made, " +
                        $"and {(from is null ? "this run" : "the model")} made {state.Steps:N0}. Set VqganOptions.DiscStart to start it at a given step.");
        model.eval();
        // The discriminator stays with the model once it has trained, for a fit that continues the GAN phase.
        discriminator.eval();
        if (state.GanSteps > 0) return (model, state with { Discriminator = discriminator });
        discriminator.Dispose();
        return (model, state);
    }

    /// <summary>
    /// The earliest step at which the default schedule starts the GAN. The reference trains its autoencoder for 30,000 steps
    /// or more first; in runs of a few hundred steps, the discriminator (untrained when it starts) costs more than it adds
    /// (64×64 photos, 76 steps in 3 CPU minutes: held-out 21.1 dB and rKID 107 with the GAN from step 46, 23.3 dB and 74 without).
    /// </summary>
    internal const int DefaultDiscStartMinimum = 1000;

    /// <summary>
    /// The mean absolute error of the held-out images' reconstructions (on [−1, 1] pixels, as the training L1), computed as
    /// the fitted tokenizer will run: without gradients, in inference mode. Training resumes in training mode.
    /// </summary>
    private static double ValidationLoss(Vqgan model, ImageSet images, Device device, int batchSize)
    {
        model.eval();
        try
        {
            using var noGrad = no_grad();
            double sum = 0;
            for (int first = 0; first < images.Count; first += batchSize)
            {
                using var scope = NewDisposeScope();
                var x = images.Batch(Enumerable.Range(first, Math.Min(batchSize, images.Count - first)).ToArray(), device);
                sum += (model.forward(x).Reconstruction - x).abs().sum().to(ScalarType.Float64).item<double>();
            }
            return sum / ((double)images.Count * images.PixelsPerImage);
        }
        finally
        {
            model.train();
        }
    }

    /// <summary>Loss sums (on the device) and timing since the last report.</summary>
    private sealed class WindowStats(Device device) : IDisposable
    {
        private readonly Tensor sums = zeros(new long[] { 4 }, device: device).DetachFromDisposeScope(); // rec, vq, g, d
        private readonly Tensor lambda = zeros(new long[] { 1 }, device: device).DetachFromDisposeScope();
        private int steps, images;
        private TimeSpan start;

        public void Add(long batch, Tensor losses, Tensor? lambda)
        {
            sums.add_(losses);
            if (lambda is not null) this.lambda.copy_(lambda);
            steps++;
            images += (int)batch;
        }

        /// <summary>Leaves <paramref name="pause"/> (a checkpoint) out of the rate of the next report.</summary>
        public void Exclude(TimeSpan pause) => start += pause;

        public VqganProgress Report(int step, VqganOptions o, CodebookUsage usage, double learningRate, TimeSpan elapsed, double validationLoss)
        {
            var (use, ppl) = usage.TakeWindow();
            var mean = sums.cpu().data<float>().Select(v => v / (double)Math.Max(1, steps)).ToArray();
            double seconds = Math.Max(1e-9, (elapsed - start).TotalSeconds);
            var report = new VqganProgress
            {
                Step = step, TotalSteps = o.Steps,
                ReconstructionLoss = mean[0], ValidationLoss = validationLoss, QuantizerLoss = mean[1], GeneratorLoss = mean[2], DiscriminatorLoss = mean[3],
                Lambda = lambda.cpu().item<float>(), CodebookUsage = use, Perplexity = ppl, LearningRate = learningRate, ImagesPerSecond = images / seconds,
                Elapsed = elapsed, Eta = TimeBudget.Eta(step, o.Steps, o.TimeBudget, elapsed),
            };
            sums.zero_();
            steps = images = 0;
            start = elapsed;
            return report;
        }

        public void Dispose()
        {
            sums.Dispose();
            lambda.Dispose();
        }
    }
}
