using static TorchSharp.torch;

namespace Taming.ML.Tests;

/// <summary>
/// In inference each block of the encoder, decoder and GPT frees its intermediate tensors as the next block runs, so
/// what a pass leaves alive in the caller's dispose scope (and its peak memory) does not grow with the network's depth.
/// </summary>
[TestClass]
public sealed class InferenceMemoryTests
{
    private static int LeftAlive(Func<Tensor> pass, bool grad = false)
    {
        using var _ = grad ? enable_grad() : no_grad();
        using var scope = NewDisposeScope();
        pass();
        return scope.DisposablesCount;
    }

    [TestMethod]
    public void InferenceLeavesAsManyTensorsAliveWhateverTheDepth()
    {
        Vqgan Vqgan(int resBlocks) { var o = TinyData.Options(); o.NumResBlocks = resBlocks; var m = new Vqgan(o); m.eval(); return m; }
        using var shallowVqgan = Vqgan(1);
        using var deepVqgan = Vqgan(4);
        using var zq = randn(2, TinyData.Options().EmbedDim, 4, 4);
        using var images = rand(2, 1, TinyData.Side, TinyData.Side) * 2 - 1;
        Assert.AreEqual(LeftAlive(() => shallowVqgan.Decode(zq)), LeftAlive(() => deepVqgan.Decode(zq)));
        Assert.AreEqual(LeftAlive(() => shallowVqgan.Encode(images).Indices), LeftAlive(() => deepVqgan.Encode(images).Indices));

        var layout = new PriorLayout(Conditioning.None, 8, 2, 2);
        Gpt Gpt(int layers) { var m = new Gpt(new GptOptions { Layers = layers, Heads = 2, Width = 16 }, layout); m.eval(); return m; }
        using var shallowGpt = Gpt(1);
        using var deepGpt = Gpt(5);
        using var ids = randint(0, 8, new long[] { 2, 4 });
        Assert.AreEqual(LeftAlive(() => shallowGpt.forward(ids)), LeftAlive(() => deepGpt.forward(ids)));
        // Training keeps them (autograd needs the activations), which the count sees.
        Assert.IsTrue(LeftAlive(() => deepGpt.forward(ids), grad: true) > LeftAlive(() => shallowGpt.forward(ids), grad: true));
    }
}
