using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Taming.ML.Evaluation;

/// <summary>Per-image quality measures on (b, c, h, w) tensors of 0–255 values.</summary>
public static class ImageQuality
{
    /// <summary>PSNR per image in dB; identical images give +∞.</summary>
    public static double[] Psnr(Tensor reference, Tensor test)
    {
        using var scope = NewDisposeScope();
        var mse = (reference.to(ScalarType.Float64) - test.to(ScalarType.Float64)).pow(2).flatten(1).mean(new long[] { 1 });
        return (10 * torch.log10(255.0 * 255.0 / mse)).data<double>().ToArray();
    }

    /// <summary>Mean SSIM per image (Wang et al. 2004: Gaussian window 11, σ 1.5, K1 0.01, K2 0.03, averaged over channels).</summary>
    public static double[] Ssim(Tensor reference, Tensor test)
    {
        using var scope = NewDisposeScope();
        var x = reference.to(ScalarType.Float64);
        var y = test.to(ScalarType.Float64);
        long c = x.shape[1];
        int size = (int)Math.Min(11, Math.Min(x.shape[2], x.shape[3]));
        var g = arange(size, dtype: ScalarType.Float64) - (size - 1) / 2.0;
        g = exp(-g.pow(2) / (2 * 1.5 * 1.5));
        g = g / g.sum();
        var window = g.outer(g).expand(c, 1, size, size).contiguous();
        Tensor Filter(Tensor t) => functional.conv2d(t, window, groups: c);
        double c1 = Math.Pow(0.01 * 255, 2), c2 = Math.Pow(0.03 * 255, 2);
        var mx = Filter(x);
        var my = Filter(y);
        var sxx = Filter(x * x) - mx * mx;
        var syy = Filter(y * y) - my * my;
        var sxy = Filter(x * y) - mx * my;
        var map = (2 * mx * my + c1) * (2 * sxy + c2) / ((mx * mx + my * my + c1) * (sxx + syy + c2));
        return map.flatten(1).mean(new long[] { 1 }).data<double>().ToArray();
    }
}
