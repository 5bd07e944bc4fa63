using static TorchSharp.torch;

namespace Taming.ML.Losses;

/// <summary>
/// A differentiable perceptual distance between two image batches (b, c, h, w) in [−1, 1], returning one
/// value per image (b) — the role LPIPS plays in the reference. Used when
/// <see cref="Models.VqganOptions.PerceptualWeight"/> is above 0.
/// </summary>
public interface IPerceptualDistance
{
    /// <summary>Per-image distance, shape (b).</summary>
    Tensor Distance(Tensor x, Tensor y);
}
