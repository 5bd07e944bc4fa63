using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Taming.ML.Modules;

/// <summary>The reference's <c>Normalize</c>: GroupNorm with 32 groups and eps 1e-6.</summary>
internal static class Normalize
{
    /// <summary>
    /// GroupNorm over <paramref name="channels"/> with <see cref="Groups"/> groups. TorchSharp 0.107 leaves
    /// GroupNorm's affine parameters uninitialised, so they are set here.
    /// </summary>
    public static TorchSharp.Modules.GroupNorm Create(long channels, long minChannelsPerGroup)
    {
        var norm = GroupNorm(Groups(channels, minChannelsPerGroup), channels, eps: 1e-6);
        using (no_grad())
        {
            norm.weight!.fill_(1);
            norm.bias!.fill_(0);
        }
        return norm;
    }

    /// <summary>
    /// The group count for <paramref name="channels"/>: the largest ≤ 32 that divides it and leaves at least
    /// <paramref name="minChannelsPerGroup"/> channels in each group (one group at the least). It is exactly 32 for
    /// the reference's sizes; small models (e.g. 16 or 48 channels) get fewer.
    /// </summary>
    public static long Groups(long channels, long minChannelsPerGroup)
    {
        long groups = 32;
        while (groups > 1 && (channels % groups != 0 || channels / groups < minChannelsPerGroup)) groups--;
        return groups;
    }

    /// <summary>
    /// GroupNorm of <paramref name="x"/> (b, c, h, w) that keeps its layout, standard or channels-last: statistics per
    /// channel over a view of its memory as (b, c, h·w) or (b, h·w, c), then one scale-and-shift pass. libtorch's CUDA
    /// group norm returns the standard layout, which would have every convolution after a channels-last one convert
    /// its input back. <paramref name="channelBias"/> is added to <paramref name="x"/> first without a pass of its own:
    /// the bias of the convolution before, which libtorch adds after a cuDNN convolution in a kernel of its own. The
    /// per-channel statistics are combined per group in float32 (law of total variance: no cancellation), the bias
    /// enters them and the shift, and scale and shift are applied in the input's dtype.
    /// </summary>
    public static Tensor KeepingLayout(Tensor x, long groups, Tensor weight, Tensor bias, double eps, Tensor? channelBias = null)
    {
        long b = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3], perGroup = c / groups;
        bool channelsLast = MemoryLayout.IsChannelsLast(x) && !x.is_contiguous();
        var channels = channelsLast ? x.permute(0, 2, 3, 1).view(b, h * w, c) : x.reshape(b, c, h * w);
        var (channelVariance, channelMean) = var_mean(channels, new long[] { channelsLast ? 1 : 2 }, unbiased: false);
        var added = channelBias?.to(ScalarType.Float32).view(1, groups, perGroup);
        var mean = channelMean.to(ScalarType.Float32).view(b, groups, perGroup);
        if (added is not null) mean = mean + added;
        var groupMean = mean.mean(new long[] { 2 }, keepdim: true);
        var groupVariance = (channelVariance.to(ScalarType.Float32).view(b, groups, perGroup) + (mean - groupMean).square())
            .mean(new long[] { 2 }, keepdim: true);
        var scale = (groupVariance + eps).rsqrt() * weight.to(ScalarType.Float32).view(1, groups, perGroup);
        // x + channelBias − groupMean, scaled, shifted: the bias folds into the shift.
        var shift = bias.to(ScalarType.Float32).view(1, groups, perGroup) - groupMean * scale;
        if (added is not null) shift = shift + added * scale;
        long[] perChannel = channelsLast ? new[] { b, 1, c } : new[] { b, c, 1 };
        var y = addcmul(shift.view(perChannel).to(x.dtype), channels, scale.view(perChannel).to(x.dtype), 1);
        return channelsLast ? y.view(b, h, w, c).permute(0, 3, 1, 2) : y.view(b, c, h, w);
    }

    /// <summary>Whether a group norm of <paramref name="x"/> runs <see cref="KeepingLayout"/>: channels-last
    /// activations on a GPU (on a CPU libtorch's own keeps the layout and is faster).</summary>
    public static bool RunsKeepingLayout(Tensor x) => x.device_type != DeviceType.CPU && MemoryLayout.IsChannelsLast(x);

    /// <summary>
    /// Whether a group norm of a convolution's output takes the convolution's bias into
    /// <see cref="KeepingLayout"/> (<paramref name="x"/> the convolution's input, whose layout its output has): on a GPU,
    /// in channels-last (where that norm runs anyway) and in inference, where libtorch's fused group-norm backward does
    /// not come into it (libtorch's bias additions took 6 of a 30 ms bf16 encode batch of the f16 VQGAN on an H200).
    /// </summary>
    public static bool FoldsConvolutionBias(Tensor x) =>
        x.device_type != DeviceType.CPU && (MemoryLayout.IsChannelsLast(x) || !is_grad_enabled());
}
