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
        // (b, c, h, w) → (b, 1, h·w, c): one head over the flattened positions.
        Tensor Tokens(Tensor t) => t.reshape(b, 1, c, h * w).transpose(2, 3);
        var attended = functional.scaled_dot_product_attention(Tokens(q.Autocast(hn)), Tokens(k.Autocast(hn)), Tokens(v.Autocast(hn)));
        var back = attended.transpose(2, 3).reshape(b, c, h, w);
        return x + proj_out.Autocast(back);
    }
}
