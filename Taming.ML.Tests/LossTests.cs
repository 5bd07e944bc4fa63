using Taming.ML.Losses;
using TorchSharp;
using static TorchSharp.torch;

namespace Taming.ML.Tests;

[TestClass]
public sealed class LossTests
{
    [TestMethod]
    public void AdaptiveWeightMatchesHandComputation()
    {
        // L_rec = Σ a⊙W and L_GAN = Σ (b⊙W)·2 have gradients a and 2b with respect to W.
        var w = tensor(new float[] { 0.5f, -1f, 2f }).requires_grad_(true);
        var a = tensor(new float[] { 3f, 0f, 4f });
        var b = tensor(new float[] { 1f, 2f, 2f });
        var rec = (a * w).sum();
        var gan = (b * w).sum() * 2;
        double lambda = GanLosses.AdaptiveWeight(rec, gan, w, delta: 1e-4).item<float>();
        Assert.AreEqual(5.0 / (6.0 + 1e-4), lambda, 1e-6);
    }

    [TestMethod]
    public void AdaptiveWeightMatchesFiniteDifferencesOnATinyNet()
    {
        random.manual_seed(5);
        var lin1 = nn.Linear(4, 3);
        var last = nn.Linear(3, 2);
        var x = randn(6, 4);
        var target = randn(6, 2);
        Tensor Rec() => (last.forward(nn.functional.silu(lin1.forward(x))) - target).abs().mean();
        Tensor Gan() => -last.forward(nn.functional.silu(lin1.forward(x))).pow(2).mean();
        double lambda = GanLosses.AdaptiveWeight(Rec(), Gan(), last.weight!, 1e-4).item<float>();

        double GradNorm(Func<Tensor> loss)
        {
            using var _ = no_grad();
            var weight = last.weight!;
            double sum = 0, eps = 1e-3;
            for (int i = 0; i < weight.numel(); i++)
            {
                var flat = weight.view(-1);
                float old = flat[i].item<float>();
                flat[i] = old + (float)eps;
                double plus = loss().item<float>();
                flat[i] = old - (float)eps;
                double minus = loss().item<float>();
                flat[i] = old;
                sum += Math.Pow((plus - minus) / (2 * eps), 2);
            }
            return Math.Sqrt(sum);
        }
        double expected = GradNorm(Rec) / (GradNorm(Gan) + 1e-4);
        Assert.AreEqual(expected, lambda, 0.02 * expected);
    }

    [TestMethod]
    public void HingeLossesHaveTheReferenceValues()
    {
        var real = tensor(new float[] { 2f, 0f });   // relu(1−x): 0, 1 → mean 0.5
        var fake = tensor(new float[] { -3f, 1f });  // relu(1+x): 0, 2 → mean 1
        Assert.AreEqual(0.75, GanLosses.DiscriminatorHinge(real, fake).item<float>(), 1e-6);
        Assert.AreEqual(1.0, GanLosses.Generator(fake).item<float>(), 1e-6);
    }
}
