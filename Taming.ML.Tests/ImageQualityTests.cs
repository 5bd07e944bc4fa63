using Taming.ML.Evaluation;
using static TorchSharp.torch;

namespace Taming.ML.Tests;

[TestClass]
public sealed class ImageQualityTests
{
    [TestMethod]
    public void PsnrOfAKnownPair()
    {
        var a = zeros(1, 1, 4, 4);
        var b = full(new long[] { 1, 1, 4, 4 }, 5f); // MSE 25 → 10·log10(255²/25)
        Assert.AreEqual(10 * Math.Log10(255.0 * 255 / 25), ImageQuality.Psnr(a, b)[0], 1e-9);
    }

    [TestMethod]
    public void SsimIsOneForIdenticalImagesAndFallsWithNoise()
    {
        random.manual_seed(1);
        var x = rand(2, 3, 16, 16) * 255;
        var same = ImageQuality.Ssim(x, x.clone());
        Assert.AreEqual(1.0, same[0], 1e-9);
        var noisy = (x + randn(2, 3, 16, 16) * 40).clamp(0, 255);
        Assert.IsTrue(ImageQuality.Ssim(x, noisy)[0] < 0.9);
    }

    [TestMethod]
    public void SsimOfAConstantShiftMatchesTheLuminanceTerm()
    {
        // Constant images a, b: SSIM = (2ab + C1) / (a² + b² + C1).
        var a = full(new long[] { 1, 1, 11, 11 }, 100f);
        var b = full(new long[] { 1, 1, 11, 11 }, 120f);
        double c1 = Math.Pow(0.01 * 255, 2);
        Assert.AreEqual((2 * 100.0 * 120 + c1) / (100.0 * 100 + 120.0 * 120 + c1), ImageQuality.Ssim(a, b)[0], 1e-9);
    }
}
