using static TorchSharp.torch;

namespace Taming.ML.Evaluation;

/// <summary>
/// The Fréchet distance between Gaussians fitted to two sets of features, as FID computes it:
/// ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁^½ Σ₂ Σ₁^½)^½). The matrix square roots come from eigen-decompositions of symmetric
/// matrices in float64 (tiny negative eigenvalues from rounding count as 0), which stays real and stable even when
/// the covariances are singular (fewer samples than dimensions).
/// </summary>
public static class FrechetDistance
{
    /// <summary>The distance between the feature sets <paramref name="a"/> (n₁, d) and <paramref name="b"/> (n₂, d), n ≥ 2.</summary>
    public static double Between(Tensor a, Tensor b)
    {
        if (a.dim() != 2 || b.dim() != 2 || a.shape[1] != b.shape[1])
            throw new ArgumentException($"Feature sets must be (n, d) with the same d; got {string.Join("×", a.shape)} and {string.Join("×", b.shape)}.");
        if (a.shape[0] < 2 || b.shape[0] < 2) throw new ArgumentException("Each feature set needs at least two rows for a covariance.");
        using var scope = NewDisposeScope();
        var (m1, c1) = Moments(a);
        var (m2, c2) = Moments(b);
        return FromMoments(m1, c1, m2, c2);
    }

    /// <summary>The distance between N(<paramref name="mean1"/>, <paramref name="cov1"/>) and N(<paramref name="mean2"/>, <paramref name="cov2"/>).</summary>
    public static double FromMoments(Tensor mean1, Tensor cov1, Tensor mean2, Tensor cov2)
    {
        using var scope = NewDisposeScope();
        var (mu1, s1, mu2, s2) = (mean1.to(ScalarType.Float64), cov1.to(ScalarType.Float64), mean2.to(ScalarType.Float64), cov2.to(ScalarType.Float64));
        if (!s1.isfinite().all().item<bool>() || !s2.isfinite().all().item<bool>() || !mu1.isfinite().all().item<bool>() || !mu2.isfinite().all().item<bool>())
            throw new ArgumentException("The features hold NaN or infinite values.");
        var root1 = SymmetricSqrt(s1);
        var middle = root1.matmul(s2).matmul(root1);
        var traceRoot = linalg.eigvalsh(Symmetric(middle)).clamp_min(0).sqrt().sum();
        var distance = (mu1 - mu2).square().sum() + s1.trace() + s2.trace() - 2 * traceRoot;
        return Math.Max(0, distance.item<double>());
    }

    /// <summary>Mean (d) and unbiased covariance (d, d) of rows (n, d), in float64.</summary>
    public static (Tensor Mean, Tensor Covariance) Moments(Tensor features)
    {
        var x = features.to(ScalarType.Float64);
        var mean = x.mean(new long[] { 0 });
        var centred = x - mean;
        return (mean, centred.t().matmul(centred) / (x.shape[0] - 1));
    }

    private static Tensor Symmetric(Tensor m) => (m + m.t()) / 2;

    private static Tensor SymmetricSqrt(Tensor m)
    {
        var (values, vectors) = linalg.eigh(Symmetric(m));
        return (vectors * values.clamp_min(0).sqrt().unsqueeze(0)).matmul(vectors.t());
    }
}
