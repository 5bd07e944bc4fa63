using Taming.ML.Losses;
using Taming.ML.Modules;
using Taming.ML.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Taming.ML.Tests;

[TestClass]
public sealed class LossTests
{
    [TestMethod]
    public void AdaptiveWeightMatchesHandComputation()
    {
        // x̂ = W, so the losses' gradients with respect to x̂ are theirs with respect to W: a and 2b.
        var w = tensor(new float[] { 0.5f, -1f, 2f }).requires_grad_(true);
        var reconstruction = w * 1;
        var a = tensor(new float[] { 3f, 0f, 4f });
        var b = tensor(new float[] { 1f, 2f, 2f });
        double lambda = GanLosses.AdaptiveWeight(reconstruction, a, 2 * b, w, delta: 1e-4).item<float>();
        Assert.AreEqual(5.0 / (6.0 + 1e-4), lambda, 1e-6);
    }

    /// <summary>A two-layer generator (lin1 → SiLU → last) with a linear "discriminator".</summary>
    private sealed class TinyGan
    {
        public readonly TorchSharp.Modules.Linear Lin1, Last, Disc;
        private readonly Tensor x, target;

        public TinyGan()
        {
            random.manual_seed(5);
            Lin1 = nn.Linear(4, 3);
            Last = nn.Linear(3, 2);
            Disc = nn.Linear(2, 1);
            x = randn(6, 4);
            target = randn(6, 2);
        }

        public Tensor Reconstruct() => Last.forward(nn.functional.silu(Lin1.forward(x)));
        public Tensor Rec(Tensor reconstruction) => (reconstruction - target).abs().mean();
        public Tensor Gan(Tensor reconstruction) => -Disc.forward(reconstruction).pow(2).mean();
        public Tensor Rest() => 0.25 * Lin1.weight!.pow(2).sum(); // stands in for the quantizer loss
    }

    [TestMethod]
    public void AdaptiveWeightMatchesFiniteDifferencesOnATinyNet()
    {
        var net = new TinyGan();
        var y = net.Reconstruct();
        double lambda = GanLosses.BackwardWithAdaptiveWeight(y, net.Rec(y), net.Gan(y), net.Rest(), net.Last.weight!, 1e-4, 1.0).item<float>();

        double GradNorm(Func<Tensor, Tensor> loss)
        {
            using var _ = no_grad();
            var weight = net.Last.weight!;
            double sum = 0, eps = 1e-3;
            for (int i = 0; i < weight.numel(); i++)
            {
                var flat = weight.view(-1);
                float old = flat[i].item<float>();
                flat[i] = old + (float)eps;
                double plus = loss(net.Reconstruct()).item<float>();
                flat[i] = old - (float)eps;
                double minus = loss(net.Reconstruct()).item<float>();
                flat[i] = old;
                sum += Math.Pow((plus - minus) / (2 * eps), 2);
            }
            return Math.Sqrt(sum);
        }
        double expected = GradNorm(net.Rec) / (GradNorm(net.Gan) + 1e-4);
        Assert.AreEqual(expected, lambda, 0.02 * expected);
    }

    [TestMethod]
    public void TheOnePassBackwardGivesTheReferencesGradientsAndNoneToTheDiscriminator()
    {
        var o = TinyData.Options();
        random.manual_seed(2);
        using var model = new Vqgan(o);
        using var discriminator = new NLayerDiscriminator(o.Channels, o.DiscChannels, o.DiscLayers);
        var x = rand(4, o.Channels, o.Resolution, o.Resolution) * 2 - 1;
        (Tensor Reconstruction, Tensor Rec, Tensor Gan, Tensor Vq) Forward()
        {
            var q = model.Encode(x);
            var xrec = model.Decode(q.Quantized);
            return (xrec, (x - xrec).abs().mean(), GanLosses.Generator(discriminator.forward(xrec)), o.CodebookWeight * q.Loss);
        }

        var (xrec, rec, gan, vq) = Forward();
        double lambda = GanLosses.BackwardWithAdaptiveWeight(xrec, rec, gan, vq, model.LastLayerWeight, 1e-4, 0.8).item<float>();
        var grads = model.parameters().Select(p => p.grad!.clone()).ToList();
        Assert.IsTrue(discriminator.parameters().All(p => p.grad is null), "the discriminator got gradients from the autoencoder step");

        // The reference: λ from gradients with respect to the last layer's weight, then one backward of the whole loss.
        foreach (var p in model.parameters()) p.grad = null;
        (_, rec, gan, vq) = Forward();
        var w = model.LastLayerWeight;
        var recGrad = autograd.grad(new[] { rec }, new[] { w }, retain_graph: true)[0];
        var ganGrad = autograd.grad(new[] { gan }, new[] { w }, retain_graph: true)[0];
        var referenceLambda = (recGrad.norm() / (ganGrad.norm() + 1e-4)).clamp(0.0, 1e4).detach() * 0.8;
        (rec + referenceLambda * gan + vq).backward();

        Assert.AreEqual(referenceLambda.item<float>(), lambda, 1e-5 * Math.Abs(lambda));
        foreach (var (mine, theirs) in grads.Zip(model.parameters().Select(p => p.grad!)))
            Assert.IsTrue(mine.allclose(theirs, rtol: 1e-4, atol: 1e-6), $"gradients differ: {mine.str()} vs {theirs.str()}");
    }

