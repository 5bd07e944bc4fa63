using Taming.ML.Data;
using Taming.ML.Training;

namespace Taming.ML.Tests;

[TestClass]
public sealed class TokenizerTests
{
    private static readonly string Temp = Path.Combine(Path.GetTempPath(), "taming-tests-" + Environment.ProcessId);
    private static VqganTokenizerTransformer? shared;

    /// <summary>One tiny tokenizer, fitted once and shared by the tests that only use it.</summary>
    private static VqganTokenizerTransformer Shared(MLContext ml) =>
        shared ??= ml.Transforms.TokenizeImages("Tokens", "Image", TinyData.Options()).Fit(TinyData.ImageView(64));

    [ClassCleanup]
    public static void Cleanup()
    {
        if (Directory.Exists(Temp)) Directory.Delete(Temp, recursive: true);
    }

    [TestMethod]
    public void LossFallsOverAFewDozenSteps()
    {
        var reports = new List<VqganProgress>();
        var options = TinyData.Options(steps: 60);
        options.DiscStart = -1;
        options.Progress = reports.Add;
        new MLContext(seed: 1).Transforms.TokenizeImages("Tokens", "Image", options).Fit(TinyData.ImageView(64));
        Assert.AreEqual(60, reports[^1].Step);
        Assert.IsTrue(reports[^1].ReconstructionLoss < 0.6 * reports[0].ReconstructionLoss,
            $"L1 went from {reports[0].ReconstructionLoss} to {reports[^1].ReconstructionLoss}");
        Assert.IsTrue(reports.All(r => r.CodebookUsage > 0 && r.Perplexity >= 1 && r.ImagesPerSecond > 0));
    }

    [TestMethod]
    public void ProgressReachesMLContextLog()
    {
        var ml = new MLContext(seed: 1);
        var messages = new List<string>();
        ml.Log += (_, e) => { lock (messages) messages.Add(e.Message); };
        var options = TinyData.Options(steps: 5);
        options.BatchSize = 0;
        ml.Transforms.TokenizeImages("Tokens", "Image", options).Fit(TinyData.ImageView(8));
        Assert.IsTrue(messages.Any(m => m.Contains("step 5/5") && m.Contains("usage") && m.Contains("ETA")),
            string.Join("\n", messages.Take(20)));
        // The automatic batch size is said, here capped by the 8 images there are.
        Assert.IsTrue(messages.Any(m => m.Contains("Training on 8 images of 8×8, 8 per step (automatic")), string.Join("\n", messages.Take(20)));
    }

    [TestMethod]
    public void TheAutomaticBatchSizeKeepsThePixelsPerStepOf32ImagesOf128Squared()
    {
        int Batch(int resolution, int batchSize = 0) => new VqganOptions { Resolution = resolution, BatchSize = batchSize }.TrainingBatchSize;
        CollectionAssert.AreEqual(new[] { 32, 32, 32, 8, 2, 1 }, new[] { 32, 64, 128, 256, 512, 1024 }.Select(r => Batch(r)).ToArray());
        Assert.AreEqual(5, Batch(256, batchSize: 5));
    }

    [TestMethod]
    public void GanPhaseReportsLambdaAndDiscriminatorLoss()
    {
        var reports = new List<VqganProgress>();
        var options = TinyData.Options(steps: 10);
        options.DiscStart = 5;
        options.Progress = reports.Add;
        new MLContext(seed: 1).Transforms.TokenizeImages("Tokens", "Image", options).Fit(TinyData.ImageView(16));
        Assert.AreEqual(0, reports[0].Lambda);
        Assert.IsTrue(reports[^1].Lambda > 0 && reports[^1].DiscriminatorLoss > 0, $"λ {reports[^1].Lambda}, d {reports[^1].DiscriminatorLoss}");
    }

