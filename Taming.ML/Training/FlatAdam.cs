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
/// For mixed-precision training it can also keep a copy of every parameter in the compute dtype, packed the same way
/// (<see cref="ComputeCopies"/>): the layers use the copies instead of casting each weight (and its gradient back) at
/// every step, which in bf16 is four small kernels per weight and bias per step, the host's time for each showing when
/// the device is fast; a step adds the copies' gradients to the float32 ones and refreshes the copies, one kernel each.
/// The learning rate and the step count live on the device too, so a step reads no host value that changes between
/// steps and can be captured once as a CUDA graph and replayed (<see cref="VqganTrainingStep"/>).
/// </summary>
internal sealed class FlatAdam : IDisposable
{
    private sealed record Group(Tensor Values, Tensor Grads, Tensor ExpAvg, Tensor ExpAvgSq, double WeightDecay, IReadOnlyList<Parameter> Parameters,
        Tensor? Copies, Tensor? CopyGrads);

    private readonly List<Group> groups = new();
    private readonly Dictionary<Tensor, Tensor> copies = new(ReferenceEqualityComparer.Instance);
    private readonly double beta1, beta2, eps;
    // 0-dim float64 tensors on the parameters' device: the learning rate, and β1^t and β2^t for the bias corrections.
    private readonly Tensor learningRate, beta1Power, beta2Power;
    private double hostLearningRate = 1e-3;
    private bool copyGradsAdded;
    private const long Alignment = 32;

