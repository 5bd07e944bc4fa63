using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Taming.ML.Training;

/// <summary>
/// Adam, with decoupled weight decay per group (AdamW), over parameters packed into one contiguous buffer per group.
/// Each parameter and its gradient become views of their group's buffers, so a step is a handful of whole-buffer
/// kernels instead of about eight per parameter (TorchSharp's optimizers loop over parameters): on a GPU a
/// VQGAN has ~300 parameter tensors, and their launches cost as much as a fifth of a training iteration.
/// Gradient clipping works on the device too (no host sync). The arithmetic per element is TorchSharp's Adam/AdamW.
/// </summary>
internal sealed class FlatAdam : IDisposable
{
    private sealed record Group(Tensor Values, Tensor Grads, Tensor ExpAvg, Tensor ExpAvgSq, double WeightDecay, IReadOnlyList<Parameter> Parameters);

    private readonly List<Group> groups = new();
    private readonly double beta1, beta2, eps;
    private long step;

    /// <param name="groups">Parameter groups and their decoupled weight decay (0: plain Adam).</param>
    /// <param name="beta1">Adam's β1.</param>
    /// <param name="beta2">Adam's β2.</param>
    /// <param name="eps">Adam's ε.</param>
    public FlatAdam(IEnumerable<(IEnumerable<Parameter> Parameters, double WeightDecay)> groups, double beta1, double beta2, double eps = 1e-8)
    {
        (this.beta1, this.beta2, this.eps) = (beta1, beta2, eps);
        using var _ = no_grad();
        foreach (var (parameters, weightDecay) in groups)
        {
            var list = parameters.ToList();
            if (list.Count == 0) continue;
            var (dtype, device) = (list[0].dtype, list[0].device);
            if (list.Any(p => p.dtype != dtype || p.device_type != device.type || p.device_index != device.index))
                throw new InvalidOperationException("FlatAdam: a group's parameters must share one dtype and device.");
            long total = list.Sum(p => p.numel());
            var values = empty(total, dtype, device);
            var grads = zeros(total, dtype, device);
            long offset = 0;
            foreach (var p in list)
            {
                long n = p.numel();
                var shape = p.shape;
                var view = values.narrow(0, offset, n).view(shape);
                view.copy_(p);
                p.set_(view);
                p.grad = grads.narrow(0, offset, n).view(shape); // backward accumulates into it in place
                offset += n;
            }
            this.groups.Add(new Group(values, grads, zeros_like(values), zeros_like(values), weightDecay, list));
        }
    }

    /// <summary>The learning rate of the next step.</summary>
    public double LearningRate { get; set; } = 1e-3;

    /// <summary>Zeroes every gradient (one kernel per group; the gradients stay views of the group's buffer).</summary>
    public void ZeroGrad()
    {
        foreach (var g in groups) g.Grads.zero_();
    }

    /// <summary>Scales the gradients so that their global 2-norm is at most <paramref name="maxNorm"/>, as
    /// clip_grad_norm_ does, without reading the norm back to the host.</summary>
    public void ClipGradNorm(double maxNorm)
    {
        using var scope = NewDisposeScope();
        var squares = groups.Select(g => g.Grads.square().sum()).ToArray();
        var norm = (squares.Length == 1 ? squares[0] : stack(squares).sum()).sqrt();
        var coefficient = (maxNorm / (norm + 1e-6)).clamp_max(1.0);
        foreach (var g in groups) g.Grads.mul_(coefficient);
    }

    /// <summary>One Adam step over every group.</summary>
    public void Step()
    {
        step++;
        double biasCorrection1 = 1 - Math.Pow(beta1, step), biasCorrection2 = 1 - Math.Pow(beta2, step);
        double stepSize = LearningRate / biasCorrection1;
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        foreach (var g in groups)
        {
            if (g.WeightDecay != 0) g.Values.mul_(1 - LearningRate * g.WeightDecay);
            g.ExpAvg.mul_(beta1).add_(g.Grads, alpha: 1 - beta1);
            g.ExpAvgSq.mul_(beta2).addcmul_(g.Grads, g.Grads, value: 1 - beta2);
            var denominator = (g.ExpAvgSq.sqrt() / Math.Sqrt(biasCorrection2)).add_(eps);
            g.Values.addcdiv_(g.ExpAvg, denominator, value: -stepSize);
        }
    }

    /// <summary>Frees the optimizer state and the gradients; the parameters keep their (packed) values.</summary>
    public void Dispose()
    {
        foreach (var g in groups)
        {
            foreach (var p in g.Parameters.Where(p => !p.IsInvalid)) p.grad = null; // a disposed module's are gone already
            g.Grads.Dispose();
            g.ExpAvg.Dispose();
            g.ExpAvgSq.Dispose();
            g.Values.Dispose();
        }
        groups.Clear();
    }
}
