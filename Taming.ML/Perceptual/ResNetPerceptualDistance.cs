using Taming.ML.Losses;
using static TorchSharp.torch;

namespace Taming.ML.Perceptual;

/// <summary>
/// An LPIPS-style distance on <see cref="ResNet18Features"/>: each stage's activations (after the stem and after each
/// of the four layers) are unit-normalised along channels, their squared difference is averaged over positions, and the
/// stages are summed. Unlike LPIPS there are no learned per-channel weights (none ship for this network): every
/// channel counts alike. 0 for identical images; grows with blur and noise.
/// </summary>
public sealed class ResNetPerceptualDistance : IPerceptualDistance, IDisposable
{
    private readonly ResNet18Features network;

    /// <summary>A distance on the given network (see <see cref="ResNet18Features.Load"/>).</summary>
    public ResNetPerceptualDistance(ResNet18Features network)
    {
        this.network = network;
        foreach (var p in network.parameters()) p.requires_grad = false;
    }

    /// <summary>Loads the shipped network onto <paramref name="device"/>.</summary>
    public static ResNetPerceptualDistance Load(Device? device = null) => new(ResNet18Features.Load(device: device));

    /// <inheritdoc />
    public Tensor Distance(Tensor x, Tensor y)
    {
        // One pass over both batches: half the kernel launches.
        var stages = network.Stages(cat(new[] { x, y }, 0));
        long b = x.shape[0];
        Tensor? total = null;
        foreach (var stage in stages)
        {
            var unit = stage / (stage.square().sum(1, keepdim: true).sqrt() + 1e-10);
            var d = (unit.narrow(0, 0, b) - unit.narrow(0, b, b)).square().sum(1).mean(new long[] { 1, 2 });
            total = total is null ? d : total + d;
        }
        return total!;
    }

    /// <inheritdoc />
    public void Dispose() => network.Dispose();
}
