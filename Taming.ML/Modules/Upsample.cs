using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Taming.ML.Modules;

/// <summary>Doubles the resolution as the reference does: nearest-neighbour ×2 then a 3×3 convolution.</summary>
internal sealed class Upsample : Module<Tensor, Tensor>
{
    private readonly TorchSharp.Modules.Conv2d conv;

    public Upsample(long channels) : base(nameof(Upsample))
    {
        conv = Conv2d(channels, channels, 3, padding: 1);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) =>
        conv.Autocast(functional.interpolate(x, scale_factor: new double[] { 2, 2 }, mode: InterpolationMode.Nearest));
}
