using Taming.ML.Modules;
using Taming.ML.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Taming.ML.Tests;

[TestClass]
public sealed class OptimizerTests
{
    /// <summary>Two identical small networks (linear, conv, norm, embedding parameters).</summary>
    private static (nn.Module<Tensor, Tensor> A, nn.Module<Tensor, Tensor> B) Twins()
    {
        nn.Module<Tensor, Tensor> Make()
        {
            random.manual_seed(3);
            return nn.Sequential(nn.Linear(6, 8), nn.LayerNorm(8), nn.GELU(), nn.Linear(8, 3));
        }
        return (Make(), Make());
    }

    private static Tensor Loss(nn.Module<Tensor, Tensor> net, int step)
    {
        random.manual_seed(100 + step);
        var x = randn(16, 6);
        return (net.forward(x) - x[.., ..3].sin()).square().mean() * 10;
    }

    [TestMethod]
    public void MatchesTorchSharpAdamElementForElement()
    {
        var (a, b) = Twins();
        var reference = optim.Adam(a.parameters(), 0.01, beta1: 0.5, beta2: 0.9);
        using var flat = new FlatAdam(new[] { (b.parameters(), 0.0) }, beta1: 0.5, beta2: 0.9) { LearningRate = 0.01 };
        float start = Loss(b, 99).item<float>();
        for (int step = 0; step < 20; step++)
        {
            double lr = 0.01 * (step < 5 ? (step + 1) / 5.0 : Math.Cos(step / 20.0)); // a schedule: the rate reaches the device every step
            foreach (var g in reference.ParamGroups) g.LearningRate = lr;
            flat.LearningRate = lr;
            reference.zero_grad();
            Loss(a, step).backward();
            reference.step();
            flat.ZeroGrad();
            Loss(b, step).backward();
            flat.Step();
        }
        foreach (var ((name, pa), (_, pb)) in a.named_parameters().Zip(b.named_parameters()))
            Assert.IsTrue(pa.eq(pb).all().item<bool>(), $"{name} differs from TorchSharp's Adam after 20 steps on a schedule");
        Assert.IsTrue(Loss(b, 99).item<float>() < start, "the loss did not fall");
    }

    [TestMethod]
    public void MatchesTorchSharpAdamWWithClippingAndDecayGroups()
    {
        var (a, b) = Twins();
        var decayA = a.named_parameters().Where(p => p.name.EndsWith("weight")).Select(p => p.parameter).ToList();
        var restA = a.named_parameters().Where(p => !p.name.EndsWith("weight")).Select(p => p.parameter).ToList();
        var reference = optim.AdamW(new[]
        {
            new TorchSharp.Modules.AdamW.ParamGroup(decayA, new TorchSharp.Modules.AdamW.Options { weight_decay = 0.1 }),
            new TorchSharp.Modules.AdamW.ParamGroup(restA, new TorchSharp.Modules.AdamW.Options { weight_decay = 0 }),
        }, 0.01, beta1: 0.9, beta2: 0.95);
        var decayB = b.named_parameters().Where(p => p.name.EndsWith("weight")).Select(p => p.parameter);
        var restB = b.named_parameters().Where(p => !p.name.EndsWith("weight")).Select(p => p.parameter);
        using var flat = new FlatAdam(new[] { (decayB, 0.1), (restB, 0.0) }, beta1: 0.9, beta2: 0.95) { LearningRate = 0.01 };
        for (int step = 0; step < 20; step++)
        {
            reference.zero_grad();
            Loss(a, step).backward();
            nn.utils.clip_grad_norm_(a.parameters(), 0.5); // the loss is scaled so that clipping is active
            reference.step();
            flat.ZeroGrad();
            Loss(b, step).backward();
            flat.ClipGradNorm(0.5);
            flat.Step();
        }
        foreach (var ((name, pa), (_, pb)) in a.named_parameters().Zip(b.named_parameters()))
            Assert.IsTrue(allclose(pa, pb, rtol: 1e-5, atol: 1e-6), $"{name} differs from TorchSharp's AdamW after 20 clipped steps");
    }

