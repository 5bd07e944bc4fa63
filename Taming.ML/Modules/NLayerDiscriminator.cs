using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Taming.ML.Modules;

/// <summary>
/// The reference's PatchGAN discriminator (pix2pix): 4×4 convolutions, stride 2 for the first
/// <c>layers</c>, BatchNorm and LeakyReLU(0.2), ending in a one-channel map of patch logits.
/// Weights are drawn from N(0, 0.02), BatchNorm scales from N(1, 0.02).
/// </summary>
internal sealed class NLayerDiscriminator : Module<Tensor, Tensor>
{
    private readonly TorchSharp.Modules.Sequential main;

    public NLayerDiscriminator(long inChannels, long ndf, int layers) : base(nameof(NLayerDiscriminator))
    {
        main = Sequential();
        main.append("conv0", Conv2d(inChannels, ndf, 4, stride: 2, padding: 1));
        main.append("act0", LeakyReLU(0.2));
        long mult = 1;
        for (int n = 1; n <= layers; n++)
        {
            long previous = mult;
            mult = Math.Min(1L << n, 8);
            long stride = n < layers ? 2 : 1;
            main.append($"conv{n}", Conv2d(ndf * previous, ndf * mult, 4, stride: stride, padding: 1, bias: false));
            main.append($"norm{n}", BatchNorm2d(ndf * mult));
            main.append($"act{n}", LeakyReLU(0.2));
        }
        main.append("conv_out", Conv2d(ndf * mult, 1, 4, stride: 1, padding: 1));
        RegisterComponents();
        using (no_grad())
        {
            foreach (var (name, p) in named_parameters())
            {
                if (name.Contains("conv") && name.EndsWith("weight")) init.normal_(p, 0, 0.02);
                else if (name.Contains("norm") && name.EndsWith("weight")) init.normal_(p, 1, 0.02);
                else if (name.EndsWith("bias")) init.zeros_(p);
            }
        }
    }

    public override Tensor forward(Tensor x)
    {
        foreach (var (_, layer) in main.named_children())
        {
            x = layer switch
            {
                TorchSharp.Modules.Conv2d conv => conv.Autocast(x),
                TorchSharp.Modules.BatchNorm2d norm => norm.Autocast(x),
                Module<Tensor, Tensor> other => other.forward(x),
                _ => throw new InvalidOperationException("Unexpected discriminator layer."),
            };
        }
        return MixedPrecision.Float(x);
    }
}
