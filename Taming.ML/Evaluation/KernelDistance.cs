using static TorchSharp.torch;

namespace Taming.ML.Evaluation;

/// <summary>
/// The kernel distance between two sets of features, as KID computes it (Bińkowski et al. 2018): the unbiased estimate
/// of the squared maximum mean discrepancy under the cubic polynomial kernel k(x, y) = (x·y / d + 1)³. Unlike the
/// Fréchet distance it is unbiased, so figures over a few dozen images are comparable with figures over thousands;
/// the estimate may come out slightly below 0 when the sets come from one distribution. Paired sets (row i of one
/// made from row i of the other, as reconstructions are) leave each row's own pair out of the cross term, which
/// would otherwise pull the figure down by about 1/n (Gretton et al.'s U-statistic).
/// </summary>
public static class KernelDistance
{
    /// <summary>
    /// The distance between the feature sets <paramref name="a"/> (n₁, d) and <paramref name="b"/> (n₂, d), n ≥ 2: over
    /// the whole sets when both hold at most <paramref name="subsetSize"/> rows, else the mean over
    /// <paramref name="subsets"/> random subsets of that size (the usual 1000 and 100), drawn with <paramref name="seed"/>.
    /// With <paramref name="paired"/> the sets have equal length, row i of each belonging together.
    /// </summary>
    public static double Between(Tensor a, Tensor b, int subsetSize = 1000, int subsets = 100, int seed = 0, bool paired = false)
    {
        if (a.dim() != 2 || b.dim() != 2 || a.shape[1] != b.shape[1])
            throw new ArgumentException($"Feature sets must be (n, d) with the same d; got {string.Join("×", a.shape)} and {string.Join("×", b.shape)}.");
        if (paired && a.shape[0] != b.shape[0]) throw new ArgumentException($"Paired feature sets must have as many rows: {a.shape[0]} and {b.shape[0]}.");
        if (a.shape[0] < 2 || b.shape[0] < 2) throw new ArgumentException("Each feature set needs at least two rows.");
        if (subsetSize < 2 || subsets < 1) throw new ArgumentOutOfRangeException(nameof(subsetSize), "subsetSize must be at least 2 and subsets at least 1.");
        using var scope = NewDisposeScope();
        var (x, y) = (a.to(ScalarType.Float64), b.to(ScalarType.Float64));
        if (!x.isfinite().all().item<bool>() || !y.isfinite().all().item<bool>()) throw new ArgumentException("The features hold NaN or infinite values.");
        if (x.shape[0] <= subsetSize && y.shape[0] <= subsetSize) return Mmd(x, y, paired);
        long size = Math.Min(subsetSize, Math.Min(x.shape[0], y.shape[0]));
        // Subsets drawn on the host, so that features on any device are picked alike.
        var rng = new Random(seed);
        Tensor Pick(long count)
        {
            var order = Enumerable.Range(0, (int)count).ToArray();
            rng.Shuffle(order);
            return tensor(order.Take((int)size).Select(i => (long)i).ToArray(), device: x.device);
        }
        double sum = 0;
        for (int s = 0; s < subsets; s++)
        {
            using var inner = NewDisposeScope();
            var pickX = Pick(x.shape[0]);
            var pickY = paired ? pickX : Pick(y.shape[0]);
            sum += Mmd(x.index_select(0, pickX), y.index_select(0, pickY), paired);
        }
        return sum / subsets;
    }

    /// <summary>Unbiased MMD²: within-set kernel means without the diagonal, minus twice the cross-set mean (without
    /// the diagonal too for paired sets).</summary>
    private static double Mmd(Tensor x, Tensor y, bool paired)
    {
        long m = x.shape[0], n = y.shape[0];
        double d = x.shape[1];
        Tensor Kernel(Tensor p, Tensor q) => (p.matmul(q.t()) / d + 1).pow(3);
        double OffDiagonalMean(Tensor k) => (k.sum() - k.trace()).item<double>() / (k.shape[0] * (k.shape[0] - 1));
        var kxy = Kernel(x, y);
        double cross = paired ? OffDiagonalMean(kxy) : kxy.mean().item<double>();
        return OffDiagonalMean(Kernel(x, x)) + OffDiagonalMean(Kernel(y, y)) - 2 * cross;
    }
}
