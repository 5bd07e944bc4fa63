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

    public Vqgan Train(ImageSet data)
    {
        if (data.Count == 0) throw new InvalidOperationException("The training data has no images.");
        int seed = o.Seed ?? 0;
        random.manual_seed(seed);
        var generator = new Generator((ulong)seed, device);
        var rng = new Random(seed);

        // The shipped ResNet18 distance unless the caller brought one.
        using var shipped = o.PerceptualWeight > 0 && perceptual is null ? ResNetPerceptualDistance.Load(device) : null;
        var distance = o.PerceptualWeight > 0 ? perceptual ?? shipped : null;
        var model = new Vqgan(o);
        model.to(device).train();
        using var precision = MixedPrecision.Enter(o.Precision); // backward passes and the discriminator too
        var discriminator = new NLayerDiscriminator(o.Channels, o.DiscChannels, o.DiscLayers);
        discriminator.to(device).train();
        var optAe = optim.Adam(model.parameters(), o.LearningRate, beta1: 0.5, beta2: 0.9);
        var optD = optim.Adam(discriminator.parameters(), o.LearningRate, beta1: 0.5, beta2: 0.9);
        var usage = new CodebookUsage(o.CodebookSize);

        var order = new BatchOrder(data.Count, o.BatchSize, rng);
        var clock = Stopwatch.StartNew();
        var window = new WindowStats();
        double lastLambda = 0;
        int step = 0;
        while (step < o.Steps)
        {
            o.CancellationToken.ThrowIfCancellationRequested();
            double progress = Math.Max((double)step / o.Steps,
                o.TimeBudget is { } budget ? clock.Elapsed / budget : 0);
            if (progress >= 1) break;
            SetLearningRate(optAe, optD, LearningRateAt(progress, step));
            bool gan = o.DiscStart switch { null => progress >= 0.6, < 0 => false, var start => step >= start };

            using (var scope = NewDisposeScope())
            {
                var x = data.Batch(order.Next(), device);
                var q = model.Encode(x);
                var xrec = model.Decode(q.Quantized);
                var rec = (x - xrec).abs().mean();
                var nll = distance is null ? rec : rec + o.PerceptualWeight * distance.Distance(x, xrec).mean();
                var loss = nll + o.CodebookWeight * q.Loss;
                Tensor? gLoss = null, dLoss = null, lambda = null;
                if (gan)
                {
                    gLoss = GanLosses.Generator(discriminator.forward(xrec));
                    lambda = GanLosses.AdaptiveWeight(nll, gLoss, model.LastLayerWeight, o.AdaptiveWeightDelta) * o.DiscWeight;
                    loss = loss + lambda * gLoss;
                }
                optAe.zero_grad();
                loss.backward();
                optAe.step();
                if (gan)
                {
                    dLoss = GanLosses.DiscriminatorHinge(discriminator.forward(x.detach()), discriminator.forward(xrec.detach()));
                    optD.zero_grad();
                    dLoss.backward();
                    optD.step();
                }

                step++;
                var ids = q.Indices.cpu().data<long>().ToArray();
                usage.Add(ids, step);
                if (o.DeadCodeRestartSteps > 0 && step % 10 == 0)
                {
                    var dead = usage.DeadCodes(step, o.DeadCodeRestartSteps);
                    model.Quantizer.Restart(dead, q.Inputs, generator);
                    usage.Revive(dead, step);
                }
                window.Add(x.shape[0], rec.item<float>(), q.Loss.item<float>(), gLoss?.item<float>() ?? 0, dLoss?.item<float>() ?? 0);
                if (lambda is not null) lastLambda = lambda.item<float>();
            }

            bool last = step >= o.Steps;
            if (step % o.ProgressInterval == 0 || last)
            {
                var report = window.Report(step, o, usage, lastLambda, clock.Elapsed, progress);
                log?.Invoke(report.ToString());
                o.Progress?.Invoke(report);
                if (report.StopRequested) break;
            }
        }
        model.eval();
        discriminator.Dispose();
        optAe.Dispose();
        optD.Dispose();
        return model;
    }

    /// <summary>Linear warm-up over the first 2% (at most 100 steps), then a cosine from the peak to a tenth.</summary>
    private double LearningRateAt(double progress, int step)
    {
        int warmup = Math.Min(100, o.Steps / 50);
        if (step < warmup) return o.LearningRate * (step + 1) / warmup;
        return o.LearningRate * (0.1 + 0.9 * 0.5 * (1 + Math.Cos(Math.PI * Math.Min(1, progress))));
    }

    private static void SetLearningRate(optim.Optimizer a, optim.Optimizer b, double lr)
    {
        foreach (var g in a.ParamGroups) g.LearningRate = lr;
        foreach (var g in b.ParamGroups) g.LearningRate = lr;
    }

    /// <summary>Shuffled batches, reshuffled every epoch.</summary>
    private sealed class BatchOrder(int count, int batchSize, Random rng)
    {
        private int[] permutation = Array.Empty<int>();
        private int position;

        public int[] Next()
        {
            var batch = new int[Math.Min(batchSize, count)];
            for (int i = 0; i < batch.Length; i++)
            {
                if (position == permutation.Length)
                {
                    permutation = Enumerable.Range(0, count).ToArray();
                    rng.Shuffle(permutation);
                    position = 0;
                }
                batch[i] = permutation[position++];
            }
            return batch;
        }
    }

    /// <summary>Loss sums and timing since the last report.</summary>
    private sealed class WindowStats
    {
        private double rec, vq, g, d;
        private int steps, images;
        private TimeSpan start;

        public void Add(long batch, double rec, double vq, double g, double d)
        {
            this.rec += rec; this.vq += vq; this.g += g; this.d += d;
            steps++;
            images += (int)batch;
        }

        public VqganProgress Report(int step, VqganOptions o, CodebookUsage usage, double lambda, TimeSpan elapsed, double progress)
        {
            var (use, ppl) = usage.TakeWindow();
            double seconds = Math.Max(1e-9, (elapsed - start).TotalSeconds);
            double perStep = elapsed.TotalSeconds / Math.Max(1, step);
            double leftBySteps = perStep * (o.Steps - step);
            double leftByBudget = o.TimeBudget is { } b ? Math.Max(0, (b - elapsed).TotalSeconds) : double.MaxValue;
            var report = new VqganProgress
            {
                Step = step, TotalSteps = o.Steps,
                ReconstructionLoss = rec / Math.Max(1, steps), QuantizerLoss = vq / Math.Max(1, steps),
                GeneratorLoss = g / Math.Max(1, steps), DiscriminatorLoss = d / Math.Max(1, steps),
                Lambda = lambda, CodebookUsage = use, Perplexity = ppl, ImagesPerSecond = images / seconds,
                Elapsed = elapsed, Eta = TimeSpan.FromSeconds(Math.Min(leftBySteps, leftByBudget)),
            };
            rec = vq = g = d = 0;
            steps = images = 0;
            start = elapsed;
            return report;
        }
    }
}
