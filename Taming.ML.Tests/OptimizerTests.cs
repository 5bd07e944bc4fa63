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
            reference.zero_grad();
            Loss(a, step).backward();
            reference.step();
            flat.ZeroGrad();
            Loss(b, step).backward();
            flat.Step();
        }
        foreach (var ((name, pa), (_, pb)) in a.named_parameters().Zip(b.named_parameters()))
            Assert.IsTrue(pa.eq(pb).all().item<bool>(), $"{name} differs from TorchSharp's Adam after 20 steps");
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
}
