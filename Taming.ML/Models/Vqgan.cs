using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using Taming.ML.Modules;
using Taming.ML.Quantization;

namespace Taming.ML.Models;

/// <summary>
/// The VQGAN autoencoder (the reference's VQModel): Encoder → 1×1 quant_conv → VectorQuantizer →
/// 1×1 post_quant_conv → Decoder. Images are (b, c, h, w) floats in [−1, 1].
/// </summary>
public sealed class Vqgan : Module<Tensor, (Tensor Reconstruction, Tensor QuantizerLoss, Tensor Indices)>
{
    private readonly Encoder encoder;
    private readonly Decoder decoder;
    private readonly TorchSharp.Modules.Conv2d quant_conv, post_quant_conv;
    private readonly VectorQuantizer quantize;

    /// <summary>Builds an untrained model for validated options.</summary>
    public Vqgan(VqganOptions options) : base(nameof(Vqgan))
    {
        Native.TorchRuntime.EnsureLoaded(); // once per process: also checks the CPU's oneDNN convolutions
        options.Validate();
        Options = options.Clone();
        encoder = new Encoder(options);
        decoder = new Decoder(options);
        quant_conv = Conv2d(options.ZChannels, options.EmbedDim, 1);
        quantize = new VectorQuantizer(options.CodebookSize, options.EmbedDim, options.Beta, options.L2NormalizeCodes);
        post_quant_conv = Conv2d(options.EmbedDim, options.ZChannels, 1);
        RegisterComponents();
    }

    /// <summary>Images (or quantized vectors) in the layout the encoder and decoder run in on their device, for
    /// training or inference (<see cref="VqganOptions.ChannelsLast"/>, read at each call so that a loaded model's can be
    /// changed).</summary>
    internal Tensor InLayout(Tensor x) => MemoryLayout.Preferred(x,
        MemoryLayout.ChannelsLast(Options.ChannelsLast, x.device_type, Options.ChMult.Select(m => (long)Options.Ch * m), is_grad_enabled()));

    /// <summary>The options the model was built with.</summary>
    public VqganOptions Options { get; }

    internal VectorQuantizer Quantizer => quantize;

    /// <summary>G_L of the adaptive GAN weight: the decoder's last convolution weight.</summary>
    internal Tensor LastLayerWeight => decoder.LastLayerWeight;

    /// <summary>Encodes and quantizes: z_q (straight-through), quantizer loss, ids (b, h, w), lookup vectors.</summary>
    internal QuantizerOutput Encode(Tensor x)
    {
        using var precision = MixedPrecision.Enter(Options.Precision);
        return quantize.forward(quant_conv.Autocast(encoder.forward(InLayout(x))));
    }

    /// <summary>Codebook ids (b, h, w) for images (b, c, h, w) in [−1, 1].</summary>
    public Tensor Tokenize(Tensor x)
    {
        using var scope = NewDisposeScope();
        return Encode(x).Indices.MoveToOuterDisposeScope();
    }

    /// <summary>Decodes quantized vectors (b, e, h, w) to images.</summary>
    public Tensor Decode(Tensor zq)
    {
        using var precision = MixedPrecision.Enter(Options.Precision);
        return MixedPrecision.Float(decoder.forward(post_quant_conv.Autocast(InLayout(zq))));
    }

    /// <summary>Decodes codebook ids (b, h, w) to images (b, c, H, W) in about [−1, 1].</summary>
    public Tensor DecodeTokens(Tensor indices)
    {
        using var scope = NewDisposeScope();
        var zq = quantize.LookupGrid(indices);
        return Decode(zq).MoveToOuterDisposeScope();
    }

    /// <summary>Reconstruction, quantizer loss and ids for images in [−1, 1].</summary>
    public override (Tensor Reconstruction, Tensor QuantizerLoss, Tensor Indices) forward(Tensor x)
    {
        var q = Encode(x);
        return (Decode(q.Quantized), q.Loss, q.Indices);
    }
}
