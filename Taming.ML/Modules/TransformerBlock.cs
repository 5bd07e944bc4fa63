using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using Taming.ML.Sampling;

namespace Taming.ML.Modules;

/// <summary>A pre-LayerNorm transformer block (minGPT): x + attn(ln1(x)), then x + mlp(ln2(x)).</summary>
internal sealed class TransformerBlock : Module<Tensor, Tensor>
{
    private readonly TorchSharp.Modules.LayerNorm ln1, ln2;
    private readonly CausalSelfAttention attn;
    private readonly TorchSharp.Modules.Sequential mlp;
    private readonly TorchSharp.Modules.Dropout mlp_drop;
    private readonly double dropout;

    public TransformerBlock(long width, long heads, double dropout) : base(nameof(TransformerBlock))
    {
        ln1 = LayerNorm(width);
        ln2 = LayerNorm(width);
        attn = new CausalSelfAttention(width, heads, dropout);
        mlp = Sequential(("fc", Linear(width, 4 * width)), ("gelu", GELU()), ("proj", Linear(4 * width, width)));
        mlp_drop = Dropout(dropout);
        this.dropout = dropout;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => Step(x, null, 0, 0);

    /// <summary>The block for x (b, t, C) after <paramref name="start"/> cached positions; with <paramref name="queryAt"/>
    /// (b) only that position of each row comes out, (b, 1, C), though all t go into the cache.</summary>
    public Tensor Step(Tensor x, KvCache? cache, int layer, long start, Tensor? queryAt = null)
    {
        var attended = attn.Attend(ln1.Autocast(x), cache, layer, start, queryAt);
        if (queryAt is not null) x = x.gather(1, queryAt.view(-1, 1, 1).expand(x.shape[0], 1, x.shape[2]));
        x = x + attended;
        // mlp = fc, gelu, proj: called one by one so that the linear layers autocast.
        var y = ((TorchSharp.Modules.Linear)mlp[2]).Autocast(functional.gelu(((TorchSharp.Modules.Linear)mlp[0]).Autocast(ln2.Autocast(x))));
        return x + (training && dropout > 0 ? mlp_drop.forward(y) : y); // a no-op dropout still costs a native call per step
    }
}
