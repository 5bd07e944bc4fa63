using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Taming.ML.Modules;

/// <summary>
/// The reference's single-head spatial self-attention: 1×1 q/k/v projections over all h·w positions,
/// softmax(qkᵀ/√c)·v, 1×1 output projection, residual.
/// </summary>
internal sealed class AttnBlock : Module<Tensor, Tensor>
{
    private readonly TorchSharp.Modules.GroupNorm norm;
    private readonly TorchSharp.Modules.Conv2d q, k, v, proj_out;

    /// <summary>Positions from which the attention runs fused, in O(h·w) memory.</summary>
    private const long FusedFrom = 4096;

    public AttnBlock(long channels, long minChannelsPerGroup) : base(nameof(AttnBlock))
    {
        norm = Normalize.Create(channels, minChannelsPerGroup);
        q = Conv2d(channels, channels, 1);
        k = Conv2d(channels, channels, 1);
        v = Conv2d(channels, channels, 1);
        proj_out = Conv2d(channels, channels, 1);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        long b = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3];
        var hn = norm.Autocast(x);
        // (b, c, h, w) → (b, 1, h·w, c): one head over the flattened positions. libtorch's fused (flash) attention needs
        // each position's channels side by side; on the transposed view it falls back to computing all (h·w)² scores,
        // which for a whole photo's token map (256×160 tokens: 6.7 GB per image) takes more memory than the machine
        // has. Below 4,096 positions (crops, the reference's 16×16) that path is as fast and is kept.
        Tensor Tokens(Tensor t)
        {
            var tokens = t.reshape(b, 1, c, h * w).transpose(2, 3);
            return h * w >= FusedFrom ? tokens.contiguous() : tokens;
        }
        var attended = functional.scaled_dot_product_attention(Tokens(q.Autocast(hn)), Tokens(k.Autocast(hn)), Tokens(v.Autocast(hn)));
        var back = attended.transpose(2, 3).reshape(b, c, h, w);
        return x + proj_out.Autocast(back);
    }
}