    [TestMethod]
    public void ParametersOutliveTheOptimizer()
    {
        var (_, b) = Twins();
        var flat = new FlatAdam(new[] { (b.parameters(), 0.0) }, beta1: 0.9, beta2: 0.999);
        flat.ZeroGrad();
        Loss(b, 0).backward();
        flat.Step();
        var before = b.parameters().Select(p => p.detach().clone()).ToList();
        flat.Dispose();
        GC.Collect();
        // The weights survive, train further with another optimizer, and save.
        foreach (var (p, q) in b.parameters().Zip(before)) Assert.IsTrue(p.eq(q).all().item<bool>(), "a parameter changed when the optimizer was disposed");
        Assert.IsTrue(b.parameters().All(p => p.grad is null), "the optimizer's gradient views outlived it");
        var again = optim.Adam(b.parameters(), 0.01);
        Loss(b, 1).backward();
        again.step();
        using var stream = new MemoryStream();
        b.save(new BinaryWriter(stream));
        Assert.IsTrue(stream.Length > 0);
    }

    /// <summary>A small network whose layers go through the mixed-precision extensions: a convolution and a group norm
    /// (bf16 weights), a layer norm (float32) and a linear head (bf16).</summary>
    private sealed class MixedNet : nn.Module<Tensor, Tensor>
    {
        private readonly TorchSharp.Modules.Conv2d conv = nn.Conv2d(3, 8, 3, padding: 1);
        private readonly TorchSharp.Modules.GroupNorm norm = Normalize.Create(8, 4);
        private readonly TorchSharp.Modules.LayerNorm ln = nn.LayerNorm(8);
        private readonly TorchSharp.Modules.Linear head = nn.Linear(8, 2);

        public MixedNet() : base(nameof(MixedNet))
        {
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            var h = nn.functional.silu(norm.Autocast(conv.Autocast(x))).mean(new long[] { 2, 3 });
            return MixedPrecision.Float(head.Autocast(ln.Autocast(h)));
        }
    }

    [TestMethod]
    public void ComputeCopiesTrainAsCastingEachWeightDoes()
    {
        // With bf16 copies, each weight's bf16 value and gradient are those the per-step casts would give, so the
        // float32 parameters follow the same path; float32 uses (the layer norm) and clipping go through the same sums.
        MixedNet Make() { random.manual_seed(5); return new MixedNet(); }
        var (cast, copied) = (Make(), Make());
        using var precision = MixedPrecision.Enter(Models.Precision.BFloat16);
        using var plain = new FlatAdam(new[] { (cast.parameters(), 0.0) }, beta1: 0.5, beta2: 0.9) { LearningRate = 0.01 };
        using var flat = new FlatAdam(new[] { (copied.parameters(), 0.0) }, beta1: 0.5, beta2: 0.9,
            computeDtype: ScalarType.BFloat16) { LearningRate = 0.01 };
        Assert.AreEqual(copied.parameters().Count(), flat.ComputeCopies.Count, "a parameter has no copy");
        Assert.IsTrue(flat.ComputeCopies.Values.All(c => c.dtype == ScalarType.BFloat16 && c.is_leaf && c.requires_grad));
        Assert.AreEqual(0, plain.ComputeCopies.Count, "copies were made without a compute dtype");
        Tensor Loss(MixedNet net, int step)
        {
            random.manual_seed(200 + step);
            var x = randn(4, 3, 5, 5);
            return (net.forward(x) - randn(4, 2)).square().mean() * 10;
        }
        for (int step = 0; step < 8; step++)
        {
            plain.ZeroGrad();
            Loss(cast, step).backward();
            plain.ClipGradNorm(0.5);
            plain.Step();
            using (MixedPrecision.Training(flat.ComputeCopies))
            {
                flat.ZeroGrad();
                Loss(copied, step).backward();
                flat.ClipGradNorm(0.5);
                flat.Step();
            }
        }
        foreach (var ((name, a), (_, b)) in cast.named_parameters().Zip(copied.named_parameters()))
        {
            Assert.AreEqual(ScalarType.Float32, b.dtype);
            Assert.IsTrue(allclose(a, b, rtol: 1e-6, atol: 1e-7), $"{name} took another path with copies: {(a - b).abs().max().item<float>()} of {a.abs().max().item<float>()}");
            Assert.IsFalse(a.eq(Make().named_parameters().First(p => p.name == name).parameter).all().item<bool>(), $"{name} did not train");
        }
        var weight = copied.named_parameters().First(p => p.name == "conv.weight").parameter;
        using (MixedPrecision.Training(flat.ComputeCopies))
            Assert.AreSame(flat.ComputeCopies[weight], MixedPrecision.Differentiated(weight), "the scope differentiates another tensor");
        Assert.AreSame(weight, MixedPrecision.Differentiated(weight), "outside the scope the parameter is differentiated");
        Assert.IsTrue(flat.ComputeCopies[weight].to(ScalarType.Float32).eq(weight.to(ScalarType.BFloat16).to(ScalarType.Float32)).all().item<bool>(),
            "the copy does not hold the parameter's current value");
    }

