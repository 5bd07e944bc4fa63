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
    /// λ = ‖∇_{G_L} L_rec‖ / (‖∇_{G_L} L_GAN‖ + δ), clamped to [0, 10⁴] and detached, as the reference computes it
    /// (without the disc_weight factor), from the gradients the two losses send into the reconstruction x̂ that the
    /// last layer G_L outputs: ∇_{G_L} L = (∂x̂/∂G_L)ᵀ ∂L/∂x̂, a backward pass through the last layer alone.
    /// </summary>
    public static Tensor AdaptiveWeight(Tensor reconstruction, Tensor recGrad, Tensor ganGrad, Tensor lastLayer, double delta)
    {
        Tensor Pullback(Tensor g) => // in float32 also when G_L is a bf16 copy
            Modules.MixedPrecision.Float(autograd.grad(new[] { reconstruction }, new[] { lastLayer }, new[] { g }, retain_graph: true)[0]);
        return (Pullback(recGrad).norm() / (Pullback(ganGrad).norm() + delta)).clamp(0.0, 1e4).detach();
    }

    /// <summary>
    /// The autoencoder step's backward pass for L = L_rec + w·λ·L_GAN + <paramref name="rest"/>, with the adaptive λ
    /// (<see cref="AdaptiveWeight"/>) and w = <paramref name="discWeight"/>; returns w·λ. The reference differentiates
    /// L_rec and L_GAN with respect to G_L and then L as a whole, so the discriminator (and the perceptual network)
    /// are differentiated twice and the discriminator's weights get gradients nobody uses. Here each loss is
    /// differentiated once, down to x̂; both λ gradients come from those through the last layer; and gR + w·λ·gG goes
    /// on from x̂ through the decoder and encoder: the same gradients for the autoencoder, none for the discriminator.
    /// <paramref name="reconstruction"/> must be the only way the two losses depend on the autoencoder.
    /// </summary>
    public static Tensor BackwardWithAdaptiveWeight(Tensor reconstruction, Tensor recLoss, Tensor ganLoss, Tensor rest,
        Tensor lastLayer, double delta, double discWeight)
    {
        var recGrad = autograd.grad(new[] { recLoss }, new[] { reconstruction })[0];
        var ganGrad = autograd.grad(new[] { ganLoss }, new[] { reconstruction })[0];
        var lambda = AdaptiveWeight(reconstruction, recGrad, ganGrad, lastLayer, delta) * discWeight;
        autograd.backward(new[] { reconstruction, rest }, new[] { recGrad + lambda * ganGrad, ones_like(rest) });
        return lambda;
    }
}
