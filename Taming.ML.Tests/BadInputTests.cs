using System.IO.Compression;
using Taming.ML.Data;
using Taming.ML.Evaluation;

namespace Taming.ML.Tests;

[TestClass]
public sealed class BadInputTests
{
    private static readonly string Temp = Path.Combine(Path.GetTempPath(), "taming-bad-" + Environment.ProcessId);
    private static VqganTokenizerTransformer? tokenizer;

    private static VqganTokenizerTransformer Tokenizer() =>
        tokenizer ??= new MLContext(seed: 1).Transforms.TokenizeImages("Tokens", "Image", TinyData.Options(steps: 2)).Fit(TinyData.ImageView(8));

    [ClassInitialize]
    public static void Setup(TestContext _) => Directory.CreateDirectory(Temp);

    [ClassCleanup]
    public static void Cleanup() => Directory.Delete(Temp, recursive: true);

    private static void AssertMessage(Exception e, params string[] parts)
    {
        foreach (var part in parts) StringAssert.Contains(e.Message, part);
    }

    [TestMethod]
    public void AnImageGridOfNoImagesOrWrongSizedOnesIsRefused()
    {
        string path = Path.Combine(Temp, "grid.png");
        var e = Assert.ThrowsExactly<ArgumentException>(() => ImageGrid.SavePng(path, new[] { Array.Empty<byte[]>() }, 1, 4, 4));
        AssertMessage(e, "no images");
        e = Assert.ThrowsExactly<ArgumentException>(() => ImageGrid.SavePng(path, new[] { new[] { new byte[16], new byte[15] } }, 1, 4, 4));
        AssertMessage(e, "row 0, column 1 has 15 values", "4×4×1 image has 16");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ImageGrid.SavePng(path, new[] { new[] { new byte[32] } }, 2, 4, 4));
        Assert.IsFalse(File.Exists(path), "nothing was written");
        ImageGrid.SavePng(path, new[] { new[] { new byte[48] } }, 3, 4, 4, scale: 2);
        using var grid = MLImage.CreateFromFile(path);
        Assert.AreEqual((2 + 8 + 2, 2 + 8 + 2), (grid.Width, grid.Height));
    }

    [TestMethod]
    public void AModelWithoutTheWantedStageSaysWhatItHolds()
    {
        var e = Assert.ThrowsExactly<InvalidDataException>(() => TamingCatalog.FindPrior(Tokenizer()));
        AssertMessage(e, "holds no transformer prior", "it holds VqganTokenizerTransformer");
        var ml = new MLContext();
        var data = TinyData.ImageView(1);
        var chain = ml.Transforms.CopyColumns("Copy", "Label").Append(ml.Transforms.DropColumns("Copy")).Fit(data);
        e = Assert.ThrowsExactly<InvalidDataException>(() => TamingCatalog.FindTokenizer(chain));
        AssertMessage(e, "holds no VQGAN tokenizer", "ColumnCopyingTransformer, ");
    }

    [TestMethod]
    public void AnInputThatReordersItsRowsPerCursorIsAnErrorNotMisalignedTokens()
    {
        // The tokenizer reads images a batch ahead through a second cursor: rows in another order there would pair
        // tokens with another row's pass-through columns, so the row ids are compared.
        var ml = new MLContext(seed: 1);
        var pixels = ml.Data.Cache(TinyData.PixelView(ml, 40));
        var tokenizer = ml.Transforms.TokenizeImages("Tokens", "Pixels", TinyData.Options(steps: 2)).Fit(pixels);
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => TinyData.Tokens(tokenizer.Transform(new ReshuffledView(pixels))));
        AssertMessage(e, "different rows", "mlContext.Data.Cache");
        // The same rows in a fixed order tokenize.
        Assert.AreEqual(40 * 16, TinyData.Tokens(tokenizer.Transform(pixels)).Length);
    }

    /// <summary>A view that serves its rows (with their ids) in a new random order to every cursor.</summary>
    private sealed class ReshuffledView(IDataView inner) : IDataView
    {
        private int cursors;
        public bool CanShuffle => true;
        public DataViewSchema Schema => inner.Schema;
        public long? GetRowCount() => inner.GetRowCount();
        public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null) =>
            inner.GetRowCursor(columnsNeeded, new Random(++cursors));
        public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
            new[] { GetRowCursor(columnsNeeded, rand) };
    }

    [TestMethod]
    public void ATrainingSetTooLargeForMemoryIsRefusedWithWhatToChange()
    {
        // 100,000 images of 256×256×3 are 18.3 GB: refused before any is read where that exceeds the limit.
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => new ImageSet(3, 256, 256, expectedCount: 100_000, memoryLimit: 16L << 30));
        AssertMessage(e, "100,000 images of 256×256×3", "18.3 GB", "16.0 GB", "TakeRows", "LoadRandomCrops");
        Assert.AreEqual(0, new ImageSet(3, 256, 256, expectedCount: 100_000, memoryLimit: 20L << 30).Count, "a set that fits is taken");
        // A count not known ahead is checked as the images come.
        var set = new ImageSet(1, 8, 8, memoryLimit: 1500 * 64);
        for (int i = 0; i < 1025; i++) set.Add(new byte[64]);
        Assert.ThrowsExactly<InvalidOperationException>(() => { for (int i = 0; i < 1024; i++) set.Add(new byte[64]); });
        Assert.AreEqual(2048, set.Count, "the check every 1,024 images stopped the 2,049th");
    }

    [TestMethod]
    public void AskingForCudaWithoutAGpuSaysHowToGetIt()
    {
        if (TorchSharp.torch.cuda.is_available()) Assert.Inconclusive("This machine has CUDA.");
        var ml = new MLContext(seed: 1);
        var options = TinyData.Options(steps: 2);
        options.Device = "cuda";
        var fit = Assert.ThrowsExactly<InvalidOperationException>(() => ml.Transforms.TokenizeImages("Tokens", "Image", options).Fit(TinyData.ImageView(8)));
        StringAssert.Contains(fit.Message, "TorchSharp-cuda-linux");
        Assert.IsFalse(fit.Message.Contains("Trace from") || fit.Message.Contains('\n'), $"a native trace in: {fit.Message}");
        var judge = Assert.ThrowsExactly<InvalidOperationException>(() => ml.Taming().TrainImageClassifier(TinyData.ImageView(8), device: "cuda"));
        StringAssert.Contains(judge.Message, "CUDA");
    }

    [TestMethod]
    public void WrongColumnTypeIsNamed()
    {
        var ml = new MLContext();
        var data = ml.Data.LoadFromEnumerable(new[] { new { Value = 1f } });
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
            ml.Transforms.TokenizeImages("Tokens", "Value", TinyData.Options()).Fit(data));
        AssertMessage(e, "'Value'", "Single", "image");
        var transformCheck = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Tokenizer().Transform(data));
        AssertMessage(transformCheck, "'Image'", "not found", "its columns: 'Value'");
        // ShuffleRows passes on only the columns it can copy: the image column vanishes there, and the message says so.
        var shuffled = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Tokenizer().Transform(ml.Data.ShuffleRows(TinyData.ImageView(4))));
        AssertMessage(shuffled, "its columns: 'Label'", "ShuffleRows");
    }

    [TestMethod]
    public void ImageOfAnotherSizeIsRefusedOrResizedOnRequest()
    {
        var ml = new MLContext(seed: 1);
        var big = TinyData.ImageView(3, side: 12);
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Tokenizer().Transform(big));
        AssertMessage(e, "12×12", "8×8", "ResizeImages");

        var resizing = ml.Transforms.TokenizeImages("Tokens", "Image", TinyData.Options(steps: 2), resizeToResolution: true)
            .Fit(TinyData.ImageView(8));
        Assert.AreEqual(3 * 16, TinyData.Tokens(resizing.Transform(big)).Length);
    }

    [TestMethod]
    public void WrongChannelCountIsNamed()
    {
        var ml = new MLContext();
        var rgb = ml.Data.LoadFromEnumerable(new[] { new RgbRow() }, RgbRow.Schema());
        var options = TinyData.Options();
        options.Channels = 3;
        var rgbTokenizer = ml.Transforms.TokenizeImages("Tokens", "Pixels", options).Fit(rgb);
        var gray = TinyData.PixelView(ml, 2);
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => rgbTokenizer.Transform(gray));
        AssertMessage(e, "1-channel", "3 channels");
    }

    [TestMethod]
    public void PixelsScaledToOneInterleavedOrWithAlphaAreNamed()
    {
        var ml = new MLContext();
        var options = TinyData.Options(steps: 2);
        IDataView AsImage(IDataView pixels) => ml.Transforms.CopyColumns("Image", "Pixels").Fit(pixels).Transform(pixels);
        var scaled = TinyData.PixelView(ml, 4, edit: (_, p) => p.Select(v => v / 255).ToArray());
        var fit = Assert.ThrowsExactly<InvalidDataException>(() => ml.Transforms.TokenizeImages("Tokens", "Pixels", options).Fit(scaled));
        AssertMessage(fit, "'Pixels', row 0", "0–1", "0–255");
        var transform = Assert.ThrowsExactly<InvalidDataException>(() => TinyData.Tokens(Tokenizer().Transform(AsImage(scaled))));
        AssertMessage(transform, "0–1");
        var black = TinyData.PixelView(ml, 2, edit: (_, p) => new float[p.Length]);
        Assert.AreEqual(2 * 16, TinyData.Tokens(Tokenizer().Transform(AsImage(black))).Length, "an all-black image is no scaling mistake");

        foreach (var (dims, expected) in new[] { (new[] { TinyData.Side, TinyData.Side, 3 }, "interleaved"), (new[] { 4, TinyData.Side, TinyData.Side }, "4 channels") })
        {
            var schema = SchemaDefinition.Create(typeof(TinyData.PixelRow));
            schema[nameof(TinyData.PixelRow.Pixels)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, dims);
            var data = ml.Data.LoadFromEnumerable(new[] { new TinyData.PixelRow { Pixels = new float[dims[0] * dims[1] * dims[2]] } }, schema);
            var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Transforms.TokenizeImages("Tokens", "Pixels", options).Fit(data));
            AssertMessage(e, "'Pixels'", expected);
        }
    }

    [TestMethod]
    public void AZeroTimeBudgetIsRefusedBeforeTraining()
    {
        var ml = new MLContext();
        var options = TinyData.Options(steps: 2);
        options.TimeBudget = TimeSpan.Zero;
        var tokenizer = Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.TokenizeImages("Tokens", "Image", options).Fit(TinyData.ImageView(4)));
        AssertMessage(tokenizer, "VqganOptions.TimeBudget", "positive");
        var tokens = Tokenizer().Transform(TinyData.ImageView(4));
        var prior = Assert.ThrowsExactly<ArgumentException>(() =>
            ml.Transforms.FitPrior("Tokens", options: new GptOptions { Layers = 1, Width = 16, Heads = 2, TimeBudget = TimeSpan.FromMinutes(-1) }).Fit(tokens));
        AssertMessage(prior, "GptOptions.TimeBudget", "positive");
    }

    [TestMethod]
    public void ADivergingFitThrowsInsteadOfReturningAModelOfNaNs()
    {
        var ml = new MLContext(seed: 1);
        var options = TinyData.Options(steps: 6);
        (options.LearningRate, options.ProgressInterval) = (1e6, 3);
        var tokenizer = Assert.ThrowsExactly<Training.TrainingDivergedException>(() => ml.Transforms.TokenizeImages("Tokens", "Image", options).Fit(TinyData.ImageView(8)));
        AssertMessage(tokenizer, "tokenizer's training diverged", "step 3", "NaN", "VqganOptions.LearningRate");
        Assert.AreEqual((3, 1e6), (tokenizer.Step, tokenizer.LearningRate));
        var tokens = Tokenizer().Transform(TinyData.ImageView(8));
        var prior = Assert.ThrowsExactly<Training.TrainingDivergedException>(() => ml.Transforms.FitPrior("Tokens",
            options: new GptOptions { Layers = 1, Width = 16, Heads = 2, Steps = 6, ProgressInterval = 3, LearningRate = 1e6 }).Fit(tokens));
        AssertMessage(prior, "prior's training diverged", "step 3", "GptOptions.LearningRate");
        Assert.AreEqual((3, 1e6, "training loss"), (prior.Step, prior.LearningRate, prior.Loss));
    }

    [TestMethod]
    public void AFitEndedByItsTimeBudgetReportsItsLastStep()
    {
        var ml = new MLContext(seed: 1);
        var budget = TimeSpan.FromSeconds(1);
        var tokenizerReports = new List<Training.VqganProgress>();
        var options = TinyData.Options(steps: 1_000_000);
        (options.TimeBudget, options.ProgressInterval, options.Progress) = (budget, int.MaxValue, tokenizerReports.Add);
        ml.Transforms.TokenizeImages("Tokens", "Image", options).Fit(TinyData.ImageView(8));
        Assert.AreEqual(1, tokenizerReports.Count, "one report, at the last step");
        Assert.IsTrue(tokenizerReports[0].Step > 0 && tokenizerReports[0].Elapsed >= budget, $"step {tokenizerReports[0].Step} at {tokenizerReports[0].Elapsed}");
        var priorReports = new List<Training.PriorProgress>();
        ml.Transforms.FitPrior("Tokens", options: new GptOptions
        {
            Layers = 1, Width = 16, Heads = 2, Steps = 1_000_000, TimeBudget = budget, ProgressInterval = int.MaxValue, Progress = priorReports.Add,
        }).Fit(Tokenizer().Transform(TinyData.ImageView(8)));
        Assert.AreEqual(1, priorReports.Count, "one report, at the last step");
        Assert.IsTrue(priorReports[0].Step > 0 && double.IsFinite(priorReports[0].TrainLoss), $"step {priorReports[0].Step}, loss {priorReports[0].TrainLoss}");
    }

    [TestMethod]
    public void TokensOfAnotherTokenizerWithAsManyCodesAreRefusedByThePriorAndTheDecoder()
    {
        var ml = new MLContext(seed: 1);
        var images = TinyData.ImageView(8);
        var other = TinyData.Options(steps: 2);
        other.Seed = 4; // the same shape and codebook size, another codebook
        var otherTokenizer = ml.Transforms.TokenizeImages("Tokens", "Image", other).Fit(images);
        var tokens = Tokenizer().Transform(images);
        var prior = ml.Transforms.FitPrior("Tokens", "Label", options: new GptOptions { Layers = 1, Width = 16, Heads = 2, Steps = 2 }).Fit(tokens);
        Assert.IsNotNull(prior.Layout.Codebook, "the prior remembers the codebook of the tokens it was fitted on");

        // Scoring tokens of the other tokenizer, and decoding generated tokens with it, are refused by name.
        var score = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => prior.Transform(otherTokenizer.Transform(images)));
        AssertMessage(score, "'Tokens'", "codebook", "the prior was fitted on");
        var labels = ml.Data.TakeRows(images, 2);
        var generate = ml.Transforms.GenerateTokens("Generated", prior);
        var decode = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
            generate.Append(ml.Transforms.DecodeTokens("Decoded", "Generated", otherTokenizer)).Fit(labels).Transform(labels));
        AssertMessage(decode, "'Generated'", "codebook", "this decoder's tokenizer");

        // The same tokenizer, the prior and the generator after a save and load, pass.
        string priorPath = Path.Combine(Temp, "codebook-prior.zip"), tokenizerPath = Path.Combine(Temp, "codebook-tokenizer.zip");
        ml.Model.Save(prior, tokens.Schema, priorPath);
        ml.Model.Save(Tokenizer(), images.Schema, tokenizerPath);
        var fresh = new MLContext(seed: 1);
        var loadedPrior = (PriorTransformer)fresh.Model.Load(priorPath, out _);
        var loadedTokenizer = (VqganTokenizerTransformer)fresh.Model.Load(tokenizerPath, out _);
        Assert.AreEqual(prior.Layout, loadedPrior.Layout);
        var decoded = fresh.Transforms.GenerateTokens("Generated", loadedPrior)
            .Append(fresh.Transforms.DecodeTokens("Decoded", "Generated", loadedTokenizer)).Fit(labels).Transform(labels);
        Assert.AreEqual(2, decoded.GetColumn<Microsoft.ML.Data.MLImage>("Decoded").Count());
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => loadedPrior.Transform(otherTokenizer.Transform(images)));

        // An image-conditioned prior checks its condition tokens too (the annotation survives ML.NET's CopyColumns).
        var conditions = ml.Transforms.TokenizeImages("Condition", "Image", other).Fit(images).Transform(tokens);
        var conditional = ml.Transforms.FitPrior("Tokens", conditionColumnName: "Condition", options: new GptOptions { Layers = 1, Width = 16, Heads = 2, Steps = 2 }).Fit(conditions);
        var wrongConditions = ml.Transforms.CopyColumns("Condition", "Tokens").Fit(tokens).Transform(tokens);
        var condition = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Transforms.GenerateTokens("Generated", conditional).Fit(wrongConditions).Transform(wrongConditions));
        AssertMessage(condition, "'Condition'", "condition tokens of");
        Assert.AreEqual(8, ml.Transforms.GenerateTokens("Generated", conditional).Fit(conditions).Transform(conditions).GetColumn<VBuffer<uint>>("Generated").Count());
    }

    [TestMethod]
    public void OptionsThatWouldTrainTowardsNonsenseAreNamed()
    {
        var tokenizer = new (Action<VqganOptions> Set, string Name)[]
        {
            (o => o.DiscWeight = -1, "DiscWeight"), (o => o.PerceptualWeight = double.NaN, "PerceptualWeight"),
            (o => o.CodebookWeight = double.PositiveInfinity, "CodebookWeight"), (o => o.Beta = double.NaN, "Beta"),
            (o => o.AdaptiveWeightDelta = 0, "AdaptiveWeightDelta"), (o => o.Dropout = 1, "Dropout"),
            (o => o.DeadCodeRestartSteps = -1, "DeadCodeRestartSteps"), (o => o.DiscChannels = 0, "DiscChannels"),
            (o => o.ProgressInterval = 0, "ProgressInterval"), (o => o.BatchSize = -1, "BatchSize"),
        };
        TinyData.Options().Validate();
        var odd = TinyData.Options();
        odd.Resolution = 9; // two resolutions, so a factor of 2: the nearest sizes that fit are named
        AssertMessage(Assert.ThrowsExactly<ArgumentException>(odd.Validate), "VqganOptions.Resolution:", "(8 or 10)");
        foreach (var (set, name) in tokenizer)
        {
            var options = TinyData.Options();
            set(options);
            AssertMessage(Assert.ThrowsExactly<ArgumentException>(options.Validate, name), $"VqganOptions.{name}:");
        }
        var prior = new (Action<GptOptions> Set, string Name)[]
        {
            (o => o.GradientClip = 0, "GradientClip"), (o => o.GradientClip = double.NaN, "GradientClip"),
            (o => o.WeightDecay = double.PositiveInfinity, "WeightDecay"), (o => o.EarlyStoppingPatience = -1, "EarlyStoppingPatience"),
        };
        var unknownDevice = TinyData.Options(steps: 1);
        unknownDevice.Device = "gpu";
        AssertMessage(Assert.ThrowsExactly<ArgumentException>(() => new MLContext().Transforms.TokenizeImages("Tokens", "Image", unknownDevice).Fit(TinyData.ImageView(4))),
            "Device 'gpu'", "\"cuda\"");
        new GptOptions { GradientClip = double.PositiveInfinity }.Validate();
        foreach (var (set, name) in prior)
        {
            var options = new GptOptions();
            set(options);
            AssertMessage(Assert.ThrowsExactly<ArgumentException>(options.Validate, name), $"GptOptions.{name}:");
        }
    }

    [TestMethod]
    public void ADiscriminatorThatWouldLeaveNoPatchIsRefusedBeforeTraining()
    {
        // Two layers leave 8-pixel images no patch: libtorch said so only when the GAN started, deep into the fit.
        var deep = TinyData.Options(steps: 2);
        (deep.DiscLayers, deep.DiscStart) = (2, 0);
        AssertMessage(Assert.ThrowsExactly<ArgumentException>(() => new MLContext().Transforms.TokenizeImages("Tokens", "Image", deep).Fit(TinyData.ImageView(8))),
            "VqganOptions.DiscLayers:", "2 layers", "8-pixel", "at most 1");
        deep.DiscWeight = 0; // no GAN, no discriminator
        deep.Validate();
        var tiny = TinyData.Options();
        (tiny.Resolution, tiny.ChMult) = (4, new[] { 1 });
        AssertMessage(Assert.ThrowsExactly<ArgumentException>(tiny.Validate), "4-pixel images are too small", "DiscWeight = 0");

        Assert.AreEqual(0, VqganOptions.MaxDiscLayers(5));
        Assert.AreEqual(1, VqganOptions.MaxDiscLayers(8));
        Assert.AreEqual(2, VqganOptions.MaxDiscLayers(12));
        Assert.AreEqual(3, VqganOptions.MaxDiscLayers(47));
        Assert.AreEqual(6, VqganOptions.MaxDiscLayers(256));
        // Every depth it allows gives patch logits.
        foreach (int side in new[] { 6, 8, 12, 23, 24, 40 })
            for (int layers = 1; layers <= VqganOptions.MaxDiscLayers(side); layers++)
            {
                using var discriminator = new Taming.ML.Modules.NLayerDiscriminator(1, 4, layers);
                using var logits = discriminator.forward(TorchSharp.torch.zeros(1, 1, side, side));
                Assert.IsTrue(logits.shape[2] >= 1 && logits.shape[3] >= 1, $"{side} pixels, {layers} layers: {string.Join("×", logits.shape)}");
            }
    }

    [TestMethod]
    public void EmptyDataIsRefused()
    {
        var ml = new MLContext();
        var empty = TinyData.PixelView(ml, 0);
        var e = Assert.ThrowsExactly<InvalidOperationException>(() =>
            ml.Transforms.TokenizeImages("Tokens", "Pixels", TinyData.Options()).Fit(empty));
        AssertMessage(e, "empty");
    }

    [TestMethod]
    public void NaNPixelsAreRefused()
    {
        var ml = new MLContext();
        var data = TinyData.PixelView(ml, 4, edit: (i, p) => { if (i == 2) p[5] = float.NaN; return p; });
        var e = Assert.ThrowsExactly<InvalidDataException>(() =>
            ml.Transforms.TokenizeImages("Tokens", "Pixels", TinyData.Options()).Fit(data));
        AssertMessage(e, "'Pixels'", "row 2", "NaN");
    }

    [TestMethod]
    public void OutOfRangeTokensAreRefusedByTheDecoder()
    {
        var ml = new MLContext();
        var rows = new[] { new IdRow { Ids = Enumerable.Repeat(99, 16).ToArray() } };
        var data = ml.Data.LoadFromEnumerable(rows);
        var decoded = ml.Transforms.DecodeTokens("Image", "Ids", Tokenizer()).Fit(data).Transform(data);
        var e = Assert.ThrowsExactly<InvalidDataException>(() =>
        {
            using var cursor = decoded.GetRowCursor(decoded.Schema);
            var getter = cursor.GetGetter<MLImage>(decoded.Schema["Image"]);
            MLImage image = null!;
            cursor.MoveNext();
            getter(ref image);
        });
        AssertMessage(e, "'Ids'", "99", "outside the codebook");
        var wrongLength = ml.Data.LoadFromEnumerable(new[] { new ShortIdRow() });
        var lengthError = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
            ml.Transforms.DecodeTokens("Image", "Ids", Tokenizer()).Fit(wrongLength));
        AssertMessage(lengthError, "1×5 tokens", "4×4");

        // Keys of another codebook size are another tokenizer's tokens, even where every id happens to fit.
        int codes = Tokenizer().Model.Options.CodebookSize + 16;
        var schema = SchemaDefinition.Create(typeof(KeyRow));
        schema[nameof(KeyRow.Keys)].ColumnType = new VectorDataViewType(new KeyDataViewType(typeof(uint), codes), 4, 4);
        var foreign = ml.Data.LoadFromEnumerable(new[] { new KeyRow() }, schema);
        var keyError = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Transforms.DecodeTokens("Image", "Keys", Tokenizer()).Fit(foreign));
        AssertMessage(keyError, "'Keys'", $"{codes} codes");
    }

    private sealed class KeyRow
    {
        public uint[] Keys { get; set; } = Enumerable.Repeat(1u, 16).ToArray();
    }

    [TestMethod]
    public void CorruptForeignAndMissingZipsAreNamed()
    {
        var ml = new MLContext();
        string garbage = Path.Combine(Temp, "garbage.zip");
        File.WriteAllBytes(garbage, new byte[] { 1, 2, 3, 4, 5 });
        AssertMessage(Assert.ThrowsExactly<InvalidDataException>(() => ml.Taming().LoadModel(garbage, out _)), "garbage.zip", "could not be loaded as an ML.NET model");

        string foreign = Path.Combine(Temp, "foreign.zip");
        using (var zip = ZipFile.Open(foreign, ZipArchiveMode.Create))
        using (var writer = new StreamWriter(zip.CreateEntry("readme.txt").Open())) writer.Write("not a model");
        AssertMessage(Assert.ThrowsExactly<InvalidDataException>(() => ml.Taming().LoadModel(foreign, out _)), "foreign.zip");

        Assert.ThrowsExactly<FileNotFoundException>(() => ml.Taming().LoadModel(Path.Combine(Temp, "missing.zip"), out _));

        // A genuine model whose weights entry was damaged.
        string good = Path.Combine(Temp, "good.zip"), damaged = Path.Combine(Temp, "damaged.zip");
        ml.Model.Save(Tokenizer(), TinyData.ImageView(1).Schema, good);
        File.Copy(good, damaged, overwrite: true);
        using (var zip = ZipFile.Open(damaged, ZipArchiveMode.Update))
        {
            var entry = zip.Entries.Single(e => e.FullName.EndsWith("VqganWeights"));
            string name = entry.FullName;
            entry.Delete();
            using var stream = zip.CreateEntry(name).Open();
            stream.Write(new byte[] { 9, 9, 9 });
        }
        AssertMessage(Assert.ThrowsExactly<InvalidDataException>(() => ml.Taming().LoadModel(damaged, out _)), "weights");
    }

    private sealed class PixelRow
    {
        [VectorType(1, TinyData.Side, TinyData.Side)]
        public float[] Image { get; set; } = [];
    }

    [TestMethod]
    public void ConvertToOnnxRefusesAPipelineWithATamingStageInsteadOfWritingOneThatTakesTheTokensAsAnInput()
    {
        var ml = new MLContext();
        var pixels = ml.Data.LoadFromEnumerable(TinyData.Images(4).Select(i => new PixelRow { Image = i.Select(b => (float)b).ToArray() }));
        var features = ml.Transforms.Conversion.MapKeyToVector("Features", "Tokens").Fit(Tokenizer().Transform(pixels));
        foreach (var model in new ITransformer[] { Tokenizer(), new TransformerChain<ITransformer>(Tokenizer(), features) })
        {
            using var onnx = new MemoryStream();
            AssertMessage(Assert.ThrowsExactly<InvalidOperationException>(() => ml.Model.ConvertToOnnx(model, pixels, onnx)),
                "can not be fully converted");
        }
    }

    [TestMethod]
    public void IdxReaderRejectsAWrongMagicNumber()
    {
        string path = Path.Combine(Temp, "labels-as-images.idx");
        File.WriteAllBytes(path, new byte[] { 0, 0, 8, 1, 0, 0, 0, 1, 7 }); // a label file (2049)
        var e = Assert.ThrowsExactly<InvalidDataException>(() => IdxFile.ReadImages(path));
        AssertMessage(e, "magic number 2049", "expected 2051");
        Assert.ThrowsExactly<FileNotFoundException>(() => IdxFile.ReadImages(Path.Combine(Temp, "none.idx")));
    }

    [TestMethod]
    public void IdxReaderReadsGzipAndPads()
    {
        string path = Path.Combine(Temp, "two.idx.gz");
        using (var file = File.Create(path))
        using (var gz = new GZipStream(file, CompressionLevel.Fastest))
            gz.Write(new byte[] { 0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8 });
        var (images, rows, cols) = IdxFile.ReadImages(path);
        Assert.AreEqual(2, images.Length);
        Assert.AreEqual((2, 2), (rows, cols));
        CollectionAssert.AreEqual(new byte[] { 5, 6, 7, 8 }, images[1]);
        var view = new MLContext().Data.LoadFromIdx(path, padTo: 4);
        var type = (Microsoft.ML.Transforms.Image.ImageDataViewType)view.Schema["Image"].Type;
        Assert.AreEqual((4, 4), (type.Height, type.Width));
    }

    private sealed class IdRow
    {
        [VectorType(16)] public int[] Ids { get; set; } = Array.Empty<int>();
    }

    private sealed class ShortIdRow
    {
        [VectorType(5)] public int[] Ids { get; set; } = new int[5];
    }

    private sealed class RgbRow
    {
        public float[] Pixels { get; set; } = new float[3 * TinyData.Side * TinyData.Side];

        public static SchemaDefinition Schema()
        {
            var schema = SchemaDefinition.Create(typeof(RgbRow));
            schema[nameof(Pixels)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, 3, TinyData.Side, TinyData.Side);
            return schema;
        }
    }
}
