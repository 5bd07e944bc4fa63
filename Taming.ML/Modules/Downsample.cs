using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Taming.ML.Modules;

/// <summary>Halves the resolution as the reference does: pad (0,1,0,1) then a 3×3 convolution with stride 2.</summary>
internal sealed class Downsample : Module<Tensor, Tensor>
{
    private readonly TorchSharp.Modules.Conv2d conv;

    public Downsample(long channels) : base(nameof(Downsample))
    {
        conv = Conv2d(channels, channels, 3, stride: 2);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => conv.Autocast(functional.pad(x, new long[] { 0, 1, 0, 1 }));
}
