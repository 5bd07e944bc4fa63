using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using Taming.ML.Modules;
using Taming.ML.Sampling;

namespace Taming.ML.Models;

/// <summary>
/// The transformer prior (minGPT): token and learned position embeddings, pre-LayerNorm blocks, a final
/// LayerNorm and a linear head over the image codes. Input ids follow <see cref="PriorLayout"/>.
/// </summary>
public sealed class Gpt : Module<Tensor, Tensor>
{
    private readonly TorchSharp.Modules.Embedding tok_emb;
    private readonly TorchSharp.Modules.Parameter pos_emb;
    private readonly TorchSharp.Modules.Dropout drop;
    private readonly TorchSharp.Modules.ModuleList<TransformerBlock> blocks;
    private readonly TorchSharp.Modules.LayerNorm ln_f;
    private readonly TorchSharp.Modules.Linear head;

    /// <summary>Builds an untrained prior for a sequence layout.</summary>
    public Gpt(GptOptions options, PriorLayout layout) : base(nameof(Gpt))
    {
        Native.TorchRuntime.EnsureLoaded(); // once per process: also checks the CPU's oneDNN convolutions
        options.Validate();
        layout.Validate();
        Options = options.Clone();
        Layout = layout;
        tok_emb = Embedding(layout.Vocabulary, options.Width);
        pos_emb = new TorchSharp.Modules.Parameter(zeros(1, layout.BlockSize, options.Width));
        drop = Dropout(options.Dropout);
        blocks = new TorchSharp.Modules.ModuleList<TransformerBlock>(
            Enumerable.Range(0, options.Layers).Select(_ => new TransformerBlock(options.Width, options.Heads, options.Dropout)).ToArray());
        ln_f = LayerNorm(options.Width);
        head = Linear(options.Width, layout.CodebookSize, hasBias: false);
        RegisterComponents();
        using (no_grad())
        {
            foreach (var (name, p) in named_parameters())
            {
                if (name.EndsWith("bias")) init.zeros_(p);
                else if (name.StartsWith("tok_emb") || (name.EndsWith("weight") && !name.Contains("ln"))) init.normal_(p, 0, 0.02);
            }
        }
    }

    /// <summary>The options the prior was built with.</summary>
    public GptOptions Options { get; }

    /// <summary>The sequence layout (conditioning, grid, vocabulary).</summary>
    public PriorLayout Layout { get; }

    /// <summary>Logits over the image codes for every position of <paramref name="ids"/> (b, t), t ≤ block size.</summary>
    public override Tensor forward(Tensor ids) => Forward(ids, null, 0);

    /// <summary>
    /// Logits for positions start … start+t−1, reading and filling <paramref name="cache"/> when given; with
    /// <paramref name="lastOnly"/> only the last position's (b, 1, K), which is all sampling needs.
    /// </summary>
    internal Tensor Forward(Tensor ids, KvCache? cache, long start, bool lastOnly = false)
    {
        long t = ids.shape[1];
        CheckLength(start + t);
        using var precision = MixedPrecision.Enter(Options.Precision);
        var x = Hidden(ids, pos_emb.narrow(1, start, t), cache, start);
        if (lastOnly) x = x.narrow(1, t - 1, 1);
        return MixedPrecision.Float(head.Autocast(ln_f.Autocast(x)));
    }

    /// <summary>
    /// Logits (b, K) of one position per row, <paramref name="at"/> (b), of sequences (b, t) that start at position
    /// 0, or, with a cache, that stand at per-row <paramref name="positions"/> (b, t) after what the cache holds
    /// (attending to its first <paramref name="keys"/> positions; <paramref name="cacheRows"/>: which cache row each
    /// row uses, by default the same). Rows that need fewer tokens repeat their last one.
    /// </summary>
    internal Tensor LogitsAt(Tensor ids, Tensor at, KvCache? cache = null, Tensor? positions = null, long keys = 0, Tensor? cacheRows = null)
    {
        long b = ids.shape[0], t = ids.shape[1];
        using var precision = MixedPrecision.Enter(Options.Precision);
        Tensor x;
        if (positions is null)
        {
            CheckLength(t);
            x = Hidden(ids, pos_emb.narrow(1, 0, t), cache, 0, at);
        }
        else
        {
            CheckLength(keys);
            using var ragged = cache!.Ragged(positions, keys, cacheRows);
            x = Hidden(ids, pos_emb.squeeze(0).index_select(0, positions.reshape(-1)).view(b, t, -1), cache, 0, at);
        }
        return MixedPrecision.Float(head.Autocast(ln_f.Autocast(x.squeeze(1))));
    }

