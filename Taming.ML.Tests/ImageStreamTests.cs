using Taming.ML.Data;
using Taming.ML.Training;

namespace Taming.ML.Tests;

[TestClass]
public sealed class ImageStreamTests
{
    /// <summary>Images of 1×2×2 bytes whose first byte is their index.</summary>
    private static Func<CancellationToken, IEnumerable<byte[]>> Numbered(int count, Func<int, Exception?>? fail = null) => _ => Pass(count, fail);

    private static IEnumerable<byte[]> Pass(int count, Func<int, Exception?>? fail)
    {
        for (int i = 0; i < count; i++)
        {
            if (fail?.Invoke(i) is { } e) throw e;
            yield return new byte[] { (byte)i, 0, 0, 0 };
        }
    }

    private static int[] Draws(ImageStream stream, int count, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => (int)stream.Draw(rng)[0]).ToArray();
    }

    [TestMethod]
    public void AStreamDrawsEachImageOncePerPassThroughItsPoolAndTheSameDrawsForASeed()
    {
        var passes = new List<string>();
        using var stream = new ImageStream(Numbered(50), 1, 2, 2, poolSize: 8, knownCount: 50, log: passes.Add);
        stream.Fill();
        Assert.IsFalse(stream.HeldWhole);
        StringAssert.Contains(stream.Description, "shuffle pool of 8");
        var draws = Draws(stream, 200, seed: 1);
        // 208 images entered the pool (four passes and 8 more) and 8 are still in it: each was drawn 3 to 5 times.
        var counts = draws.GroupBy(d => d).ToDictionary(g => g.Key, g => g.Count());
        Assert.AreEqual(50, counts.Count, "every image was drawn");
        Assert.IsTrue(counts.Values.All(c => c is >= 3 and <= 5), string.Join(" ", counts.Values));
        Assert.AreEqual(4, passes.Count(p => p.Contains("Streamed pass")), string.Join("\n", passes));
        // Drawn in a mixed order, not the input's.
        Assert.IsTrue(draws.Take(50).Zip(Enumerable.Range(0, 50)).Count(p => p.First == p.Second) < 20);
        using var again = new ImageStream(Numbered(50), 1, 2, 2, poolSize: 8, knownCount: 50);
        CollectionAssert.AreEqual(draws, Draws(again, 200, seed: 1), "the draws depend on the seed alone");
    }

    [TestMethod]
    public void AnInputNoLargerThanThePoolIsHeldWholeAndDrawnOncePerEpoch()
    {
        using var stream = new ImageStream(Numbered(10), 1, 2, 2, poolSize: 16);
        stream.Fill();
        Assert.IsTrue(stream.HeldWhole);
        Assert.AreEqual(10, stream.Count);
        var draws = Draws(stream, 20, seed: 2);
        CollectionAssert.AreEquivalent(Enumerable.Range(0, 10).ToArray(), draws.Take(10).ToArray());
        CollectionAssert.AreEquivalent(Enumerable.Range(0, 10).ToArray(), draws.Skip(10).ToArray());

        // Exactly the pool's size, where the count is known: held whole as well; where the count is not, streamed.
        using var exact = new ImageStream(Numbered(16), 1, 2, 2, poolSize: 16, knownCount: 16);
        exact.Fill();
        Assert.IsTrue(exact.HeldWhole);
        using var unknown = new ImageStream(Numbered(16), 1, 2, 2, poolSize: 16);
        unknown.Fill();
        Assert.IsFalse(unknown.HeldWhole);
        // A count that was wrong (a 17th row came) keeps the image read ahead: the first draw's replacement is that image,
        // and the pass ends at the second draw.
        var passes = new List<string>();
        using var wrong = new ImageStream(Numbered(17), 1, 2, 2, poolSize: 16, knownCount: 16, log: passes.Add);
        wrong.Fill();
        Assert.IsFalse(wrong.HeldWhole);
        var rng = new Random(3);
        wrong.Draw(rng);
        Assert.AreEqual(0, passes.Count, "the image read ahead replaced the first draw");
        wrong.Draw(rng);
        Assert.AreEqual(1, passes.Count, "then the pass ended");
    }

    [TestMethod]
    public void WhatStopsTheReadingSurfacesAtTheDrawThatNeedsIt()
    {
        using var broken = new ImageStream(Numbered(20, i => i == 12 ? new InvalidDataException("row 12: damaged") : null), 1, 2, 2, poolSize: 4);
        var rng = new Random(0);
        for (int i = 0; i < 8; i++) broken.Draw(rng); // the images before the damaged one
        var e = Assert.ThrowsExactly<InvalidDataException>(() => broken.Draw(rng));
        StringAssert.Contains(e.Message, "row 12: damaged");

        using var empty = new ImageStream(Numbered(0), 1, 2, 2, poolSize: 4);
        StringAssert.Contains(Assert.ThrowsExactly<InvalidOperationException>(() => empty.Fill()).Message, "training data is empty");
    }

    [TestMethod]
    public void AShufflePoolStreamsTheTrainingImagesAndTheTokenizerStillLearns()
    {
        var ml = new MLContext(seed: 1);
        var messages = new List<string>();
        ml.Log += (_, e) => { lock (messages) messages.Add(e.Message); };
        var reports = new List<VqganProgress>();
        var options = TinyData.Options(steps: 40);
        (options.ShufflePoolSize, options.DiscStart, options.Progress) = (16, -1, reports.Add);
        var data = TinyData.ImageView(40);
        var tokenizer = ml.Transforms.TokenizeImages("Tokens", "Image", options).Fit(data);
        string log = string.Join("\n", messages.Where(m => !m.Contains("step ")));
        StringAssert.Contains(log, "Training on images of 8×8 streamed from the input (40, decoded again every pass) through a shuffle pool of 16");
        StringAssert.Contains(log, "through a shuffle pool of 16 (1 channel; 4×4 tokens, 16 codes) for");
        StringAssert.Contains(log, "Streamed pass 7 over the training images"); // 320 images drawn from 40
        Assert.IsTrue(reports[^1].ReconstructionLoss < 0.7 * reports[0].ReconstructionLoss,
            $"L1 went from {reports[0].ReconstructionLoss} to {reports[^1].ReconstructionLoss}");
        Assert.AreEqual(40 * 16, TinyData.Tokens(tokenizer.Transform(data)).Length);

        // A pool that holds the whole input trains as in memory, on the same batches.
        messages.Clear();
        options.ShufflePoolSize = 64;
        options.Progress = null;
        var whole = new MLContext(seed: 1).Transforms.TokenizeImages("Tokens", "Image", options);
        var inMemory = options.Clone();
        inMemory.ShufflePoolSize = 0;
        CollectionAssert.AreEqual(TinyData.Tokens(new MLContext(seed: 1).Transforms.TokenizeImages("Tokens", "Image", inMemory).Fit(data).Transform(data)),
            TinyData.Tokens(whole.Fit(data).Transform(data)));
    }

    [TestMethod]
    public void AnInputOfUnknownLengthIsCountedWithoutDecodingSoALargeOneIsStreamedFromTheStart()
    {
        var rows = new CountedRows(TinyData.Images(2000));
        var ml = new MLContext(seed: 1);
        var schema = SchemaDefinition.Create(typeof(CountedRows.CountedRow));
        schema[nameof(CountedRows.CountedRow.Pixels)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, 1, TinyData.Side, TinyData.Side);
        var input = ml.Data.LoadFromEnumerable(rows.Enumerate(), schema);
        Assert.IsNull(input.GetRowCount(), "a lazily enumerated input does not know its length");
        var warnings = new List<string>();
        ml.Log += (_, e) => { if (e.Kind == Microsoft.ML.Runtime.ChannelMessageKind.Warning) lock (warnings) warnings.Add(e.RawMessage); };
        ImageSet.MemoryLimitOverride = 1500 * 64; // 1,500 of the 2,000 images; a pool of 375
        try
        {
            ml.Transforms.TokenizeImages("Tokens", "Pixels", TinyData.Options(steps: 1)).Fit(input);
        }
        finally
        {
            ImageSet.MemoryLimitOverride = null;
        }
        Assert.IsTrue(warnings.Any(w => w.Contains("The 2,000 training images") && w.Contains("shuffle pool of 375")), string.Join("\n", warnings));
        // The pool, the reading thread's queue and a batch; reading into memory first would have decoded 1,024 and more.
        Assert.IsTrue(rows.Decoded < 500, $"{rows.Decoded} images were decoded");
    }

    private sealed class CountedRows(byte[][] images)
    {
        private int decoded;
        public int Decoded => Volatile.Read(ref decoded);

        public IEnumerable<CountedRow> Enumerate()
        {
            foreach (var image in images) yield return new CountedRow(this, image);
        }

        public sealed class CountedRow(CountedRows owner, byte[] image)
        {
            /// <summary>Read only when the column is: every read is a "decode".</summary>
            public float[] Pixels
            {
                get
                {
                    Interlocked.Increment(ref owner.decoded);
                    return image.Select(b => (float)b).ToArray();
                }
            }
        }
    }

    [TestMethod]
    public void ImagesTooManyForMemoryAreStreamedWhetherOrNotTheirCountIsKnown()
    {
        var data = TinyData.ImageView(40); // 64 bytes an image
        var ml = new MLContext(seed: 1);
        var unknownCount = ml.Data.FilterRowsByKeyColumnFraction(data, "Label", 0, 1);
        Assert.IsNull(unknownCount.GetRowCount());
        ImageSet.MemoryLimitOverride = 20 * 64;
        try
        {
            foreach (var input in new[] { data, unknownCount })
            {
                var warnings = new List<string>();
                var messages = new List<string>();
                var context = new MLContext(seed: 1);
                context.Log += (_, e) =>
                {
                    lock (messages) messages.Add(e.RawMessage);
                    if (e.Kind == Microsoft.ML.Runtime.ChannelMessageKind.Warning) lock (warnings) warnings.Add(e.RawMessage);
                };
                var tokenizer = context.Transforms.TokenizeImages("Tokens", "Image", TinyData.Options(steps: 6)).Fit(input);
                Assert.IsTrue(warnings.Any(w => w.Contains("take more than three quarters of the memory") && w.Contains("ShufflePoolSize")),
                    string.Join("\n", warnings));
                // A quarter of the limit holds 5 images; the pool takes at least one batch.
                Assert.IsTrue(messages.Any(m => m.Contains("through a shuffle pool of 8, 8 per step")), string.Join("\n", messages));
                Assert.AreEqual(40 * 16, TinyData.Tokens(tokenizer.Transform(input)).Length);
            }
        }
        finally
        {
            ImageSet.MemoryLimitOverride = null;
        }
    }
}
