namespace Taming.ML.Evaluation;

/// <summary>How generated images compare with real ones (the generator's counterpart of ML.NET's metrics classes).</summary>
public sealed class GenerationMetrics
{
    /// <summary>Generated images evaluated.</summary>
    public int Count { get; init; }
    /// <summary>Real images they were compared with.</summary>
    public int RealCount { get; init; }
    /// <summary>
    /// Fréchet distance between ResNet18 pooled features (512-d) of the generated and the real images (lower is
    /// better). FID-style, not comparable with Inception-based FIDs; biased upwards on few images, so compare it at
    /// equal counts.
    /// </summary>
    public double Fid { get; init; }
    /// <summary>Kernel distance (<see cref="KernelDistance"/>) between the same features (lower is better): unbiased, so
    /// comparable across image counts, also over a few dozen images.</summary>
    public double Kid { get; init; }
    /// <summary>Class consistency: the share of generated images that a classifier trained on real data assigns to
    /// the class they were asked for, overall and per class (null without a classifier).</summary>
    public ClassificationMetrics? ClassConsistency { get; init; }

    /// <inheritdoc />
    public override string ToString() =>
        $"FID {Fid:F2}  KID {Kid:F4} ({Count} generated vs {RealCount} real)" + (ClassConsistency is null ? "" : $"  class consistency {ClassConsistency}");
}