    /// <param name="groups">Parameter groups and their decoupled weight decay (0: plain Adam).</param>
    /// <param name="beta1">Adam's β1.</param>
    /// <param name="beta2">Adam's β2.</param>
    /// <param name="eps">Adam's ε.</param>
    /// <param name="computeDtype">When given, also keep a copy of the parameters in this dtype (<see cref="ComputeCopies"/>).</param>
    public FlatAdam(IEnumerable<(IEnumerable<Parameter> Parameters, double WeightDecay)> groups, double beta1, double beta2, double eps = 1e-8,
        ScalarType? computeDtype = null)
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
            // Each parameter starts on a 64-byte boundary (32 elements) even in bf16: cuDNN and oneDNN pick their
            // fastest kernels only for aligned tensors, and the packed weights are what the convolutions read.
            var offsets = new long[list.Count];
            long total = 0;
            for (int i = 0; i < list.Count; i++)
            {
                offsets[i] = total;
                total += (list[i].numel() + Alignment - 1) / Alignment * Alignment;
            }
            var values = zeros(total, dtype, device);
            var grads = zeros(total, dtype, device);
            for (int i = 0; i < list.Count; i++)
            {
                var p = list[i];
                var view = values.narrow(0, offsets[i], p.numel()).view(p.shape);
                view.copy_(p);
                p.set_(view);
                p.grad = grads.narrow(0, offsets[i], p.numel()).view(p.shape); // backward accumulates into it in place
            }
            Tensor? copyValues = null, copyGrads = null;
            if (computeDtype is { } d && d != dtype)
            {
                (copyValues, copyGrads) = (values.to(d), zeros(total, d, device));
                for (int i = 0; i < list.Count; i++)
                {
                    var p = list[i];
                    // A leaf of its own whose values and gradient are views of the packed copies, as the parameters are.
                    var copy = empty(0, d, device).requires_grad_();
                    copy.set_(copyValues.narrow(0, offsets[i], p.numel()).view(p.shape));
                    copy.grad = copyGrads.narrow(0, offsets[i], p.numel()).view(p.shape);
                    copies[p] = copy;
                }
            }
            this.groups.Add(new Group(values, grads, zeros_like(values), zeros_like(values), weightDecay, list, copyValues, copyGrads));
        }
        var scalarDevice = this.groups.Count > 0 ? this.groups[0].Values.device : CPU;
        learningRate = full(Array.Empty<long>(), hostLearningRate, ScalarType.Float64, scalarDevice);
        beta1Power = ones(Array.Empty<long>(), ScalarType.Float64, scalarDevice);
        beta2Power = ones(Array.Empty<long>(), ScalarType.Float64, scalarDevice);
    }

    /// <summary>Each parameter's copy in the compute dtype, a leaf whose gradient the next <see cref="ClipGradNorm"/> or
    /// <see cref="Step"/> adds to the parameter's; empty unless a compute dtype other than the parameters' was given.
    /// The copies hold the parameters' values as of the last step (or construction): changes made to a parameter
    /// elsewhere do not reach them.</summary>
    public IReadOnlyDictionary<Tensor, Tensor> ComputeCopies => copies;

    /// <summary>The learning rate of the next step (written to the device when it changes: a captured step reads it there).</summary>
    public double LearningRate
    {
        get => hostLearningRate;
        set
        {
            if (value == hostLearningRate) return;
            hostLearningRate = value;
            learningRate.fill_(value);
        }
    }

    /// <summary>Zeroes every gradient (one kernel per group; the gradients stay views of the group's buffer).</summary>
    public void ZeroGrad()
    {
        foreach (var g in groups)
        {
            g.Grads.zero_();
            g.CopyGrads?.zero_();
        }
        copyGradsAdded = false;
    }

    /// <summary>Adds the copies' gradients to the parameters' (once between <see cref="ZeroGrad"/> calls).</summary>
    private void AddCopyGrads()
    {
        if (copyGradsAdded) return;
        copyGradsAdded = true;
        using var _ = no_grad();
        foreach (var g in groups)
            if (g.CopyGrads is { } copyGrads) g.Grads.add_(copyGrads);
    }

    /// <summary>Scales the gradients so that their global 2-norm is at most <paramref name="maxNorm"/>, as
    /// clip_grad_norm_ does, without reading the norm back to the host.</summary>
    public void ClipGradNorm(double maxNorm)
    {
        AddCopyGrads();
        using var scope = NewDisposeScope();
        var squares = groups.Select(g => g.Grads.square().sum()).ToArray();
        var norm = (squares.Length == 1 ? squares[0] : stack(squares).sum()).sqrt();
        var coefficient = (maxNorm / (norm + 1e-6)).clamp_max(1.0);
        foreach (var g in groups) g.Grads.mul_(coefficient);
    }

    /// <summary>One Adam step over every group, all on the device (see the class summary).</summary>
    public void Step()
    {
        AddCopyGrads();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        beta1Power.mul_(beta1);
        beta2Power.mul_(beta2);
        var negativeStepSize = learningRate.div(beta1Power.neg().add_(1)).neg_(); // −lr / (1 − β1^t)
        var biasCorrection2Sqrt = beta2Power.neg().add_(1).sqrt_();
        foreach (var g in groups)
        {
            if (g.WeightDecay != 0) g.Values.mul_(learningRate.mul(-g.WeightDecay).add_(1));
            g.ExpAvg.mul_(beta1).add_(g.Grads, alpha: 1 - beta1);
            g.ExpAvgSq.mul_(beta2).addcmul_(g.Grads, g.Grads, value: 1 - beta2);
            var denominator = (g.ExpAvgSq.sqrt() / biasCorrection2Sqrt).add_(eps);
            // As addcdiv_(m, denominator, value: −step size) computes it on the CPU, with the step size a tensor.
            g.Values.add_(g.ExpAvg.mul(negativeStepSize).div_(denominator));
            g.Copies?.copy_(g.Values);
        }
    }

    /// <summary>Frees the optimizer state and the gradients; the parameters keep their (packed) values.</summary>
    public void Dispose()
    {
        foreach (var g in groups)
        {
            foreach (var p in g.Parameters.Where(p => !p.IsInvalid)) p.grad = null; // a disposed module's are gone already
            g.Copies?.Dispose();
            g.CopyGrads?.Dispose();
            g.Grads.Dispose();
            g.ExpAvg.Dispose();
            g.ExpAvgSq.Dispose();
            g.Values.Dispose();
        }
        foreach (var copy in copies.Values)
        {
            copy.grad = null;
            copy.Dispose();
        }
        groups.Clear();
        copies.Clear();
        learningRate.Dispose();
        beta1Power.Dispose();
        beta2Power.Dispose();
    }
}