    [TestMethod]
    public void ShortRunsAndAZeroWeightTrainWithoutTheGan()
    {
        IReadOnlyList<VqganProgress> Fit(int? discStart, double discWeight, List<string> log)
        {
            var reports = new List<VqganProgress>();
            var options = TinyData.Options(steps: 10);
            (options.DiscStart, options.DiscWeight, options.Progress) = (discStart, discWeight, reports.Add);
            var ml = new MLContext(seed: 1);
            ml.Log += (_, e) => log.Add(e.RawMessage);
            ml.Transforms.TokenizeImages("Tokens", "Image", options).Fit(TinyData.ImageView(16));
            return reports;
        }
        var log = new List<string>();
        // The default start (60 % of training) waits for step 1,000, which a 10-step run never reaches.
        Assert.IsTrue(Fit(null, 0.8, log).All(r => r.DiscriminatorLoss == 0 && r.Lambda == 0));
        Assert.IsTrue(log.Any(m => m.StartsWith("The GAN did not start") && m.Contains("made 10")), string.Join("\n", log));
        log.Clear();
        // A weight of 0 skips the discriminator too, whatever the start.
        Assert.IsTrue(Fit(5, 0, log).All(r => r.DiscriminatorLoss == 0 && r.GeneratorLoss == 0));
        Assert.IsFalse(log.Any(m => m.StartsWith("The GAN did not start")));
    }

    [TestMethod]
    public void TokensAreKeyVectorsWithTheGridShape()
    {
        var ml = new MLContext(seed: 1);
        var tokenizer = Shared(ml);
        var output = tokenizer.Transform(TinyData.ImageView(20, seed: 9));
        var type = (VectorDataViewType)output.Schema["Tokens"].Type;
        Assert.AreEqual(16UL, ((KeyDataViewType)type.ItemType).Count);
        CollectionAssert.AreEqual(new[] { 4, 4 }, type.Dimensions.ToArray());
        var tokens = TinyData.Tokens(output);
        Assert.AreEqual(20 * 16, tokens.Length);
        Assert.IsTrue(tokens.All(t => t >= 1 && t <= 16));
        // Pass-through columns survive next to the new one.
        Assert.IsNotNull(output.Schema.GetColumnOrNull("Label"));
    }

    [TestMethod]
    public void BatchedTransformEqualsRowByRowPredictionEngine()
    {
        var ml = new MLContext(seed: 1);
        var data = TinyData.PixelView(ml, 10);
        var pixelTokenizer = ml.Transforms.TokenizeImages("Tokens", "Pixels", TinyData.Options(steps: 2)).Fit(data);
        var batched = TinyData.Tokens(pixelTokenizer.Transform(data));
        var engine = ml.Model.CreatePredictionEngine<TinyData.PixelRow, TokenRow>(pixelTokenizer);
        var single = ml.Data.CreateEnumerable<TinyData.PixelRow>(data, false).SelectMany(r => engine.Predict(r).Tokens).ToArray();
        CollectionAssert.AreEqual(batched, single);
    }

    [TestMethod]
    public void SameSeedGivesTheSameTokens()
    {
        var data = TinyData.ImageView(24);
        uint[] Fit() => TinyData.Tokens(new MLContext(seed: 5).Transforms
            .TokenizeImages("Tokens", "Image", TinyData.Options(steps: 8)).Fit(data).Transform(data));
        CollectionAssert.AreEqual(Fit(), Fit());
    }

    [TestMethod]
    public void SaveLoadRoundTripsAChainWithABuiltInTransformInAFreshContext()
    {
        Directory.CreateDirectory(Temp);
        var ml = new MLContext(seed: 1);
        var data = TinyData.ImageView(30, side: 12);
        var model = ml.Transforms.ResizeImages("Image", TinyData.Side, TinyData.Side, "Image")
            .Append(ml.Transforms.TokenizeImages("Tokens", "Image", TinyData.Options(steps: 10)))
            .Fit(data);
        string path = Path.Combine(Temp, "chain.zip");
        ml.Model.Save(model, data.Schema, path);

        var loaded = new MLContext(seed: 99).Model.Load(path, out var schema);
        Assert.IsNotNull(schema.GetColumnOrNull("Label")); // ML.NET keeps the input schema, less image columns
        var before = TinyData.Tokens(model.Transform(data));
        var after = TinyData.Tokens(loaded.Transform(data));
        Assert.AreEqual(30 * 16, after.Length);
        CollectionAssert.AreEqual(before, after);
        Assert.IsInstanceOfType<VqganTokenizerTransformer>(TamingCatalog.FindTokenizer(loaded));
    }

