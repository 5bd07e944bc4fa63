using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using Taming.ML.Models;

namespace Taming.ML.Modules;

/// <summary>
/// The reference's Encoder: conv_in, then per level NumResBlocks ResNet blocks (+ attention at
/// AttnResolutions) and a Downsample except after the last level, then middle (ResBlock, Attn, ResBlock),
/// norm, swish, conv_out to ZChannels.
/// </summary>
internal sealed class Encoder : Module<Tensor, Tensor>
{
    private readonly TorchSharp.Modules.Conv2d conv_in, conv_out;
    private readonly TorchSharp.Modules.Sequential down, mid;
    private readonly TorchSharp.Modules.GroupNorm norm_out;

    public Encoder(VqganOptions o) : base(nameof(Encoder))
    {
        conv_in = Conv2d(o.Channels, o.Ch, 3, padding: 1);
        down = Sequential();
        long blockIn = o.Ch;
        int res = o.Resolution;
        for (int level = 0; level < o.ChMult.Length; level++)
        {
            long blockOut = (long)o.Ch * o.ChMult[level];
            for (int b = 0; b < o.NumResBlocks; b++)
            {
                down.append($"level{level}_block{b}", new ResnetBlock(blockIn, blockOut, o.Dropout, o.GroupNormMinChannels));
                blockIn = blockOut;
                if (o.AttnResolutions.Contains(res)) down.append($"level{level}_attn{b}", new AttnBlock(blockIn, o.GroupNormMinChannels));
            }
            if (level != o.ChMult.Length - 1)
            {
                down.append($"level{level}_downsample", new Downsample(blockIn));
                res /= 2;
            }
        }
        mid = Sequential(("block_1", new ResnetBlock(blockIn, blockIn, o.Dropout, o.GroupNormMinChannels)));
        if (o.MidAttention) mid.append("attn_1", new AttnBlock(blockIn, o.GroupNormMinChannels));
        mid.append("block_2", new ResnetBlock(blockIn, blockIn, o.Dropout, o.GroupNormMinChannels));
        norm_out = Normalize.Create(blockIn, o.GroupNormMinChannels);
        conv_out = Conv2d(blockIn, o.ZChannels, 3, padding: 1);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) =>
        conv_out.Autocast(functional.silu(norm_out.Autocast(BlockScope.Chain(mid, BlockScope.Chain(down, conv_in.Autocast(x))))));
}
