using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Taming.ML.Modules;

/// <summary>
/// The reference's ResnetBlock without the time embedding: norm → swish → 3×3 conv, twice, with a 1×1
/// shortcut when the channel count changes.
/// </summary>
internal sealed class ResnetBlock : Module<Tensor, Tensor>
{
    private readonly TorchSharp.Modules.GroupNorm norm1, norm2;
    private readonly TorchSharp.Modules.Conv2d conv1, conv2;
    private readonly TorchSharp.Modules.Dropout dropout;
    private readonly TorchSharp.Modules.Conv2d? nin_shortcut;

    public ResnetBlock(long inChannels, long outChannels, double dropoutRate, long minChannelsPerGroup) : base(nameof(ResnetBlock))
    {
        norm1 = Normalize.Create(inChannels, minChannelsPerGroup);
        conv1 = Conv2d(inChannels, outChannels, 3, padding: 1);
        norm2 = Normalize.Create(outChannels, minChannelsPerGroup);
        dropout = Dropout(dropoutRate);
        conv2 = Conv2d(outChannels, outChannels, 3, padding: 1);
        if (inChannels != outChannels) nin_shortcut = Conv2d(inChannels, outChannels, 1);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        var h = conv1.AutocastThen(norm2, functional.silu(norm1.Autocast(x)));
        h = conv2.Autocast(dropout.forward(functional.silu(h)));
        return (nin_shortcut is null ? x : nin_shortcut.Autocast(x)) + h;
    }
}