    [TestMethod]
    public void ContinuedFitsStartWhereTheLastEndedAndNeverDecayBelowAHundredth()
    {
        const double rate = 1e-3;
        var fresh = LearningRateSchedule.For(rate, warmupSteps: 10);
        Assert.AreEqual(rate / 10, fresh.At(0, 0), 1e-12, "the warm-up's first step");
        Assert.AreEqual(rate, fresh.At(0.02, 9), 1e-12, "the warm-up's last step reaches the peak");
        Assert.AreEqual(rate / 10, fresh.At(1, 500), 1e-12, "a tenth by the end");
        // A time budget that ends before the warm-up's steps do: the warm-up takes a tenth of the time, then it decays.
        var budgeted = LearningRateSchedule.For(rate, warmupSteps: 100);
        Assert.AreEqual(rate / 2, budgeted.At(0.05, 3), 1e-12, "halfway through a tenth of the budget");
        Assert.AreEqual(rate * 0.999, budgeted.At(0.0999, 6), 1e-12, "near the peak by a tenth of the budget, at step 6 of 100");
        Assert.IsTrue(budgeted.At(0.1, 6) is < rate and > rate * 0.97, "past a tenth, on down the cosine");
        Assert.AreEqual(rate * 0.55, budgeted.At(0.5, 30), 1e-12, "halfway down the cosine");
        Assert.AreEqual(rate / 10, budgeted.At(1, 58), 1e-12, "a tenth by the end of the budget, 58 steps in");

        // Continued again and again, each fit from where the last ended: a tenth of that, then held at a hundredth.
        double ended = fresh.At(1, 500);
        var ends = new List<double>();
        for (int fit = 0; fit < 3; fit++)
        {
            var continued = LearningRateSchedule.For(rate, warmupSteps: 10, ended);
            Assert.AreEqual(ended, continued.Peak, 1e-12, $"fit {fit} warms up to where the last ended");
            ended = continued.At(1, 500);
            ends.Add(ended);
        }
        CollectionAssert.AreEqual(new[] { 1e-5, 1e-5, 1e-5 }, ends.Select(e => Math.Round(e, 12)).ToArray());

        Assert.AreEqual(rate, LearningRateSchedule.For(rate, 10, ended, restart: true).Peak, "RestartLearningRate starts at the options' rate");
        Assert.AreEqual(5e-4, LearningRateSchedule.For(5e-4, 10, ended: 8e-4).Peak, "never above the options' rate");
    }
}