    /// <summary>The last block's output; with <paramref name="at"/> (b) only at that position of each row (b, 1, C), which
    /// spares the last block's attention output and MLP at every other position.</summary>
    private Tensor Hidden(Tensor ids, Tensor positionEmbeddings, KvCache? cache, long start, Tensor? at = null)
    {
        var x = tok_emb.forward(ids) + positionEmbeddings;
        if (training && Options.Dropout > 0) x = drop.forward(x);
        for (int l = 0; l < blocks.Count; l++)
        {
            int layer = l;
            x = BlockScope.Next(h => blocks[layer].Step(h, cache, layer, start, layer == blocks.Count - 1 ? at : null), x, freeInput: true);
        }
        return x;
    }

    private void CheckLength(long length)
    {
        if (length > Layout.BlockSize)
            throw new ArgumentException($"The sequence is {length} tokens long; the prior's block size is {Layout.BlockSize}.");
    }

    /// <summary>
    /// Cross-entropy in nats of each image token of whole sequences (b, prefix + image tokens), shape (b, image
    /// tokens). <paramref name="inputs"/> replaces the model's input (the sequences less their last token), e.g.
    /// with pkeep corruption.
    /// </summary>
    internal Tensor ImageTokenNll(Tensor sequences, Tensor? inputs = null)
    {
        int p = Layout.PrefixLength, n = Layout.ImageLength;
        var logits = forward(inputs ?? sequences.narrow(1, 0, p + n - 1)).narrow(1, p - 1, n);
        return functional.cross_entropy(logits.reshape(-1, Layout.CodebookSize), sequences.narrow(1, p, n).reshape(-1),
            reduction: Reduction.None).view(sequences.shape[0], n);
    }

    /// <summary>Memory for the key/value caches of one sampling call: plain sampling draws its rows in groups that fit
    /// it, windowed sampling keeps as many windows cached (settable for tests).</summary>
    internal static long CacheBudgetBytes { get; set; } = 2L << 30;

    /// <summary>Rows whose caches fit <see cref="CacheBudgetBytes"/> (at least one).</summary>
    internal int CachedRowsPerCall => (int)Math.Clamp(CacheBudgetBytes / CacheBytesPerSequence, 1, int.MaxValue);

    /// <summary>Bytes of key/value cache one sequence of the block size takes.</summary>
    internal long CacheBytesPerSequence => 2L * Options.Layers * Layout.BlockSize * Options.Width * (CacheDtype == ScalarType.BFloat16 ? 2 : 4);

    /// <summary>Keys and values are cached in the dtype attention computes in.</summary>
    private ScalarType CacheDtype => Options.Precision == Precision.BFloat16 ? ScalarType.BFloat16 : ScalarType.Float32;

    /// <summary>A cache for sampling <paramref name="batch"/> sequences.</summary>
    internal KvCache NewCache(long batch) =>
        new(Options.Layers, batch, Options.Heads, Layout.BlockSize, Options.Width / Options.Heads, pos_emb.device, CacheDtype);

    /// <summary>Parameters that get weight decay (Linear weights) and those that do not (biases, norms, embeddings).</summary>
    internal (IList<TorchSharp.Modules.Parameter> Decay, IList<TorchSharp.Modules.Parameter> NoDecay) ParameterGroups()
    {
        var decay = new List<TorchSharp.Modules.Parameter>();
        var noDecay = new List<TorchSharp.Modules.Parameter>();
        foreach (var (name, p) in named_parameters())
        {
            bool linearWeight = name.EndsWith("weight") && !name.StartsWith("tok_emb") && !name.Contains("ln");
            (linearWeight ? decay : noDecay).Add(p);
        }
        return (decay, noDecay);
    }
}
