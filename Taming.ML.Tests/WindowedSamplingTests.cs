using Taming.ML.Sampling;
using static TorchSharp.torch;

namespace Taming.ML.Tests;

[TestClass]
public sealed class WindowedSamplingTests
{
    [TestMethod]
    public void LocalOffsetsFollowTheReferenceRuleAtEveryBorder()
    {
        // Window 4 (half 2) on a canvas of 10: local = i up to 2, then 2, then 4 − (10 − i) for the last row.
        CollectionAssert.AreEqual(new[] { 0, 1, 2, 2, 2, 2, 2, 2, 2, 3 }, Enumerable.Range(0, 10).Select(i => SlidingWindow.Local(i, 10, 4)).ToArray());
        // Window 16 (the reference's) on 32: 0…8, then 8, then 16 − (32 − i) for i ≥ 25.
        var reference = Enumerable.Range(0, 32).Select(i => i <= 8 ? i : 32 - i < 8 ? 16 - (32 - i) : 8).ToArray();
        CollectionAssert.AreEqual(reference, Enumerable.Range(0, 32).Select(i => SlidingWindow.Local(i, 32, 16)).ToArray());
        // Odd window 5 (half 2) on 7.
        CollectionAssert.AreEqual(new[] { 0, 1, 2, 2, 2, 3, 4 }, Enumerable.Range(0, 7).Select(i => SlidingWindow.Local(i, 7, 5)).ToArray());
        // Canvas = window: the window never moves.
        CollectionAssert.AreEqual(Enumerable.Range(0, 6).ToArray(), Enumerable.Range(0, 6).Select(i => SlidingWindow.Local(i, 6, 6)).ToArray());
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => SlidingWindow.Local(0, 3, 4));
    }

    [TestMethod]
    [DataRow(5, 9, 4, 6)]
    [DataRow(12, 7, 4, 6)]
    public void WindowsStayInsideTheCanvasAndHoldTheirToken(int height, int width, int wh, int ww)
    {
        for (int i = 0; i < height; i++)
        for (int j = 0; j < width; j++)
        {
            var (top, left, li, lj) = SlidingWindow.Place(i, j, height, width, wh, ww);
            Assert.IsTrue(top >= 0 && left >= 0 && top + wh <= height && left + ww <= width, $"({i},{j}) window at ({top},{left})");
            Assert.AreEqual((i, j), (top + li, left + lj));
        }
        // Corners: top-left window at the origin, bottom-right window flush with the far corner.
        Assert.AreEqual((0, 0, 0, 0), SlidingWindow.Place(0, 0, height, width, wh, ww));
        Assert.AreEqual((height - wh, width - ww, wh - 1, ww - 1), SlidingWindow.Place(height - 1, width - 1, height, width, wh, ww));
    }

    private static Gpt TinyModel(PriorLayout layout, int seed)
    {
        random.manual_seed(seed);
        return new Gpt(new GptOptions { Layers = 2, Heads = 2, Width = 16 }, layout);
    }

    [TestMethod]
    [DataRow(3, 4, 3, 4)]
    [DataRow(5, 7, 3, 4)]
    [DataRow(8, 6, 3, 4)]
    [DataRow(9, 13, 4, 4)]
    public void ExactModeGivesTheReferenceTokens(int height, int width, int wh, int ww)
    {
        var model = TinyModel(new PriorLayout(Conditioning.Class, 6, wh, ww, ClassCount: 3), seed: height * 31 + width);
        var prefix = tensor(new long[] { 6, 8 }, new long[] { 2, 1 });
        var seeds = new[] { 3, 4 };
        var options = new SamplingOptions { TopK = 0 };
        var reference = WindowedSampler.Sample(model, height, width, prefix, null, seeds, options, WindowMode.Reference);
        var exact = WindowedSampler.Sample(model, height, width, prefix, null, seeds, options, WindowMode.Exact);
        CollectionAssert.AreEqual(reference.data<long>().ToArray(), exact.data<long>().ToArray());
        Assert.IsTrue(exact.data<long>().Distinct().Count() > 1);
    }

    [TestMethod]
    public void WindowsWithoutACacheSlotDrawTheSameTokens()
    {
        // With room for one cache slot, most shared windows feed their whole prefix each time: same tokens.
        var model = TinyModel(new PriorLayout(Conditioning.Class, 6, 3, 4, ClassCount: 3), seed: 9);
        var prefix = tensor(new long[] { 6, 8 }, new long[] { 2, 1 });
        var seeds = new[] { 5, 6 };
        var options = new SamplingOptions { TopK = 0 };
        var reference = WindowedSampler.Sample(model, 7, 9, prefix, null, seeds, options, WindowMode.Reference).data<long>().ToArray();
        var strided = WindowedSampler.Sample(model, 7, 9, prefix, null, seeds, options, WindowMode.Strided).data<long>().ToArray();
        long budget = Gpt.CacheBudgetBytes;
        try
        {
            Gpt.CacheBudgetBytes = 1;
            CollectionAssert.AreEqual(reference, WindowedSampler.Sample(model, 7, 9, prefix, null, seeds, options, WindowMode.Exact).data<long>().ToArray());
            CollectionAssert.AreEqual(strided, WindowedSampler.Sample(model, 7, 9, prefix, null, seeds, options, WindowMode.Strided).data<long>().ToArray());
        }
        finally
        {
            Gpt.CacheBudgetBytes = budget;
        }
    }

    [TestMethod]
    public void RaggedCachedLogitsMatchAFullForwardPass()
    {
        // Rows at different points of their sequences, fed in uneven chunks through one cache, see what a plain
        // forward pass of the whole sequence sees.
        var model = TinyModel(new PriorLayout(Conditioning.None, 6, 3, 3), seed: 8);
        model.eval();
        using var _ = no_grad();
        random.manual_seed(3);
        var sequences = randint(7, new long[] { 2, 9 });
        var full = model.forward(sequences);
        using var cache = model.NewCache(2);
        // Row 0 feeds 0…4 then 5…6; row 1 feeds 0…1 then 2…6 (its first chunk padded by repeating its last token).
        var first = stack(new[] { sequences[0].narrow(0, 0, 5), cat(new[] { sequences[1].narrow(0, 0, 2), sequences[1][1].expand(3) }) });
        var logits = model.LogitsAt(first, tensor(new long[] { 4, 1 }), cache, tensor(new long[,] { { 0, 1, 2, 3, 4 }, { 0, 1, 1, 1, 1 } }), keys: 5);
        Assert.IsTrue(logits[0].allclose(full[0][4], 1e-5, 1e-6) && logits[1].allclose(full[1][1], 1e-5, 1e-6));
        var second = stack(new[] { cat(new[] { sequences[0].narrow(0, 5, 2), sequences[0][6].expand(3) }), sequences[1].narrow(0, 2, 5) });
        logits = model.LogitsAt(second, tensor(new long[] { 1, 4 }), cache, tensor(new long[,] { { 5, 6, 6, 6, 6 }, { 2, 3, 4, 5, 6 } }), keys: 7);
        Assert.IsTrue(logits[0].allclose(full[0][6], 1e-5, 1e-6) && logits[1].allclose(full[1][6], 1e-5, 1e-6));
    }

    [TestMethod]
    public void ImageConditionedExactModeGivesTheReferenceTokens()
    {
        var model = TinyModel(new PriorLayout(Conditioning.Image, 6, 3, 3, ConditionCodebookSize: 4, ConditionHeight: 3, ConditionWidth: 3), seed: 2);
        random.manual_seed(5);
        var condition = randint(4, new long[] { 2, 6, 7 });
        var seeds = new[] { 1, 2 };
        var reference = WindowedSampler.Sample(model, 6, 7, null, condition, seeds, new SamplingOptions(), WindowMode.Reference);
        var exact = WindowedSampler.Sample(model, 6, 7, null, condition, seeds, new SamplingOptions(), WindowMode.Exact);
        CollectionAssert.AreEqual(reference.data<long>().ToArray(), exact.data<long>().ToArray());
        var wrong = randint(4, new long[] { 2, 5, 7 });
        var e = Assert.ThrowsExactly<ArgumentException>(() => WindowedSampler.Sample(model, 6, 7, null, wrong, seeds, new SamplingOptions()));
        StringAssert.Contains(e.Message, "2×6×7");
    }

    [TestMethod]
    public void CanvasEqualToTheWindowIsOrdinarySampling()
    {
        var model = TinyModel(new PriorLayout(Conditioning.None, 6, 3, 4), seed: 3);
        var prefix = full(new long[] { 3, 1 }, 6L);
        var seeds = new[] { 7, 8, 9 };
        var ordinary = PriorSampler.Sample(model, prefix, seeds, new SamplingOptions()).data<long>().ToArray();
        foreach (var mode in new[] { WindowMode.Reference, WindowMode.Exact, WindowMode.Strided })
            CollectionAssert.AreEqual(ordinary, WindowedSampler.Sample(model, 3, 4, prefix, null, seeds, new SamplingOptions(), mode).data<long>().ToArray());
    }

    [TestMethod]
    public void StridedModeFillsEveryPositionOnce()
    {
        var model = TinyModel(new PriorLayout(Conditioning.Class, 6, 4, 4, ClassCount: 2), seed: 6);
        var prefix = tensor(new long[] { 6, 7 }, new long[] { 2, 1 });
        var canvas = WindowedSampler.Sample(model, 7, 11, prefix, null, new[] { 1, 2 }, new SamplingOptions { TopK = 0 }, WindowMode.Strided);
        CollectionAssert.AreEqual(new long[] { 2, 7, 11 }, canvas.shape);
        var values = canvas.data<long>().ToArray();
        Assert.IsTrue(values.All(v => v is >= 0 and < 6));
        Assert.IsTrue(values.Distinct().Count() > 3, "a canvas of one token suggests positions were never sampled");
    }

    [TestMethod]
    public void BitsPerTokenOfAWindowSizedCanvasIsThePriorsScore()
    {
        var model = TinyModel(new PriorLayout(Conditioning.Class, 6, 3, 4, ClassCount: 2), seed: 7);
        random.manual_seed(1);
        var canvas = randint(6, new long[] { 2, 3, 4 });
        var prefix = tensor(new long[] { 6, 7 }, new long[] { 2, 1 });
        var bits = WindowedSampler.BitsPerToken(model, canvas, prefix, null);
        double[] expected;
        using (no_grad())
            expected = (model.ImageTokenNll(cat(new[] { prefix, canvas.reshape(2, -1) }, 1)).mean(new long[] { 1 }) / Math.Log(2))
                .to(ScalarType.Float64).data<double>().ToArray();
        Assert.AreEqual(expected[0], bits[0], 1e-5);
        Assert.AreEqual(expected[1], bits[1], 1e-5);
    }

    [TestMethod]
    public void SameSeedsGiveTheSameCanvas()
    {
        var model = TinyModel(new PriorLayout(Conditioning.None, 6, 3, 3), seed: 4);
        var prefix = full(new long[] { 1, 1 }, 6L);
        var a = WindowedSampler.Sample(model, 5, 8, prefix, null, new[] { 11 }, new SamplingOptions()).data<long>().ToArray();
        var b = WindowedSampler.Sample(model, 5, 8, prefix, null, new[] { 11 }, new SamplingOptions()).data<long>().ToArray();
        var c = WindowedSampler.Sample(model, 5, 8, prefix, null, new[] { 12 }, new SamplingOptions()).data<long>().ToArray();
        CollectionAssert.AreEqual(a, b);
        CollectionAssert.AreNotEqual(a, c);
    }

    [TestMethod]
    public void ProgressReportsEndWithEveryTokenAndChangeNothing()
    {
        var model = TinyModel(new PriorLayout(Conditioning.None, 6, 3, 3), seed: 4);
        var prefix = full(new long[] { 2, 1 }, 6L);
        foreach (var mode in new[] { WindowMode.Exact, WindowMode.Strided, WindowMode.Reference })
        {
            var reports = new List<SamplingProgress>();
            var quiet = WindowedSampler.Sample(model, 5, 8, prefix, null, new[] { 11, 12 }, new SamplingOptions(), mode).data<long>().ToArray();
            var reported = WindowedSampler.Sample(model, 5, 8, prefix, null, new[] { 11, 12 }, new SamplingOptions { Progress = reports.Add }, mode).data<long>().ToArray();
            CollectionAssert.AreEqual(quiet, reported, mode.ToString());
            Assert.AreEqual((2L * 40, 2L * 40), (reports[^1].Tokens, reports[^1].TotalTokens), mode.ToString());
            Assert.IsTrue(reports.Zip(reports.Skip(1)).All(p => p.First.Tokens < p.Second.Tokens), "counts grow");
            StringAssert.Contains(reports[^1].ToString(), "80/80 tokens");
        }
    }
}
