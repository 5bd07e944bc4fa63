using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;
using Taming.ML.Models;

namespace Taming.ML.Training;

/// <summary>
/// Fits a <see cref="Gpt"/> on token sequences (prefix + image tokens) by next-token cross-entropy on the image
/// tokens: AdamW (0.9, 0.95) with weight decay on Linear weights only, warm-up then cosine decay, gradient
/// clipping, optional pkeep corruption, validation split with early stopping that keeps the best weights.
/// </summary>
internal sealed class GptTrainer
{
    private readonly GptOptions o;
    private readonly PriorLayout layout;
    private readonly Device device;
    private readonly Action<string>? log;

    public GptTrainer(GptOptions options, PriorLayout layout, Device device, Action<string>? log = null)
    {
        options.Validate();
        layout.Validate();
        o = options;
        this.layout = layout;
        this.device = device;
        this.log = log;
    }

    /// <summary>
    /// Trains on sequences of vocabulary ids, each PrefixLength + ImageLength long; for a layout with a larger canvas,
    /// on canvas sequences (<see cref="TokenWindows"/>), of which every step sees random windows.
    /// </summary>
    /// <param name="sequences">The training rows.</param>
    /// <param name="from">A prior to continue (its weights are copied, not changed), or null for a new one.</param>
    /// <param name="checkpoint">Gets a copy of the prior (its current weights, on the CPU) and its state every <see cref="GptOptions.CheckpointInterval"/>.</param>
    /// <param name="heldOut">Held-out rows to validate on (<see cref="GptOptions.ValidationSet"/>), or null to hold out
    /// <see cref="GptOptions.ValidationFraction"/> of <paramref name="sequences"/>.</param>
    public (Gpt Model, PriorTrainingState State) Train(IReadOnlyList<long[]> sequences, (Gpt Model, PriorTrainingState State)? from = null,
        Action<Gpt, PriorTrainingState>? checkpoint = null, IReadOnlyList<long[]>? heldOut = null)
    {
        if (sequences.Count == 0) throw new InvalidOperationException("The training data is empty: the prior needs at least one token grid.");
        int seed = o.Seed ?? 0;
        random.manual_seed(seed);
        var rng = new Random(seed);
        var order = Enumerable.Range(0, sequences.Count).ToArray();
        rng.Shuffle(order);
        int validationCount = heldOut is null && o.ValidationFraction > 0 && sequences.Count >= 20 ? Math.Max(1, (int)(sequences.Count * o.ValidationFraction)) : 0;
        var windows = new TokenWindows(layout);
        // Held-out canvases are judged on windows drawn once, so that validation losses compare across reports.
        var validationRng = new Random(seed + 1);
        var validation = (heldOut ?? order.Take(validationCount).Select(i => sequences[i]))
            .SelectMany(s => Enumerable.Range(0, windows.PerCanvas).Select(_ => windows.Draw(s, validationRng))).ToList();
        var train = order.Skip(validationCount).Select(i => sequences[i]).ToList();

        var model = new Gpt(o, layout);
        model.to(device).train();
        var start = from?.State ?? PriorTrainingState.Unknown;
        var schedule = LearningRateSchedule.For(o.LearningRate, Math.Min(200, Math.Max(1, o.Steps / 20)), start.LearningRate, o.RestartLearningRate);
        if (from is { } initial)
        {
            model.CopyWeightsFrom(initial.Model);
            log?.Invoke($"Continuing a prior trained for {start.Steps:N0} steps, at {schedule.Describe()}.");
        }
        using var precision = Modules.MixedPrecision.Enter(o.Precision); // backward passes too
        var (decay, noDecay) = model.ParameterGroups();
        using var optimizer = new FlatAdam(new[] { (decay.AsEnumerable(), o.WeightDecay), (noDecay, 0.0) }, beta1: 0.9, beta2: 0.95,
            computeDtype: Modules.MixedPrecision.ComputeDtype);
        using var computeCopies = Modules.MixedPrecision.Training(optimizer.ComputeCopies); // no per-step weight casts
        int batchSize = Math.Min(o.BatchSize, train.Count);
        // The training loss is summed on the device and read at reports: a step queues its work without waiting.
        using var iteration = new GptTrainingStep(model, optimizer, o, batchSize, device, log);

        StopRequest.ThrowIfBeforeTraining(o.StopToken, nameof(GptOptions));
        var clock = Stopwatch.StartNew();
        var heartbeat = new Heartbeat(log, o.Steps, o.TimeBudget, o.ProgressInterval);
        var checkpoints = new Checkpoints(o.CheckpointInterval);
        int step = 0, batchStart = train.Count, reportsWithoutGain = 0, windowSteps = 0, bestStep = 0;
        double best = double.PositiveInfinity;
        long tokens = 0;
        double rate = 0;
        TimeSpan windowStart = TimeSpan.Zero;
        Dictionary<string, Tensor>? bestWeights = null;
        while (step < o.Steps)
        {
            o.CancellationToken.ThrowIfCancellationRequested();
            double progress = TimeBudget.Progress(step, o.Steps, o.TimeBudget, clock.Elapsed);
            if (progress >= 1) break;
            optimizer.LearningRate = rate = schedule.At(progress, step);

            var batch = new List<long[]>(batchSize);
            for (int i = 0; i < batchSize; i++)
            {
                if (batchStart == train.Count) { Shuffle(train, rng); batchStart = 0; }
                batch.Add(windows.Draw(train[batchStart++], rng));
            }
            using (NewDisposeScope()) iteration.Tokens.copy_(Upload(batch));
            iteration.Run();
            windowSteps++;
            step++;
            tokens += batchSize * (long)layout.ImageLength;

            // The last step reports too when the time budget ends the fit, so that its losses are shown and checked.
            bool stop = o.StopToken.IsCancellationRequested;
            bool last = stop || TimeBudget.Progress(step, o.Steps, o.TimeBudget, clock.Elapsed) >= 1;
            bool reporting = step % o.ProgressInterval == 0 || last;
            heartbeat.Step(step, clock.Elapsed, reporting);
            if (reporting)
            {
                double trainLoss = iteration.LossSum.item<float>() / windowSteps;
                double validationLoss = validation.Count > 0 ? Evaluate(model, validation) : double.NaN;
                TrainingDivergedException.ThrowIfNotFinite("The prior's training", step, nameof(GptOptions), schedule.Peak, ("training loss", trainLoss),
                    ("validation loss", validation.Count > 0 ? validationLoss : 0));
                double tracked = validation.Count > 0 ? validationLoss : trainLoss;
                if (tracked < best - 1e-4)
                {
                    best = tracked;
                    bestStep = step;
                    reportsWithoutGain = 0;
                    if (o.EarlyStoppingPatience > 0 && validation.Count > 0) bestWeights = Snapshot(model, bestWeights);
                }
                else reportsWithoutGain++;
                var elapsed = clock.Elapsed;
                var report = new PriorProgress
                {
                    Step = step, TotalSteps = o.Steps, TrainLoss = trainLoss, ValidationLoss = validationLoss,
                    BitsPerToken = tracked / Math.Log(2), LearningRate = rate, TokensPerSecond = tokens / Math.Max(1e-9, (elapsed - windowStart).TotalSeconds),
                    Elapsed = elapsed, Eta = TimeBudget.Eta(step, o.Steps, o.TimeBudget, elapsed),
                };
                log?.Invoke(report.ToString());
                o.Progress?.Invoke(report);
                iteration.LossSum.zero_();
                windowSteps = 0;
                tokens = 0;
                windowStart = elapsed;
                if (stop) log?.Invoke($"Stopped at step {step:N0} on request (GptOptions.StopToken).");
                if (report.StopRequested || stop) break;
                if (o.EarlyStoppingPatience > 0 && validation.Count > 0 && reportsWithoutGain >= o.EarlyStoppingPatience)
                {
                    log?.Invoke($"Validation loss has not improved for {reportsWithoutGain} reports: stopping early.");
                    break;
                }
            }
            if (checkpoint is not null && !last && checkpoints.Due(clock.Elapsed))
            {
                var began = clock.Elapsed;
                checkpoint(Checkpoints.Copy(() => new Gpt(o, layout), model), new PriorTrainingState(start.Steps + step, rate));
                checkpoints.Taken(clock.Elapsed);
                windowStart += clock.Elapsed - began; // the next report's tokens/s are training's
            }
        }
        if (bestWeights != null)
        {
            if (bestStep != step)
                log?.Invoke($"Kept the weights of step {bestStep:N0}, whose validation loss was the lowest ({best:F4}, {best / Math.Log(2):F3} bits/token).");
            using (no_grad())
                foreach (var (name, p) in model.named_parameters()) p.copy_(bestWeights[name]);
            foreach (var t in bestWeights.Values) t.Dispose();
        }
        model.eval();
        return (model, new PriorTrainingState(start.Steps + step, rate));
    }

