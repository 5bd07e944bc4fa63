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
    /// (0 without a cache); with a cache they attend to all cached positions before them, or, when the cache is
    /// <see cref="KvCache.IsRagged"/>, to those before each row's own positions. With <paramref name="queryAt"/> (b)
    /// only that position of each row asks (all t still give keys and values): the output is (b, 1, C).</summary>
    public Tensor Attend(Tensor x, KvCache? cache, int layer, long start, Tensor? queryAt = null)
    {
        long b = x.shape[0], t = x.shape[1], c = x.shape[2], d = c / heads;
        // (b, t, 3C) → (3, b, heads, t, d): queries, then keys and values together, as the cache stores them.
        var qkv = c_attn.Autocast(x).view(b, t, 3, heads, d).permute(2, 0, 3, 1, 4);
        // Without a cache (training) unbind, whose gradient is one stack; selections would each zero-fill a full-size gradient.
        var parts = cache is null ? qkv.unbind(0) : null;
        Tensor q = parts?[0] ?? qkv.select(0, 0), kv = cache is null ? qkv : qkv.narrow(0, 1, 2);
        Tensor? Pick(Tensor? m) => m?.gather(2, queryAt!.view(b, 1, 1, 1).expand(b, m.shape[1], 1, m.shape[3]));
        if (queryAt is not null) q = Pick(q)!;
        double p = training ? dropout : 0;
        Tensor y;
        if (cache is { IsRagged: true })
        {
            (kv, var mask) = cache.AppendRagged(layer, kv);
            y = functional.scaled_dot_product_attention(q, kv.select(0, 0), kv.select(0, 1), queryAt is null ? mask : Pick(mask), p: p);
        }
        else
        {
            if (cache != null) kv = cache.Append(layer, kv, start);
            Tensor k = parts?[1] ?? kv.select(0, 0), v = parts?[2] ?? kv.select(0, 1); // select: cheaper than the indexer
            if (queryAt is not null)
            {
                // One query per row, at its own position: it sees the keys up to there.
                using var mask = arange(k.shape[2], device: x.device).view(1, 1, 1, -1) <= (queryAt + start).view(b, 1, 1, 1);
                y = functional.scaled_dot_product_attention(q, k, v, mask, p: p);
            }
            else if (start > 0 && t > 1)
            {
                // A block appended after cached positions: query r sees keys 0 … start + r.
                using var mask = ones(t, start + t, ScalarType.Bool, x.device).tril(start);
                y = functional.scaled_dot_product_attention(q, k, v, mask, p: p);
            }
            else
            {
                // A single new query attends to every cached key; a block from position 0 is causal.
                y = functional.scaled_dot_product_attention(q, k, v, p: p, is_casual: t > 1);
            }
        }
        y = c_proj.Autocast(y.transpose(1, 2).reshape(b, q.shape[2], c));
        return p > 0 ? resid_drop.forward(y) : y;
    }
}
