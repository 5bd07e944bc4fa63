using TorchSharp;
using static TorchSharp.torch;
using Taming.ML.Losses;
using Taming.ML.Models;
using Taming.ML.Modules;

namespace Taming.ML.Training;

/// <summary>
/// One VQGAN training iteration over fixed buffers: the autoencoder step (L1 + perceptual + quantizer loss, + λ·GAN)
/// and then the discriminator step, reading the batch from <see cref="Input"/> and writing what the trainer reports
/// and restarts dead codes from into <see cref="Losses"/>, <see cref="Lambda"/>, <see cref="Indices"/> and
/// <see cref="LookupVectors"/>. Nothing in it reads a host value that changes between iterations (the optimizers keep
/// their learning rates and step counts on the device), so on a GPU it runs as a CUDA graph (<see cref="CapturedIteration"/>):
/// before the discriminator starts and after are two graphs.
/// </summary>
internal sealed class VqganTrainingStep : IDisposable
{
    private readonly Vqgan model;
    private readonly NLayerDiscriminator discriminator;
    private readonly FlatAdam optAe, optD;
    private readonly IPerceptualDistance? distance;
    private readonly Tensor lastLayer;
    private readonly VqganOptions o;
    private readonly CapturedIteration captured;

    /// <param name="model">The autoencoder, in training mode.</param>
    /// <param name="discriminator">The discriminator, in training mode.</param>
    /// <param name="optAe">The autoencoder's optimizer.</param>
    /// <param name="optD">The discriminator's optimizer.</param>
    /// <param name="distance">The perceptual distance, or null without the perceptual term.</param>
    /// <param name="lastLayer">G_L as the decoder's last layer differentiates it (its bf16 copy in bf16 training).</param>
    /// <param name="options">Loss weights; <see cref="VqganOptions.CudaGraphs"/>.</param>
    /// <param name="batch">The (b, c, h, w) shape of every batch.</param>
    /// <param name="device">The training device.</param>
    /// <param name="log">Hears whether the iteration was captured.</param>
    public VqganTrainingStep(Vqgan model, NLayerDiscriminator discriminator, FlatAdam optAe, FlatAdam optD,
        IPerceptualDistance? distance, Tensor lastLayer, VqganOptions options, long[] batch, Device device, Action<string>? log = null)
    {
        (this.model, this.discriminator, this.optAe, this.optD, this.distance, this.lastLayer, o) =
            (model, discriminator, optAe, optD, distance, lastLayer, options);
        captured = new CapturedIteration("The training iteration", options.CudaGraphs, device, log);
        int downsampling = options.ChMult.Length - 1;
        long gridHeight = batch[2] >> downsampling, gridWidth = batch[3] >> downsampling;
        Input = model.InLayout(zeros(batch, device: device)).DetachFromDisposeScope();
        Losses = zeros(new long[] { 4 }, device: device).DetachFromDisposeScope();
        Lambda = zeros(new long[] { 1 }, device: device).DetachFromDisposeScope();
        Indices = zeros(new[] { batch[0], gridHeight, gridWidth }, ScalarType.Int64, device).DetachFromDisposeScope();
        LookupVectors = zeros(new[] { batch[0] * gridHeight * gridWidth, (long)options.EmbedDim }, device: device).DetachFromDisposeScope();
    }

    /// <summary>The batch the next iteration trains on, in [−1, 1] (copy into it).</summary>
    public Tensor Input { get; }

    /// <summary>The last iteration's L1 reconstruction, quantizer, generator and discriminator losses (the last two 0 before the GAN starts).</summary>
    public Tensor Losses { get; }

    /// <summary>The last iteration's disc_weight · λ (as of the last iteration with the GAN).</summary>
    public Tensor Lambda { get; }

    /// <summary>The last iteration's codebook ids (b, h, w).</summary>
    public Tensor Indices { get; }

    /// <summary>The last iteration's lookup vectors (b·h·w, e), to re-seed dead codes from (kept only when restarts are on).</summary>
    public Tensor LookupVectors { get; }

    /// <summary>Trains on <see cref="Input"/> once, with the GAN terms when <paramref name="gan"/>.</summary>
    public void Run(bool gan) => captured.Run(() => Iteration(gan), gan ? " with the GAN" : "");

    private void Iteration(bool gan)
    {
        using var scope = NewDisposeScope();
        var x = Input;
        var q = model.Encode(x);
        var xrec = model.Decode(q.Quantized);
        var rec = (x - xrec).abs().mean();
        var nll = distance is null ? rec : rec + o.PerceptualWeight * distance.Distance(x, xrec).mean();
        var vq = o.CodebookWeight * q.Loss;
        Tensor? gLoss = null, dLoss = null, lambda = null;
        optAe.ZeroGrad();
        if (gan)
        {
            gLoss = GanLosses.Generator(discriminator.forward(xrec));
            lambda = GanLosses.BackwardWithAdaptiveWeight(xrec, nll, gLoss, vq, lastLayer, o.AdaptiveWeightDelta, o.DiscWeight);
        }
        else (nll + vq).backward();
        optAe.Step();
        if (gan)
        {
            dLoss = GanLosses.DiscriminatorHinge(discriminator.forward(x.detach()), discriminator.forward(xrec.detach()));
            optD.ZeroGrad();
            dLoss.backward();
            optD.Step();
        }

        using (no_grad())
        {
            var zero = zeros_like(rec);
            Losses.copy_(stack(new[] { rec, q.Loss, gLoss ?? zero, dLoss ?? zero }));
            if (lambda is not null) Lambda.copy_(lambda.reshape(1));
            Indices.copy_(q.Indices);
            if (o.DeadCodeRestartSteps > 0) LookupVectors.copy_(q.Inputs); // only restarts read them
        }
    }

    public void Dispose()
    {
        captured.Dispose();
        foreach (var t in new[] { Input, Losses, Lambda, Indices, LookupVectors }) t.Dispose();
    }
}
