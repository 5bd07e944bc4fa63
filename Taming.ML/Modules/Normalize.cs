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
    /// GroupNorm of a channels-last <paramref name="x"/> (b, c, h, w) that stays channels-last: statistics per group
    /// over a view of its memory as (b, h·w, groups, c / groups), then one scale-and-shift pass. libtorch's CUDA group
    /// norm returns the standard layout, which would have every convolution after it convert its input back. Scale and
    /// shift are formed in float32 from the statistics (libtorch's kernel keeps those in the input's dtype too) and
    /// applied in the input's dtype.
    /// </summary>
    public static Tensor ChannelsLast(Tensor x, long groups, Tensor weight, Tensor bias, double eps)
    {
        long b = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3];
        var grouped = x.permute(0, 2, 3, 1).view(b, h * w, groups, c / groups);
        var (variance, mean) = var_mean(grouped, new long[] { 1, 3 }, unbiased: false, keepdim: true);
        var scale = (variance.to(ScalarType.Float32) + eps).rsqrt() * weight.to(ScalarType.Float32).view(1, 1, groups, c / groups);
        var shift = bias.to(ScalarType.Float32).view(1, 1, groups, c / groups) - mean.to(ScalarType.Float32) * scale;
        return addcmul(shift.to(x.dtype), grouped, scale.to(x.dtype), 1).view(b, h, w, c).permute(0, 3, 1, 2);
    }
}
