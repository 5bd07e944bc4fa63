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
}
