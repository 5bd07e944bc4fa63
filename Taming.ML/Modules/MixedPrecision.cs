using TorchSharp;
using static TorchSharp.torch;
using Taming.ML.Models;

namespace Taming.ML.Modules;

/// <summary>
/// Mixed precision for TorchSharp, which has no torch.autocast. Inside a scope (<see cref="Enter"/>) the layers of
/// the models go through the <c>Autocast</c> extensions below: convolutions and linear layers cast their input and
/// a copy of their weights to the compute dtype; group norms run in it too (statistics in float32), layer and batch
/// norms cast back to float32. Gradients reach the float32 parameters through the casts. The scope is per thread,
/// like torch.autocast.
/// </summary>
internal static class MixedPrecision
{
    [ThreadStatic] private static Precision current;

    /// <summary>The dtype matrix products run in, or null for float32.</summary>
    public static ScalarType? ComputeDtype => current == Precision.BFloat16 ? ScalarType.BFloat16 : null;

    /// <summary>
    /// Computes in <paramref name="precision"/> until disposed; TF32 also switches libtorch's (process-wide) TF32
    /// flags on for the scope. Nested scopes of the same precision cost nothing.
    /// </summary>
    public static IDisposable Enter(Precision precision)
    {
        var previous = current;
        if (previous == precision) return NoOp.Instance;
        current = precision;
        bool tf32 = precision == Precision.TensorFloat32;
        if (tf32 == (previous == Precision.TensorFloat32)) return new Restore(() => current = previous);
        var flags = (Matmul: backends.cuda.matmul.allow_tf32, Cudnn: backends.cudnn.allow_tf32);
        backends.cuda.matmul.allow_tf32 = tf32;
        if (tf32) backends.cudnn.allow_tf32 = true;
        return new Restore(() =>
        {
            current = previous;
            (backends.cuda.matmul.allow_tf32, backends.cudnn.allow_tf32) = flags;
        });
    }

    [ThreadStatic] private static Dictionary<Tensor, Tensor>? castWeights;

    /// <summary>
    /// For inference loops whose weights do not change (sampling): each weight is cast to the compute dtype once
    /// for the scope instead of at every call, which a token-by-token loop would otherwise pay per token.
    /// </summary>
    public static IDisposable CastWeightsOnce()
    {
        if (castWeights is not null) return NoOp.Instance;
        castWeights = new Dictionary<Tensor, Tensor>(ReferenceEqualityComparer.Instance);
        return new Restore(() =>
        {
            foreach (var t in castWeights.Values) t.Dispose();
            castWeights = null;
        });
    }

    [ThreadStatic] private static Dictionary<Tensor, Tensor>? trainingCopies;

    /// <summary>
    /// For training with an optimizer that keeps the parameters' copies in the compute dtype
    /// (<see cref="Training.FlatAdam.ComputeCopies"/>): the layers use those copies, whose gradients the optimizer adds
    /// to the parameters', instead of casting each weight at every step; weights that take no gradient (a frozen
    /// perceptual network) are cast once for the scope. Other weights are cast as usual.
    /// </summary>
    public static IDisposable Training(params IReadOnlyDictionary<Tensor, Tensor>[] copies)
    {
        if (trainingCopies is not null) throw new InvalidOperationException("A training scope is open already.");
        trainingCopies = new Dictionary<Tensor, Tensor>(copies.SelectMany(c => c), ReferenceEqualityComparer.Instance);
        var cast = CastWeightsOnce();
        return new Restore(() =>
        {
            cast.Dispose();
            trainingCopies = null;
        });
    }

    /// <summary>The tensor that layers differentiate for <paramref name="parameter"/> in this scope: its compute-dtype
    /// copy in a <see cref="Training"/> scope, else the parameter itself.</summary>
    public static Tensor Differentiated(Tensor parameter) => TrainingCopy(parameter) ?? parameter;

    private static Tensor? TrainingCopy(Tensor w) =>
        trainingCopies is not null && ComputeDtype is { } d && trainingCopies.TryGetValue(w, out var copy) && copy.dtype == d ? copy : null;

    [return: System.Diagnostics.CodeAnalysis.NotNullIfNotNull(nameof(w))]
    private static Tensor? Weight(Tensor? w)
    {
        if (w is null || ComputeDtype is not { } d || w.dtype == d) return w;
        if (TrainingCopy(w) is { } copy) return copy;
        // Outside a cache, or trained without a copy in a training scope: cast, so that the gradient reaches it.
        if (castWeights is null || (trainingCopies is not null && w.requires_grad)) return w.to(d);
        if (!castWeights.TryGetValue(w, out var cast))
        {
            using (no_grad()) cast = w.to(d).DetachFromDisposeScope(); // a copy the scope owns and disposes
            castWeights[w] = cast;
        }
        return cast;
    }