    [TestMethod]
    public void DecoderTurnsTokensBackIntoImagesAndSurvivesSaveLoad()
    {
        Directory.CreateDirectory(Temp);
        var ml = new MLContext(seed: 1);
        var tokenizer = Shared(ml);
        var tokens = tokenizer.Transform(TinyData.ImageView(5, seed: 4));
        var decoder = ml.Transforms.DecodeTokens("Decoded", "Tokens", tokenizer).Fit(tokens);
        string path = Path.Combine(Temp, "decoder.zip");
        ml.Model.Save(decoder, tokens.Schema, path);
        var reloaded = new MLContext().Model.Load(path, out _);
        foreach (var d in new[] { decoder, reloaded })
        {
            var images = d.Transform(tokens);
            var col = images.Schema["Decoded"];
            using var cursor = images.GetRowCursor(new[] { col });
            var getter = cursor.GetGetter<MLImage>(col);
            MLImage image = null!;
            int rows = 0;
            while (cursor.MoveNext())
            {
                getter(ref image);
                Assert.AreEqual(TinyData.Side, image.Width);
                Assert.AreEqual(TinyData.Side, image.Height);
                rows++;
            }
            Assert.AreEqual(5, rows);
        }
    }

    [TestMethod]
    public void DecoderDecodesGridsLargerThanTheTrainingGrid()
    {
        var ml = new MLContext(seed: 1);
        var tokenizer = Shared(ml);
        var rows = ml.Data.LoadFromEnumerable(new[] { new WideTokens() });
        var images = ml.Transforms.DecodeTokens("Image", "Tokens", tokenizer).Fit(rows).Transform(rows);
        var type = (Microsoft.ML.Transforms.Image.ImageDataViewType)images.Schema["Image"].Type;
        Assert.AreEqual((12, 20), (type.Height, type.Width)); // 6×10 tokens, 2 pixels per token
        var image = images.GetColumn<MLImage>(images.Schema["Image"]).First();
        Assert.AreEqual((20, 12), (image.Width, image.Height));

        // Larger images decode in proportionally fewer rows per batch (here one: 7 rows of 8×8 pixels hold fewer
        // pixels than two 12×20 images), so that a batch's memory stays that of the trained size; rows decode as in one batch.
        Assert.AreEqual(1, tokenizer.Model.Options.InferenceRows(12, 20));
        Assert.AreEqual(7, tokenizer.Model.Options.InferenceRows(8, 8));
        var three = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 3).Select(r => new WideTokens
            { Tokens = Enumerable.Range(0, 60).Select(i => (uint)((i * (r + 1)) % 16) + 1).ToArray() }));
        var decoded = ImagePixels.ReadColumns(ml.Transforms.DecodeTokens("Image", "Tokens", tokenizer).Fit(three).Transform(three), 1, "Image")
            .SelectMany(row => row[0]).ToArray();
        using var ids = TorchSharp.torch.tensor(three.GetColumn<uint[]>("Tokens").SelectMany(t => t).Select(t => (long)t - 1).ToArray(), new long[] { 3, 6, 10 });
        using var together = PixelScale.ToBytes(tokenizer.Model.DecodeTokens(ids));
        var expected = together.data<byte>().ToArray();
        Assert.AreEqual(expected.Length, decoded.Length);
        Assert.IsTrue(expected.Zip(decoded).All(p => Math.Abs(p.First - p.Second) <= 1));
    }

    private sealed class WideTokens
    {
        [KeyType(16), VectorType(6, 10)] public uint[] Tokens { get; set; } = Enumerable.Range(0, 60).Select(i => (uint)(i % 16) + 1).ToArray();
    }

    [TestMethod]
    public void ReconstructionMetricsAndGrid()
    {
        Directory.CreateDirectory(Temp);
        var ml = new MLContext(seed: 1);
        string grid = Path.Combine(Temp, "grid.png");
        var metrics = ml.Taming().EvaluateReconstruction(TinyData.ImageView(12), Shared(ml), "Image", grid, gridImages: 6);
        Assert.AreEqual(12, metrics.Count);
        Assert.IsTrue(metrics.Psnr is > 5 and < 100, $"PSNR {metrics.Psnr}");
        Assert.IsTrue(metrics.Ssim is > -1 and <= 1);
        Assert.IsTrue(metrics.CodebookUsage is > 0 and <= 1);
        Assert.IsTrue(double.IsFinite(metrics.Rfid) && metrics.Rfid > 0, $"rFID {metrics.Rfid}");
        Assert.IsTrue(new FileInfo(grid).Length > 0);
    }

    [TestMethod]
    public void TheGridShowsRowsSpreadOverTheData()
    {
        var ml = new MLContext(seed: 1);
        var kept = new List<(byte[] Original, byte[] Reconstruction)>();
        Evaluation.ReconstructionEvaluator.Evaluate(Shared(ml), TinyData.ImageView(12), "Image", keepCount: 4, keep: kept);
        var images = TinyData.Images(12);
        Assert.AreEqual(4, kept.Count);
        for (int i = 0; i < 4; i++) CollectionAssert.AreEqual(images[3 * i], kept[i].Original, $"picture {i} is not row {3 * i}");
    }

    [TestMethod]
    public void PerceptualWeightTrainsWithTheShippedNetwork()
    {
        // Same seed and steps; the perceptual term changes the gradients, so the weights differ.
        var ml = new MLContext(seed: 1);
        var options = TinyData.Options(steps: 3);
        options.DiscStart = -1;
        var plain = ml.Transforms.TokenizeImages("Tokens", "Image", options).Fit(TinyData.ImageView(16));
        options.PerceptualWeight = 1;
        var perceptual = ml.Transforms.TokenizeImages("Tokens", "Image", options).Fit(TinyData.ImageView(16));
        var a = plain.Model.parameters().First().data<float>().ToArray();
        var b = perceptual.Model.parameters().First().data<float>().ToArray();
        CollectionAssert.AreNotEqual(a, b);
    }

    [TestMethod]
    public void CancellationStopsTraining()
    {
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        var options = TinyData.Options();
        options.CancellationToken = cts.Token;
        Assert.ThrowsExactly<OperationCanceledException>(() =>
            new MLContext().Transforms.TokenizeImages("Tokens", "Image", options).Fit(TinyData.ImageView(8)));
    }

    [TestMethod]
    public void RequestStopEndsTrainingEarly()
    {
        var options = TinyData.Options(steps: 1000);
        int last = 0;
        options.Progress = p => { last = p.Step; p.RequestStop(); };
        new MLContext().Transforms.TokenizeImages("Tokens", "Image", options).Fit(TinyData.ImageView(8));
        Assert.AreEqual(options.ProgressInterval, last);
    }

    [TestMethod]
    public void AStopTokenEndsTrainingAfterTheStepInProgressAndKeepsTheModel()
    {
        var options = TinyData.Options(steps: 1000);
        using var stop = new CancellationTokenSource();
        options.StopToken = stop.Token;
        var reports = new List<int>();
        options.Progress = p => { reports.Add(p.Step); stop.Cancel(); }; // set at step 5: step 6 ends the fit and is reported
        var tokenizer = new MLContext().Transforms.TokenizeImages("Tokens", "Image", options).Fit(TinyData.ImageView(8));
        CollectionAssert.AreEqual(new[] { 5, 6 }, reports);
        Assert.AreEqual(6, tokenizer.TrainedSteps);
        Assert.AreEqual(8 * 4 * 4, TinyData.Tokens(tokenizer.Transform(TinyData.ImageView(8))).Length);

        // Set before the first step there is no model to keep: the fit is abandoned, and says why.
        var early = Assert.ThrowsExactly<OperationCanceledException>(() =>
            new MLContext().Transforms.TokenizeImages("Tokens", "Image", options).Fit(TinyData.ImageView(8)));
        StringAssert.Contains(early.Message, "VqganOptions.StopToken was set before the first training step");
    }

    [TestMethod]
    public void AFitContinuesASavedTokenizerWithItsDiscriminatorAndCountsItsSteps()
    {
        var ml = new MLContext(seed: 1);
        var data = TinyData.ImageView(32);
        var first = TinyData.Options(steps: 20);
        first.DiscStart = 10;
        var firstReports = new List<VqganProgress>();
        first.Progress = firstReports.Add;
        var fresh = ml.Transforms.TokenizeImages("Tokens", "Image", first).Fit(data);
        Assert.AreEqual((20, 10), (fresh.TrainedSteps, fresh.GanSteps));
        double endRate = firstReports[^1].LearningRate;
        Assert.IsTrue(endRate < 0.2 * first.LearningRate, $"the schedule decays to a tenth of the peak: {endRate:G3}");

        Directory.CreateDirectory(Temp);
        string path = Path.Combine(Temp, "continued.zip");
        ml.Model.Save(fresh, null, path);
        var loaded = (VqganTokenizerTransformer)new MLContext().Model.Load(path, out _);
        Assert.AreEqual((20, 10), (loaded.TrainedSteps, loaded.GanSteps));
        Assert.AreEqual(endRate, loaded.Training.LearningRate, "the rate the fit ended at, saved with the model");
        var savedCritic = loaded.Training.Discriminator!.state_dict();
        foreach (var (name, weight) in fresh.Training.Discriminator!.state_dict())
            Assert.IsTrue(weight.allclose(savedCritic[name], 0, 0), $"discriminator {name} after save and load");
        var tokensBefore = TinyData.Tokens(loaded.Transform(data));

        var more = TinyData.Options(steps: 20);
        more.DiscStart = 10; // a step number of the whole history: passed, so the GAN trains from the first continued step
        more.CodebookSize = 64; // the continued model keeps its own 16
        var reports = new List<VqganProgress>();
        more.Progress = reports.Add;
        var continued = ml.Transforms.TokenizeImages("Tokens", "Image", more).Fit(data, loaded);
        Assert.AreEqual((40, 30), (continued.TrainedSteps, continued.GanSteps));
        Assert.AreEqual(16, continued.CodebookSize);
        Assert.AreNotEqual(0, reports[0].GeneratorLoss, "the GAN trained from the continued fit's first step");
        Assert.IsTrue(reports[0].ReconstructionLoss < 0.8 * firstReports[0].ReconstructionLoss,
            $"continued from the trained weights: L1 {reports[0].ReconstructionLoss:F4} at its first report, a new fit {firstReports[0].ReconstructionLoss:F4}");
        Assert.IsTrue(reports.Max(r => r.LearningRate) <= endRate * (1 + 1e-9),
            $"the continued fit goes no higher than the rate the first ended at ({endRate:G3}): {reports.Max(r => r.LearningRate):G3}");
        CollectionAssert.AreEqual(tokensBefore, TinyData.Tokens(loaded.Transform(data)), "the continued model is left as it was");

        var wrongSize = Assert.ThrowsExactly<InvalidDataException>(() =>
            ml.Transforms.TokenizeImages("Tokens", "Image", more).Fit(TinyData.ImageView(8, side: 16), loaded));
        StringAssert.Contains(wrongSize.Message, "16×16 pixels but the tokenizer works on 8×8");
    }

    [TestMethod]
    public void CheckpointsAreCopiesThatSaveAndContinueAndLeaveTheFitAsWithoutThem()
    {
        var ml = new MLContext(seed: 1);
        var data = TinyData.ImageView(32);
        VqganOptions Options()
        {
            var o = TinyData.Options(steps: 12);
            o.DiscStart = 6; // the GAN trains from the seventh step on
            o.Dropout = 0.1; // draws from libtorch's generator, as does a new network's initialisation
            return o;
        }
        var plainOptions = Options();
        var plainRates = new List<double>();
        plainOptions.Progress = p => plainRates.Add(p.ImagesPerSecond);
        var plain = ml.Transforms.TokenizeImages("Tokens", "Image", plainOptions).Fit(data);

        var options = Options();
        options.CheckpointInterval = TimeSpan.FromTicks(1); // after every step but the last, which the fit returns
        Directory.CreateDirectory(Temp);
        string path = Path.Combine(Temp, "checkpoint.zip");
        var recorder = new CheckpointRecorder<VqganTokenizerTransformer>(3, new IOException("No space left on device"), 8, t => ml.Model.Save(t, null, path));
        options.Checkpoint = t =>
        {
            recorder.Take(t);
            if (t.TrainedSteps == 7) Thread.Sleep(1500); // a slow save in the second report's window, which its rate leaves out
        };
        var rates = new List<double>();
        options.Progress = p => rates.Add(p.ImagesPerSecond);
        var copies = recorder.Copies;
        var warnings = TinyData.Warnings(ml);
        var checkpointed = ml.Transforms.TokenizeImages("Tokens", "Image", options).Fit(data);
        Assert.IsTrue(rates[1] > 0.2 * plainRates[1], $"images/s of steps 6–10: {rates[1]:F0} with checkpoints, {plainRates[1]:F0} without");

        CollectionAssert.AreEqual(Enumerable.Range(1, 11).ToArray(), copies.Select(c => c.TrainedSteps).ToArray());
        CollectionAssert.AreEqual(new[] { 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5 }, copies.Select(c => c.GanSteps).ToArray());
        Assert.IsNull(copies[5].Training.Discriminator, "no discriminator before the GAN trains");
        Assert.IsNotNull(copies[6].Training.Discriminator, "the discriminator, once the GAN has trained");
        Assert.IsTrue(warnings.Any(w => w.Contains("VqganOptions.Checkpoint failed at step 3; training goes on. IOException: No space left on device")),
            string.Join("\n", warnings));
        CollectionAssert.AreEqual(TinyData.Tokens(plain.Transform(data)), TinyData.Tokens(checkpointed.Transform(data)), "the same fit as without checkpoints");
        var final = checkpointed.Model.state_dict();
        foreach (var (name, weight) in plain.Model.state_dict())
            Assert.IsTrue(weight.allclose(final[name], 0, 0), $"{name}: the same weights as without checkpoints");
        Assert.IsTrue(copies[0].Model.state_dict().Any(p => !p.Value.allclose(final[p.Key], 0, 0)), "a copy keeps the weights of its step");

        // The saved checkpoint continues for the steps that were left.
        var loaded = TamingCatalog.FindTokenizer(new MLContext().Model.Load(path, out _));
        Assert.AreEqual((8, 2), (loaded.TrainedSteps, loaded.GanSteps));
        var rest = Options();
        rest.Steps = 4;
        var continued = ml.Transforms.TokenizeImages("Tokens", "Image", rest).Fit(data, loaded);
        Assert.AreEqual((12, 6), (continued.TrainedSteps, continued.GanSteps));

        options.CheckpointInterval = TimeSpan.Zero;
        var zero = Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.TokenizeImages("Tokens", "Image", options).Fit(data));
        StringAssert.Contains(zero.Message, "VqganOptions.CheckpointInterval: must be positive");
    }

    private sealed class TokenRow
    {
        [KeyType(16)] public uint[] Tokens { get; set; } = Array.Empty<uint>();
    }

    [TestMethod]
    public void ModelsSavedByEarlierReleasesLoadAndGiveTheirTokens()
    {
        // Fixtures/*-1.1.zip: a tokenizer and a class prior saved before whole-image tokenizing and windowed priors,
        // with the tokens the tokenizer gave then for eight random 8×8 images (seed 0).
        string folder = Path.Combine(AppContext.BaseDirectory, "Fixtures");
        var ml = new MLContext();
        var rng = new Random(0);
        var images = Enumerable.Range(0, 8).Select(_ => Enumerable.Range(0, 64).Select(_ => (float)rng.Next(256)).ToArray()).ToList();
        var schema = SchemaDefinition.Create(typeof(TinyData.PixelRow));
        schema[nameof(TinyData.PixelRow.Pixels)].ColumnName = "Image";
        schema["Image"].ColumnType = new VectorDataViewType(NumberDataViewType.Single, 1, 8, 8);
        var data = ml.Data.LoadFromEnumerable(images.Select(p => new TinyData.PixelRow { Pixels = p }), schema);

        var tokenizer = (VqganTokenizerTransformer)ml.Model.Load(Path.Combine(folder, "tokenizer-1.1.zip"), out _);
        Assert.IsFalse(tokenizer.WholeImages);
        Assert.AreEqual((0, 0), (tokenizer.TrainedSteps, tokenizer.GanSteps), "saved before training states: an unknown history");
        var expected = File.ReadAllText(Path.Combine(folder, "tokens-1.1.txt")).Split(',').Select(uint.Parse).ToArray();
        CollectionAssert.AreEqual(expected, TinyData.Tokens(tokenizer.Transform(data)));

        var prior = (PriorTransformer)ml.Model.Load(Path.Combine(folder, "prior-1.1.zip"), out _);
        Assert.AreEqual((4, 4), prior.Layout.Canvas);
        Assert.AreEqual(16, prior.Sample(new[] { new long[] { 1 } }, new[] { 1 })[0].Length);

        // A generator of that prior (top-k 3, seed 5), saved when CUDA-graph sampling was off by default: it loads
        // with the current default and draws the tokens it drew then for classes 0 and 1 (graphs change nothing on a CPU).
        var generator = (TokenGeneratorTransformer)ml.Model.Load(Path.Combine(folder, "generator-1.1.zip"), out _);
        Assert.IsTrue(generator.Options.CudaGraphs);
        Assert.AreEqual((3, 5), (generator.Options.TopK, generator.Options.Seed));
        var labels = ml.Data.LoadFromEnumerable(new[] { new LabelRow { Label = 0 }, new LabelRow { Label = 1 } }, LabelSchema(2));
        var generated = ml.Data.CreateEnumerable<GeneratedRow>(generator.Transform(labels), false).SelectMany(r => r.Generated).ToArray();
        CollectionAssert.AreEqual(File.ReadAllText(Path.Combine(folder, "generated-1.1.txt")).Split(',').Select(uint.Parse).ToArray(), generated);

        // Saved now, an explicit choice of the eager loop stays.
        var eager = ml.Transforms.GenerateTokens("Generated", prior, options: new Sampling.SamplingOptions { CudaGraphs = false }).Fit(labels);
        string path = Path.Combine(Path.GetTempPath(), $"taming-eager-{Environment.ProcessId}.zip");
        ml.Model.Save(eager, labels.Schema, path);
        Assert.IsFalse(((TokenGeneratorTransformer)ml.Model.Load(path, out _)).Options.CudaGraphs);
        File.Delete(path);
    }

    private sealed class LabelRow { public uint Label { get; set; } }

    private sealed class GeneratedRow { [VectorType] public uint[] Generated { get; set; } = Array.Empty<uint>(); }

    private static SchemaDefinition LabelSchema(int classes)
    {
        var schema = SchemaDefinition.Create(typeof(LabelRow));
        schema["Label"].ColumnType = new KeyDataViewType(typeof(uint), classes);
        return schema;
    }
}
