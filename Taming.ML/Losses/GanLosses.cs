using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Taming.ML.Losses;

/// <summary>The GAN pieces of the reference's VQLPIPSWithDiscriminator.</summary>
internal static class GanLosses
{
    /// <summary>Hinge loss of the discriminator: ½(mean(relu(1 − D(x))) + mean(relu(1 + D(x̂)))).</summary>
    public static Tensor DiscriminatorHinge(Tensor logitsReal, Tensor logitsFake) =>
        0.5 * (functional.relu(1 - logitsReal).mean() + functional.relu(1 + logitsFake).mean());

    /// <summary>The generator's GAN term: −mean(D(x̂)).</summary>
    public static Tensor Generator(Tensor logitsFake) => -logitsFake.mean();

    /// <summary>
    /// λ = ‖∇_{G_L} L_rec‖ / (‖∇_{G_L} L_GAN‖ + δ), clamped to [0, 10⁴] and detached, as the reference
    /// computes it (without the disc_weight factor). Both losses must still hold their graphs.
    /// </summary>
    public static Tensor AdaptiveWeight(Tensor reconstructionLoss, Tensor ganLoss, Tensor lastLayer, double delta)
    {
        var recGrad = autograd.grad(new[] { reconstructionLoss }, new[] { lastLayer }, retain_graph: true)[0];
        var ganGrad = autograd.grad(new[] { ganLoss }, new[] { lastLayer }, retain_graph: true)[0];
        return (recGrad.norm() / (ganGrad.norm() + delta)).clamp(0.0, 1e4).detach();
    }
}
