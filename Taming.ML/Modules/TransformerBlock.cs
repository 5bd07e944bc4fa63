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

    public TransformerBlock(long width, long heads, double dropout) : base(nameof(TransformerBlock))
    {
        ln1 = LayerNorm(width);
        ln2 = LayerNorm(width);
        attn = new CausalSelfAttention(width, heads, dropout);
        mlp = Sequential(("fc", Linear(width, 4 * width)), ("gelu", GELU()), ("proj", Linear(4 * width, width)), ("drop", Dropout(dropout)));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => Step(x, null, 0, 0);

    public Tensor Step(Tensor x, KvCache? cache, int layer, long start)
    {
        x = x + attn.Attend(ln1.forward(x), cache, layer, start);
        return x + mlp.forward(ln2.forward(x));
    }
}
