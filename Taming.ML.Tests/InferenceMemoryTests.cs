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

    [TestMethod]
    public void AttentionOverAWholeImagesTokensIsExactAndNeverHoldsAllScores()
    {
        random.manual_seed(7);
        using var block = new Taming.ML.Modules.AttnBlock(8, 4);
        block.eval();
        var parts = block.named_children().ToDictionary(c => c.name, c => (nn.Module<Tensor, Tensor>)c.module);
        using var _ = no_grad();
        // softmax(qkᵀ/√c)·v written out, below and from the size where it runs fused.
        foreach (int side in new[] { 32, 64 })
        {
            var x = randn(1, 8, side, side);
            var hn = parts["norm"].forward(x);
            Tensor Tokens(string name) => parts[name].forward(hn).reshape(1, 8, side * side).transpose(1, 2);
            var attended = (Tokens("q").matmul(Tokens("k").transpose(1, 2)) / Math.Sqrt(8)).softmax(-1).matmul(Tokens("v"));
            var expected = x + parts["proj_out"].forward(attended.transpose(1, 2).reshape(1, 8, side, side));
            Assert.IsTrue(block.forward(x).allclose(expected, rtol: 1e-4, atol: 1e-5), $"{side}×{side}");
        }
        // 160×160 positions: all scores at once would be 2.6 GB (a 1024×640 photo's 256×160 tokens: 6.7 GB per image).
        var map = randn(1, 8, 160, 160);
        long before = Environment.WorkingSet, most = before;
        bool done = false;
        var watch = new Thread(() => { while (!Volatile.Read(ref done)) { most = Math.Max(most, Environment.WorkingSet); Thread.Sleep(2); } });
        watch.Start();
        block.forward(map).Dispose();
        Volatile.Write(ref done, true);
        watch.Join();
        Assert.IsTrue(most - before < 500_000_000, $"the attention took {(most - before) / 1e6:F0} MB");
    }
}
