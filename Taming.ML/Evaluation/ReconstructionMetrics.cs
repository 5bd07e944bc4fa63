namespace Taming.ML.Evaluation;

/// <summary>How well a tokenizer reconstructs a set of images (the tokenizer's counterpart of ML.NET's metrics classes).</summary>
public sealed class ReconstructionMetrics
{
    /// <summary>Images evaluated.</summary>
    public int Count { get; init; }
    /// <summary>Mean per-image peak signal-to-noise ratio on 0–255 pixels, in dB (higher is better).</summary>
    public double Psnr { get; init; }
    /// <summary>Mean structural similarity (Gaussian window 11, σ 1.5), 0–1 (higher is better).</summary>
    public double Ssim { get; init; }
    /// <summary>Mean absolute pixel error on a 0–1 scale (lower is better).</summary>
    public double L1 { get; init; }
    /// <summary>Share of the codebook used on this data, 0–1.</summary>
    public double CodebookUsage { get; init; }
    /// <summary>exp(entropy) of the code distribution on this data: how many equally likely codes it is worth.</summary>
    public double Perplexity { get; init; }

    /// <summary>
    /// Reconstruction FID: Fréchet distance between ResNet18 pooled features (512-d, <see cref="Perceptual.ResNet18Features"/>)
    /// of the originals and of the reconstructions (lower is better; NaN when not computed). An FID-style figure, not
    /// comparable with Inception-based FIDs; biased upwards on few images, so compare it at equal counts.
    /// </summary>
    public double Rfid { get; init; } = double.NaN;

    /// <summary>
    /// Reconstruction KID: the kernel distance (<see cref="KernelDistance"/>) between the same features (lower is better;
    /// NaN when not computed). Unbiased, so comparable across image counts, also over a few dozen images.
    /// </summary>
    public double Rkid { get; init; } = double.NaN;

    /// <inheritdoc />
    public override string ToString() =>
        $"PSNR {Psnr:F2} dB  SSIM {Ssim:F4}  L1 {L1:F4}  codebook usage {CodebookUsage:P1}  perplexity {Perplexity:F1}" +
        (double.IsNaN(Rfid) ? "" : $"  rFID {Rfid:F2}") + (double.IsNaN(Rkid) ? "" : $"  rKID {Rkid:F4}") + $"  ({Count} images)";
}
