using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Taming.ML.Modules;

/// <summary>The reference's <c>Normalize</c>: GroupNorm with 32 groups and eps 1e-6.</summary>
internal static class Normalize
{
    /// <summary>
    /// GroupNorm over <paramref name="channels"/>. Uses the largest group count ≤ 32 that divides the channel
    /// count, so small models (e.g. 16 or 48 channels) work; it is exactly 32 for the reference's sizes.
    /// TorchSharp 0.107 leaves GroupNorm's affine parameters uninitialised, so they are set here.
    /// </summary>
    public static TorchSharp.Modules.GroupNorm Create(long channels)
    {
        var norm = GroupNorm(Groups(channels), channels, eps: 1e-6);
        using (no_grad())
        {
            norm.weight!.fill_(1);
            norm.bias!.fill_(0);
        }
        return norm;
    }

    /// <summary>The group count for <paramref name="channels"/>: the largest ≤ 32 that divides it.</summary>
    public static long Groups(long channels)
    {
        long groups = 32;
        while (channels % groups != 0) groups--;
        return groups;
    }
}