    [TestMethod]
    public void InBFloat16TheAdaptiveWeightAndGradientsAreTheSameWithComputeCopies()
    {
        // Training in bf16 differentiates the optimizer's bf16 copies of the weights instead of per-step casts; λ is
        // taken with respect to G_L's copy then, and must come out as with the cast.
        var o = TinyData.Options();
        o.Precision = Precision.BFloat16;
        random.manual_seed(2);
        using var model = new Vqgan(o);
        using var discriminator = new NLayerDiscriminator(o.Channels, o.DiscChannels, o.DiscLayers);
        random.manual_seed(3);
        var x = rand(2, o.Channels, o.Resolution, o.Resolution) * 2 - 1;
        using var precision = MixedPrecision.Enter(o.Precision);
        (double Lambda, Tensor[] Grads) Step(FlatAdam optimizer, Tensor lastLayer)
        {
            optimizer.ZeroGrad();
            var q = model.Encode(x);
            var xrec = model.Decode(q.Quantized);
            var lambda = GanLosses.BackwardWithAdaptiveWeight(xrec, (x - xrec).abs().mean(), GanLosses.Generator(discriminator.forward(xrec)),
                o.CodebookWeight * q.Loss, lastLayer, 1e-4, 0.8);
            optimizer.ClipGradNorm(1e9); // adds the copies' gradients to the parameters'
            return (lambda.item<float>(), model.parameters().Select(p => p.grad!.clone()).ToArray());
        }
        (double Lambda, Tensor[] Grads) cast, copied;
        using (var plain = new FlatAdam(new[] { (model.parameters(), 0.0) }, beta1: 0.5, beta2: 0.9))
            cast = Step(plain, model.LastLayerWeight);
        using (var flat = new FlatAdam(new[] { (model.parameters(), 0.0) }, beta1: 0.5, beta2: 0.9, computeDtype: ScalarType.BFloat16))
        using (MixedPrecision.Training(flat.ComputeCopies))
        {
            var lastLayer = MixedPrecision.Differentiated(model.LastLayerWeight);
            Assert.AreEqual(ScalarType.BFloat16, lastLayer.dtype, "G_L is not the bf16 copy");
            copied = Step(flat, lastLayer);
        }
        Assert.IsTrue(cast.Lambda > 0);
        Assert.AreEqual(cast.Lambda, copied.Lambda, 1e-5 * cast.Lambda, "λ differs");
        foreach (var (a, b) in cast.Grads.Zip(copied.Grads))
            Assert.IsTrue(a.allclose(b, rtol: 1e-5, atol: 1e-7), "an autoencoder gradient differs");
    }

    [TestMethod]
    public void TheTrainingStepWritesItsOutputsAndLeavesTheDiscriminatorAloneBeforeTheGan()
    {
        // The iteration that a GPU captures as a graph: everything the trainer reads afterwards comes out through its
        // fixed output buffers, and before the GAN starts the discriminator does not move.
        var o = TinyData.Options();
        random.manual_seed(2);
        using var model = new Vqgan(o);
        using var discriminator = new NLayerDiscriminator(o.Channels, o.DiscChannels, o.DiscLayers);
        model.train();
        discriminator.train();
        using var optAe = new FlatAdam(new[] { (model.parameters(), 0.0) }, beta1: 0.5, beta2: 0.9) { LearningRate = 1e-3 };
        using var optD = new FlatAdam(new[] { (discriminator.parameters(), 0.0) }, beta1: 0.5, beta2: 0.9) { LearningRate = 1e-3 };
        using var step = new VqganTrainingStep(model, discriminator, optAe, optD, null, model.LastLayerWeight, o,
            new long[] { 4, o.Channels, o.Resolution, o.Resolution }, CPU);
        random.manual_seed(3);
        var x = rand(4, o.Channels, o.Resolution, o.Resolution) * 2 - 1;
        step.Input.copy_(x);
        Tensor expectedIndices, expectedL1;
        using (no_grad())
        {
            var q = model.Encode(x);
            (expectedIndices, expectedL1) = (q.Indices, (x - model.Decode(q.Quantized)).abs().mean());
        }
        var discriminatorBefore = discriminator.parameters().Select(p => p.clone()).ToArray();
        bool DiscriminatorUnchanged() => discriminator.parameters().Zip(discriminatorBefore).All(p => Same(p.First, p.Second));
        static bool Same(Tensor a, Tensor b) => a.eq(b).all().item<bool>();

        step.Run(gan: false);
        var losses = step.Losses.data<float>().ToArray();
        Assert.IsTrue(Same(step.Indices, expectedIndices), "the codes written are not the batch's");
        Assert.AreEqual(expectedL1.item<float>(), losses[0], 1e-6, "L1");
        Assert.IsTrue(losses[1] > 0 && losses[2] == 0 && losses[3] == 0, $"losses {string.Join(", ", losses)} before the GAN");
        Assert.IsTrue(DiscriminatorUnchanged(), "the discriminator moved");
        Assert.AreEqual(o.Resolution / 2 * (o.Resolution / 2) * 4, step.LookupVectors.shape[0]);

        step.Run(gan: true);
        losses = step.Losses.data<float>().ToArray();
        Assert.IsTrue(losses[3] > 0 && step.Lambda.item<float>() > 0, $"losses {string.Join(", ", losses)}, λ {step.Lambda.item<float>()} with the GAN");
        Assert.IsFalse(DiscriminatorUnchanged(), "the discriminator did not train");
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
