using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using Taming.ML.Sampling;

namespace Taming.ML.Modules;

/// <summary>
/// Multi-head causal self-attention (minGPT), through TorchSharp's scaled_dot_product_attention. With a
/// <see cref="KvCache"/> it attends from new positions to everything cached before them.
/// </summary>
internal sealed class CausalSelfAttention : Module<Tensor, Tensor>
{
    private readonly TorchSharp.Modules.Linear c_attn, c_proj;
    private readonly TorchSharp.Modules.Dropout resid_drop;
    private readonly long heads;
    private readonly double dropout;

    public CausalSelfAttention(long width, long heads, double dropout) : base(nameof(CausalSelfAttention))
    {
        c_attn = Linear(width, 3 * width);
        c_proj = Linear(width, width);
        resid_drop = Dropout(dropout);
        this.heads = heads;
        this.dropout = dropout;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => Attend(x, null, 0, 0);

    /// <summary>Attention for the t positions of <paramref name="x"/>, which start at <paramref name="start"/>
    /// (0 without a cache); with a cache they attend to all cached positions before them.</summary>
    public Tensor Attend(Tensor x, KvCache? cache, int layer, long start)
    {
        long b = x.shape[0], t = x.shape[1], c = x.shape[2];
        var qkv = c_attn.forward(x).split(c, 2);
        Tensor Heads(Tensor y) => y.view(b, t, heads, c / heads).transpose(1, 2);
        Tensor q = Heads(qkv[0]), k = Heads(qkv[1]), v = Heads(qkv[2]);
        if (cache != null) (k, v) = cache.Append(layer, k, v, start);
        Tensor y;
        if (start > 0 && t > 1)
        {
            // A block appended after cached positions: query r sees keys 0 … start + r.
            using var mask = ones(t, start + t, ScalarType.Bool, x.device).tril(start);
            y = functional.scaled_dot_product_attention(q, k, v, mask, p: training ? dropout : 0);
        }
        else
        {
            // A single new query attends to every cached key; a block from position 0 is causal.
            y = functional.scaled_dot_product_attention(q, k, v, p: training ? dropout : 0, is_casual: t > 1);
        }
        return resid_drop.forward(c_proj.forward(y.transpose(1, 2).contiguous().view(b, t, c)));
    }
}
