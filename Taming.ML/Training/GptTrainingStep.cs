using static TorchSharp.torch;
using Taming.ML.Models;

namespace Taming.ML.Training;

/// <summary>
/// One prior training step over fixed buffers: next-token cross-entropy on the image tokens of <see cref="Tokens"/>
/// (with pkeep corruption of the inputs when <see cref="GptOptions.PKeep"/> &lt; 1), backward, gradient clipping and
/// the AdamW step, adding the loss to <see cref="LossSum"/>. It reads no host value that changes between steps (the
/// optimizer keeps its learning rate and step count on the device; corruption draws on the device), so on a GPU it
/// runs as a CUDA graph (<see cref="CapturedIteration"/>).
/// </summary>
internal sealed class GptTrainingStep : IDisposable
{
    private readonly Gpt model;
    private readonly FlatAdam optimizer;
    private readonly GptOptions o;
    private readonly CapturedIteration captured;

    /// <param name="model">The prior, in training mode.</param>
    /// <param name="optimizer">Its optimizer.</param>
    /// <param name="options">PKeep, GradientClip; <see cref="GptOptions.CudaGraphs"/>.</param>
    /// <param name="batch">Sequences per step.</param>
    /// <param name="device">The training device.</param>
    /// <param name="log">Hears whether the step was captured.</param>
    public GptTrainingStep(Gpt model, FlatAdam optimizer, GptOptions options, long batch, Device device, Action<string>? log = null)
    {
        (this.model, this.optimizer, o) = (model, optimizer, options);
        captured = new CapturedIteration("The prior's training step", options.CudaGraphs, device, log);
        var layout = model.Layout;
        Tokens = zeros(new[] { batch, (long)layout.PrefixLength + layout.ImageLength }, ScalarType.Int64, device).DetachFromDisposeScope();
        LossSum = zeros(1, device: device).DetachFromDisposeScope();
    }

    /// <summary>The sequences (prefix + image tokens, vocabulary ids) the next step trains on (copy into it).</summary>
    public Tensor Tokens { get; }

    /// <summary>The sum of the steps' mean losses (nats per token) since it was last zeroed.</summary>
    public Tensor LossSum { get; }

    /// <summary>Trains on <see cref="Tokens"/> once.</summary>
    public void Run() => captured.Run(Iteration);

    private void Iteration()
    {
        using var scope = NewDisposeScope();
        var loss = Loss(model, Tokens, o.PKeep);
        optimizer.ZeroGrad();
        loss.backward();
        optimizer.ClipGradNorm(o.GradientClip);
        optimizer.Step();
        using (no_grad()) LossSum.add_(loss);
    }

    /// <summary>Mean cross-entropy (nats) of the image tokens of <paramref name="sequences"/>; with
    /// <paramref name="pKeep"/> &lt; 1 the inputs keep each image token with that probability and take a random code otherwise.</summary>
    public static Tensor Loss(Gpt model, Tensor sequences, double pKeep)
    {
        var layout = model.Layout;
        int p = layout.PrefixLength, n = layout.ImageLength;
        Tensor? input = null;
        if (pKeep < 1)
        {
            // pkeep: replace a share of the image tokens (never the prefix) by random codes.
            var image = sequences.narrow(1, p, n - 1);
            var keep = rand(image.shape, device: sequences.device) < pKeep;
            var noise = randint(layout.CodebookSize, image.shape, device: sequences.device);
            input = cat(new[] { sequences.narrow(1, 0, p), where(keep, image, noise) }, 1);
        }
        return model.ImageTokenNll(sequences, input).mean();
    }

    public void Dispose()
    {
        captured.Dispose();
        Tokens.Dispose();
        LossSum.Dispose();
    }
}