    /// <summary><paramref name="x"/> in the compute dtype (unchanged outside a bf16 scope or when not floating point).</summary>
    public static Tensor Compute(Tensor x) =>
        ComputeDtype is { } d && x.dtype != d && x.is_floating_point() ? x.to(d) : x;

    /// <summary><paramref name="x"/> as float32, for norms, losses and distances.</summary>
    public static Tensor Float(Tensor x) => x.dtype == ScalarType.Float32 || !x.is_floating_point() ? x : x.to(ScalarType.Float32);

    public static Tensor Autocast(this TorchSharp.Modules.Conv2d conv, Tensor x) =>
        ComputeDtype is null && !BlockAlignedConvolution.Applies(x, conv.weight!, conv.stride, conv.groups) ? conv.forward(x)
            : Conv2d(x, conv.weight!, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups);

    /// <summary>A convolution in the compute dtype, for networks that keep their weights as tensors (the perceptual one);
    /// block-aligned where the CPU's oneDNN needs it (<see cref="BlockAlignedConvolution"/>).</summary>
    public static Tensor Conv2d(Tensor x, Tensor weight, Tensor? bias, long[] stride, long[]? padding = null, long[]? dilation = null, long groups = 1) =>
        BlockAlignedConvolution.Applies(x, weight, stride, groups)
            ? BlockAlignedConvolution.Conv2d(Compute(x), Weight(weight), Weight(bias), stride, padding, dilation)
            : nn.functional.conv2d(Compute(x), Weight(weight), Weight(bias), stride, padding, dilation, groups);

    public static Tensor Autocast(this TorchSharp.Modules.Linear linear, Tensor x) =>
        ComputeDtype is null ? linear.forward(x)
            : nn.functional.linear(Compute(x), Weight(linear.weight!), Weight(linear.bias));

    /// <summary>GroupNorm in the compute dtype: libtorch accumulates its statistics in float32 anyway, and the
    /// convolution after it reads bf16, so this spares two casts of every activation. Channels-last activations on a
    /// GPU stay channels-last (<see cref="Normalize.KeepingLayout"/>).</summary>
    public static Tensor Autocast(this TorchSharp.Modules.GroupNorm norm, Tensor x)
    {
        x = ComputeDtype is null ? Float(x) : Compute(x);
        if (Normalize.RunsKeepingLayout(x))
            return Normalize.KeepingLayout(x, norm.num_groups, norm.weight!, norm.bias!, norm.eps);
        return ComputeDtype is null ? norm.forward(x)
            : nn.functional.group_norm(x, norm.num_groups, Weight(norm.weight!), Weight(norm.bias!), norm.eps);
    }

    /// <summary>
    /// <paramref name="norm"/>(<paramref name="conv"/>(<paramref name="x"/>)), with the convolution's bias folded into
    /// the norm where <see cref="Normalize.FoldsConvolutionBias"/> says so, sparing libtorch's separate bias pass.
    /// </summary>
    public static Tensor AutocastThen(this TorchSharp.Modules.Conv2d conv, TorchSharp.Modules.GroupNorm norm, Tensor x) =>
        AutocastThen(conv, norm, x, foldBias: conv.bias is not null && Normalize.FoldsConvolutionBias(x));

    /// <summary>As above, folding the bias when <paramref name="foldBias"/>.</summary>
    internal static Tensor AutocastThen(this TorchSharp.Modules.Conv2d conv, TorchSharp.Modules.GroupNorm norm, Tensor x, bool foldBias)
    {
        if (!foldBias) return norm.Autocast(conv.Autocast(x));
        var h = Conv2d(x, conv.weight!, null, conv.stride, conv.padding, conv.dilation, conv.groups);
        return Normalize.KeepingLayout(h, norm.num_groups, norm.weight!, norm.bias!, norm.eps, conv.bias);
    }

    public static Tensor Autocast(this TorchSharp.Modules.LayerNorm norm, Tensor x) => norm.forward(Float(x));

    public static Tensor Autocast(this TorchSharp.Modules.BatchNorm2d norm, Tensor x) => norm.forward(Float(x));

    private sealed class NoOp : IDisposable
    {
        public static readonly NoOp Instance = new();
        public void Dispose() { }
    }

    private sealed class Restore(Action restore) : IDisposable
    {
        public void Dispose() => restore();
    }
}
