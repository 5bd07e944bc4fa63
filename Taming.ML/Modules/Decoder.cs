using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using Taming.ML.Models;

namespace Taming.ML.Modules;

/// <summary>
/// The reference's Decoder: conv_in from ZChannels, middle (ResBlock, Attn, ResBlock), then per level from the
/// deepest NumResBlocks+1 ResNet blocks (+ attention) and an Upsample except after the shallowest level,
/// then norm, swish, conv_out to the image channels.
/// </summary>
internal sealed class Decoder : Module<Tensor, Tensor>
{
    private readonly TorchSharp.Modules.Conv2d conv_in, conv_out;
    private readonly TorchSharp.Modules.Sequential mid, up;
    private readonly TorchSharp.Modules.GroupNorm norm_out;

    public Decoder(VqganOptions o) : base(nameof(Decoder))
    {
        int levels = o.ChMult.Length;
        long blockIn = (long)o.Ch * o.ChMult[levels - 1];
        int res = o.Resolution >> (levels - 1);
        conv_in = Conv2d(o.ZChannels, blockIn, 3, padding: 1);
        mid = Sequential(("block_1", new ResnetBlock(blockIn, blockIn, o.Dropout, o.GroupNormMinChannels)));
        if (o.MidAttention) mid.append("attn_1", new AttnBlock(blockIn, o.GroupNormMinChannels));
        mid.append("block_2", new ResnetBlock(blockIn, blockIn, o.Dropout, o.GroupNormMinChannels));
        up = Sequential();
        for (int level = levels - 1; level >= 0; level--)
        {
            long blockOut = (long)o.Ch * o.ChMult[level];
            for (int b = 0; b <= o.NumResBlocks; b++)
            {
                up.append($"level{level}_block{b}", new ResnetBlock(blockIn, blockOut, o.Dropout, o.GroupNormMinChannels));
                blockIn = blockOut;
                if (o.AttnResolutions.Contains(res)) up.append($"level{level}_attn{b}", new AttnBlock(blockIn, o.GroupNormMinChannels));
            }
            if (level != 0)
            {
                up.append($"level{level}_upsample", new Upsample(blockIn));
                res *= 2;
            }
        }
        norm_out = Normalize.Create(blockIn, o.GroupNormMinChannels);
        conv_out = Conv2d(blockIn, o.Channels, 3, padding: 1);
        RegisterComponents();
    }

    /// <summary>The weight of the last layer, G_L in the adaptive GAN weight λ.</summary>
    public TorchSharp.Modules.Parameter LastLayerWeight => conv_out.weight!;

    public override Tensor forward(Tensor z) =>
        conv_out.Autocast(functional.silu(norm_out.Autocast(BlockScope.Chain(up, BlockScope.Chain(mid, conv_in.Autocast(z))))));
}