    private static void Shuffle(List<long[]> list, Random rng)
    {
        for (int i = list.Count - 1; i > 0; i--)
        {
            int j = rng.Next(i + 1);
            (list[i], list[j]) = (list[j], list[i]);
        }
    }

    /// <summary>Sequences of vocabulary ids as one (b, length) tensor on the training device.</summary>
    private Tensor Upload(IReadOnlyList<long[]> batch) =>
        Native.TorchRuntime.Upload(tensor(batch.SelectMany(s => s).ToArray(), new long[] { batch.Count, batch[0].Length }), device);

    private double Evaluate(Gpt model, List<long[]> validation)
    {
        model.eval();
        double sum = 0;
        int count = 0;
        for (int start = 0; start < validation.Count; start += o.InferenceBatchSize)
        {
            var batch = validation.Skip(start).Take(o.InferenceBatchSize).ToList();
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            sum += GptTrainingStep.Loss(model, Upload(batch), pKeep: 1).item<float>() * batch.Count;
            count += batch.Count;
        }
        model.train();
        return sum / count;
    }

    private static Dictionary<string, Tensor> Snapshot(Gpt model, Dictionary<string, Tensor>? previous)
    {
        if (previous != null) foreach (var t in previous.Values) t.Dispose();
        using var _ = no_grad();
        return model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone().DetachFromDisposeScope());
    }
}
