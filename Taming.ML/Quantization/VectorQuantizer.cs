using System.Runtime.InteropServices;
using System.Security.Cryptography;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Taming.ML.Quantization;

/// <summary>What the quantizer returns for a batch of encoder outputs.</summary>
/// <param name="Quantized">z_q with straight-through gradient, shaped like the input (b, e, h, w).</param>
/// <param name="Loss">‖sg[z]−z_q‖² + β‖z−sg[z_q]‖² (mean over elements).</param>
/// <param name="Indices">Codebook ids, (b, h, w), int64.</param>
/// <param name="Inputs">The flattened lookup vectors (b·h·w, e), detached; used to re-seed dead codes.</param>
internal sealed record QuantizerOutput(Tensor Quantized, Tensor Loss, Tensor Indices, Tensor Inputs);

/// <summary>
/// Nearest-neighbour vector quantizer with a straight-through gradient (VQ-VAE), with β on the commitment
/// term (the reference's non-legacy form). Options against codebook collapse: cosine lookup with
/// l2-normalised vectors (ViT-VQGAN) and re-seeding of dead codes from encoder outputs.
/// </summary>
internal sealed class VectorQuantizer : Module<Tensor, QuantizerOutput>
{
    private readonly TorchSharp.Modules.Embedding embedding;
    private readonly double beta;
    private readonly bool l2Normalize;

    public VectorQuantizer(long codebookSize, long embedDim, double beta, bool l2Normalize) : base(nameof(VectorQuantizer))
    {
        embedding = Embedding(codebookSize, embedDim);
        this.beta = beta;
        this.l2Normalize = l2Normalize;
        using (no_grad()) init.uniform_(embedding.weight!, -1.0 / codebookSize, 1.0 / codebookSize);
        RegisterComponents();
    }

    public long CodebookSize => embedding.weight!.shape[0];

    /// <summary>A short hash of the code vectors (16 hex digits): the same for a tokenizer and its saved copies, and
    /// different for any other codebook, so that token columns can say which codebook their ids index.</summary>
    public string Fingerprint()
    {
        using var scope = NewDisposeScope();
        var vectors = embedding.weight!.detach().to(ScalarType.Float32).cpu().contiguous().data<float>().ToArray();
        return Convert.ToHexString(SHA256.HashData(MemoryMarshal.AsBytes(vectors.AsSpan())), 0, 8).ToLowerInvariant();
    }

    /// <summary>The codebook as used for lookup (normalised when cosine lookup is on).</summary>
    public Tensor Codebook => l2Normalize ? functional.normalize(embedding.weight!, dim: 1) : embedding.weight!;

    public override QuantizerOutput forward(Tensor z)
    {
        long b = z.shape[0], e = z.shape[1], h = z.shape[2], w = z.shape[3];
        z = Modules.MixedPrecision.Float(z); // the code search and its losses in float32 whatever the precision
        var flat = z.permute(0, 2, 3, 1).reshape(-1, e);
        if (l2Normalize) flat = functional.normalize(flat, dim: 1);
        var codebook = Codebook;
        var indices = NearestCode(flat, codebook);
        var zq = codebook.index_select(0, indices);
        var loss = (zq - flat.detach()).pow(2).mean() + beta * (zq.detach() - flat).pow(2).mean();
        zq = flat + (zq - flat).detach(); // straight-through: the decoder's gradient flows to the encoder
        return new QuantizerOutput(ToGrid(zq, b, h, w), loss, indices.reshape(b, h, w), flat.detach());
    }

    /// <summary>Index of the nearest code for each row: argmin ‖x‖² + ‖c‖² − 2x·c.</summary>
    public static Tensor NearestCode(Tensor flat, Tensor codebook)
    {
        using var scope = NewDisposeScope();
        var distances = flat.pow(2).sum(1, keepdim: true) + codebook.pow(2).sum(1) - 2 * flat.matmul(codebook.t());
        return distances.argmin(1).MoveToOuterDisposeScope();
    }

    /// <summary>z_q (b, e, h, w) for codebook ids (b, h, w).</summary>
    public Tensor LookupGrid(Tensor indices) =>
        ToGrid(Codebook.index_select(0, indices.flatten()), indices.shape[0], indices.shape[1], indices.shape[2]);

    /// <summary>Rows of code vectors (b·h·w, e) as a (b, e, h, w) grid (a view).</summary>
    private static Tensor ToGrid(Tensor rows, long b, long h, long w) => rows.reshape(b, h, w, -1).permute(0, 3, 1, 2);

    /// <summary>Replaces the given codes by randomly chosen lookup vectors of the current batch (plus a little
    /// noise so that two restarts from one vector can separate). The draws come from <paramref name="generator"/> on the
    /// CPU (the same restarts on every device) and are then moved to the inputs' device.</summary>
    public void Restart(long[] deadCodes, Tensor inputs, Generator? generator = null)
    {
        if (deadCodes.Length == 0) return;
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var weight = embedding.weight!;
        var pick = randint(inputs.shape[0], new long[] { deadCodes.Length }, generator: generator).to(inputs.device);
        var fresh = inputs.index_select(0, pick);
        fresh = fresh + 0.01 * fresh.std() * randn(fresh.shape, generator: generator).to(fresh.device);
        weight.index_copy_(0, tensor(deadCodes, device: weight.device), fresh.to(weight.dtype));
    }
}
