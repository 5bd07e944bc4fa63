using Taming.ML.Sampling;
using Taming.ML.Training;
using static TorchSharp.torch;

namespace Taming.ML.Tests;

[TestClass]
public sealed class PriorTests
{
    private const int Codes = 8, Classes = 4;
    private static readonly string Temp = Path.Combine(Path.GetTempPath(), "taming-prior-" + Environment.ProcessId);
    private static PriorTransformer? trained;

    private static GptOptions Tiny(int steps = 300) => new()
    {
        Layers = 2, Heads = 2, Width = 32, Dropout = 0, Steps = steps, BatchSize = 16, LearningRate = 3e-3,
        ProgressInterval = 50, ValidationFraction = 0, Seed = 1, InferenceBatchSize = 5,
    };

    /// <summary>
    /// Grids of 2×3 tokens following a rule fixed by the class: token i = (class·2 + i) mod 8. LoadFromEnumerable
    /// takes a scalar [KeyType] value 0-based but a key vector's values as raw keys (1-based).
    /// </summary>
    private static TokenRow[] RuleRows(int count) => Enumerable.Range(0, count)
        .Select(r => new TokenRow { Label = (uint)(r % Classes), Tokens = Rule(r % Classes).Select(t => t + 1).ToArray() }).ToArray();

    private static uint[] Rule(int label) => Enumerable.Range(0, 6).Select(i => (uint)((label * 2 + i) % Codes)).ToArray();

    /// <summary>One class-conditional prior fitted on the rule, shared by the tests that only use it.</summary>
    private static PriorTransformer Trained(MLContext ml) =>
        trained ??= ml.Transforms.FitPrior("Tokens", "Label", options: Tiny()).Fit(ml.Data.LoadFromEnumerable(RuleRows(64)));

    [ClassCleanup]
    public static void Cleanup()
    {
        if (Directory.Exists(Temp)) Directory.Delete(Temp, recursive: true);
    }

    [TestMethod]
    public void ProgressReportsSayWhenThereIsNoValidationAndCountHoursPastOne()
    {
        var prior = new PriorProgress { Step = 1, TotalSteps = 9, TrainLoss = 2, ValidationLoss = double.NaN, Eta = new TimeSpan(1, 2, 30, 5) }.ToString();
        StringAssert.Contains(prior, "val –");
        StringAssert.Contains(prior, "ETA 26:30:05");
        var vqgan = new VqganProgress { Eta = TimeSpan.FromSeconds(75) }.ToString();
        StringAssert.Contains(vqgan, "ETA 01:15");
    }

    [TestMethod]
    public void TinyGptLearnsADeterministicRuleToNearZeroLoss()
    {
        var reports = new List<PriorProgress>();
        var options = Tiny();
        options.Progress = reports.Add;
        var ml = new MLContext(seed: 1);
        var prior = ml.Transforms.FitPrior("Tokens", "Label", options: options).Fit(ml.Data.LoadFromEnumerable(RuleRows(64)));
        Assert.IsTrue(reports[^1].TrainLoss < 0.05, $"final loss {reports[^1].TrainLoss}");
        Assert.IsTrue(reports[0].TrainLoss > 10 * reports[^1].TrainLoss);
        var bits = ScoresOf(prior.Transform(ml.Data.LoadFromEnumerable(RuleRows(8))));
        Assert.IsTrue(bits.All(b => b < 0.1), string.Join(", ", bits));
    }

    [TestMethod]
    public void ClassConditioningSelectsTheClassRule()
    {
        var ml = new MLContext(seed: 1);
        var prior = Trained(ml);
        for (int label = 0; label < Classes; label++)
        {
            var sample = prior.Sample(new[] { new long[] { label } }, new[] { label + 10 }, new SamplingOptions { TopK = 0 })[0];
            CollectionAssert.AreEqual(Rule(label), sample.Select(t => (uint)t).ToArray(), $"class {label}");
        }
    }

    [TestMethod]
    public void ClassNamesStayWithThePriorSoTextLabelsAreReadByNameAndOtherMappingsAreRefused()
    {
        var ml = new MLContext(seed: 1);
        // Named classes mapped to keys as LoadFromImageFolder maps its sub-folders: "c0" … "c3", in order.
        var named = ml.Data.LoadFromEnumerable(RuleRows(64).Select(r => new NamedRow { Class = "c" + r.Label, Tokens = r.Tokens }).ToArray());
        var mapping = ml.Transforms.Conversion.MapValueToKey("Label", "Class").Fit(named);
        var prior = ml.Transforms.FitPrior("Tokens", "Label", options: Tiny()).Fit(mapping.Transform(named));
        CollectionAssert.AreEqual(new[] { "c0", "c1", "c2", "c3" }, prior.Layout.ClassNames!.ToArray());
        string path = Path.Combine(Temp, "named.zip");
        Directory.CreateDirectory(Temp);
        ml.Model.Save(prior, mapping.Transform(named).Schema, path);
        var reloaded = TamingCatalog.FindPrior(new MLContext().Model.Load(path, out _));
        CollectionAssert.AreEqual(new[] { "c0", "c1", "c2", "c3" }, reloaded.Layout.ClassNames!.ToArray());
        StringAssert.Contains(reloaded.Layout.ToString(), "ClassNames = [c0, c1, c2, c3]");
        Assert.AreEqual(prior.Layout, reloaded.Layout, "layouts compare their class names name for name");
        Assert.AreNotEqual(prior.Layout, prior.Layout with { ClassNames = new[] { "c0", "c1", "c3", "c2" } });

        // Text labels are read by name: each row gets its named class's rule.
        var wanted = ml.Data.LoadFromEnumerable(new[] { "c2", "c0", "c3" }.Select(c => new ClassNameRow { Class = c }).ToArray());
        var generated = ml.Transforms.GenerateTokens("Generated", reloaded, labelColumnName: "Class", options: new SamplingOptions { TopK = 1 })
            .Fit(wanted).Transform(wanted);
        var grids = generated.GetColumn<uint[]>("Generated").ToList();
        CollectionAssert.AreEqual(Rule(2).Select(t => t + 1).ToArray(), grids[0]);
        CollectionAssert.AreEqual(Rule(0).Select(t => t + 1).ToArray(), grids[1]);
        CollectionAssert.AreEqual(Rule(3).Select(t => t + 1).ToArray(), grids[2]);
        var unknown = ml.Data.LoadFromEnumerable(new[] { new ClassNameRow { Class = "dog" } });
        var e = Assert.ThrowsExactly<InvalidDataException>(() => ml.Transforms.GenerateTokens("G", reloaded, labelColumnName: "Class")
            .Fit(unknown).Transform(unknown).GetColumn<uint[]>("G").ToList());
        StringAssert.Contains(e.Message, "'dog' is not one of the prior's classes ('c0', 'c1', 'c2', 'c3')");

        // A key label that maps the classes otherwise (another folder's: "c3" first) is refused, not read as class 0.
        var other = ml.Data.LoadFromEnumerable(new[] { "c3", "c1" }.Select(c => new ClassNameRow { Class = c }).ToArray());
        var otherKeys = ml.Transforms.Conversion.MapValueToKey("Label", "Class").Fit(other).Transform(other);
        var refused = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Transforms.GenerateTokens("G", reloaded).Fit(otherKeys));
        StringAssert.Contains(refused.Message, "its key 1 is 'c3', the prior's is 'c0'");
        // The same key column with the prior's own mapping is accepted.
        Assert.AreEqual(2, ml.Transforms.GenerateTokens("G", reloaded).Fit(mapping.Transform(other)).Transform(mapping.Transform(other))
            .GetColumn<uint[]>("G").Count());
        // A prior fitted on unnamed keys cannot read names.
        var noNames = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Transforms.GenerateTokens("G", Trained(ml), labelColumnName: "Class").Fit(wanted));
        StringAssert.Contains(noNames.Message, "class indices only");

        // Rows of only some of the classes (the start of data sorted by class) are fitted with a warning that names the rest.
        var warnings = new List<string>();
        ml.Log += (_, m) => { if (m.Kind == Microsoft.ML.Runtime.ChannelMessageKind.Warning) warnings.Add(m.RawMessage); };
        var firstClasses = ml.Data.LoadFromEnumerable(RuleRows(16).Where(r => r.Label < 2).Select(r => new NamedRow { Class = "c" + r.Label, Tokens = r.Tokens }).ToArray());
        ml.Transforms.FitPrior("Tokens", "Label", options: Tiny(steps: 2)).Fit(mapping.Transform(firstClasses));
        Assert.IsTrue(warnings.Any(w => w.StartsWith("2 of the 4 classes have no training rows ('c2', 'c3')")), string.Join("\n", warnings));
    }

    [TestMethod]
    public void TheTrainingStepAddsItsLossAndTrainsAndPKeepCorruptsOnlyTheInputs()
    {
        // The step that a GPU captures as a graph, run eagerly here: the batch is read from a fixed buffer and the
        // loss added to a device sum, so the trainer reads neither per step.
        random.manual_seed(11);
        var options = Tiny();
        var model = new Gpt(options, new PriorLayout(Conditioning.Class, Codes, 2, 3, ClassCount: Classes));
        model.train();
        var (decay, noDecay) = model.ParameterGroups();
        using var optimizer = new FlatAdam(new[] { (decay.AsEnumerable(), 0.0), (noDecay, 0.0) }, beta1: 0.9, beta2: 0.95) { LearningRate = 1e-2 };
        using var step = new GptTrainingStep(model, optimizer, options, 4, CPU);
        var sequences = cat(new[] { randint(Classes, new long[] { 4, 1 }) + Codes, randint(Codes, new long[] { 4, 6 }) }, 1);
        step.Tokens.copy_(sequences);
        float Nll() { using var _ = no_grad(); return model.ImageTokenNll(sequences).mean().item<float>(); }

        float first = Nll();
        step.Run();
        Assert.AreEqual(first, step.LossSum.item<float>(), 1e-5, "the first step's loss");
        float second = Nll();
        Assert.IsTrue(second < first, $"loss {first} → {second}: the step did not train");
        step.Run();
        Assert.AreEqual(first + second, step.LossSum.item<float>(), 1e-5, "the losses are summed");

        float now = Nll();
        using var _ = no_grad();
        Assert.AreEqual(now, GptTrainingStep.Loss(model, sequences, pKeep: 1).item<float>(), 1e-6, "pkeep 1 changed the inputs");
        Assert.AreNotEqual(now, GptTrainingStep.Loss(model, sequences, pKeep: 0).item<float>(), 1e-3, "pkeep 0 left the inputs as they were");
    }

    [TestMethod]
    public void TopKOneIsGreedyArgmax()
    {
        random.manual_seed(7);
        var model = new Gpt(Tiny(), new PriorLayout(Conditioning.Class, Codes, 2, 3, ClassCount: Classes));
        var prefix = tensor(new long[] { Codes + 1, Codes + 3 }, new long[] { 2, 1 });
        var sampled = PriorSampler.Sample(model, prefix, new[] { 1, 2 }, new SamplingOptions { TopK = 1, Temperature = 0.7 });
        var greedy = prefix;
        using (no_grad())
            for (int i = 0; i < 6; i++)
                greedy = cat(new[] { greedy, model.forward(greedy).select(1, -1).argmax(1, keepdim: true) }, 1);
        CollectionAssert.AreEqual(greedy.narrow(1, 1, 6).data<long>().ToArray(), sampled.data<long>().ToArray());
    }

    [TestMethod]
    public void TopKAndTopPKeepExactlyTheCodesTheyName()
    {
        // Probabilities ∝ e^logit; codes 5, 4, 3 are the top three (with a tie at 3 and 2 broken by neither filter).
        var logits = tensor(new float[] { 0, 1, 2, 2, 4, 5 }).view(1, 6);
        HashSet<long> Picked(SamplingOptions o) =>
            Enumerable.Range(0, 200).Select(i => PriorSampler.Pick(logits, tensor(new[] { i / 200f }), o).item<long>()).ToHashSet();
        CollectionAssert.AreEquivalent(new long[] { 4, 5 }, Picked(new SamplingOptions { TopK = 2 }).ToArray());
        CollectionAssert.AreEquivalent(new long[] { 2, 3, 4, 5 }, Picked(new SamplingOptions { TopK = 3 }).ToArray(), "ties with the k-th stay in");
        CollectionAssert.AreEquivalent(new long[] { 0, 1, 2, 3, 4, 5 }, Picked(new SamplingOptions { TopK = 0 }).ToArray());
        // p(5) ≈ 0.63, p(4) ≈ 0.23: top-p 0.7 keeps the two codes whose mass before them is under 0.7.
        CollectionAssert.AreEquivalent(new long[] { 4, 5 }, Picked(new SamplingOptions { TopK = 0, TopP = 0.7 }).ToArray());
        Assert.AreEqual(5L, PriorSampler.Pick(logits, tensor(new[] { 0.999f }), new SamplingOptions { TopK = 1 }).item<long>());
    }

    [TestMethod]
    public void CachedSamplingEqualsUncachedTokenForToken()
    {
        random.manual_seed(8);
        var model = new Gpt(Tiny(), new PriorLayout(Conditioning.Image, Codes, 3, 3, ConditionCodebookSize: 5, ConditionHeight: 2, ConditionWidth: 2));
        var prefix = randint(5, new long[] { 6, 4 }) + Codes;
        var seeds = Enumerable.Range(100, 6).ToArray();
        foreach (var o in new[] { new SamplingOptions { TopK = 0 }, new SamplingOptions { TopK = 3, TopP = 0.9, Temperature = 1.3 } })
        {
            var cached = PriorSampler.Sample(model, prefix, seeds, o).data<long>().ToArray();
            o.UseCache = false;
            var uncached = PriorSampler.Sample(model, prefix, seeds, o).data<long>().ToArray();
            CollectionAssert.AreEqual(uncached, cached);
            Assert.IsTrue(cached.Distinct().Count() > 1, "samples are degenerate");
        }
    }

    [TestMethod]
    public void TheFixedShapeStepForCudaGraphsDrawsTheSameTokens()
    {
        // The step that a GPU captures as a graph, run eagerly here: whole-block masked attention, positions in buffers.
        random.manual_seed(10);
        foreach (var layout in new[] { new PriorLayout(Conditioning.Class, Codes, 3, 3, ClassCount: 4), new PriorLayout(Conditioning.None, Codes, 2, 3) })
        {
            var model = new Gpt(Tiny(), layout);
            var prefix = layout.Conditioning == Conditioning.Class ? tensor(new long[] { 0, 1, 2, 3, 1 }).view(5, 1) + Codes : full(new long[] { 5, 1 }, (long)Codes);
            var seeds = Enumerable.Range(7, 5).ToArray();
            foreach (var o in new[] { new SamplingOptions { TopK = 0 }, new SamplingOptions { TopK = 3, TopP = 0.9, Temperature = 1.3 } })
            {
                var eager = PriorSampler.Sample(model, prefix, seeds, o).data<long>().ToArray();
                var fixedShape = PriorSampler.Sample(model, prefix, seeds, o, fixedShapeStep: true).data<long>().ToArray();
                CollectionAssert.AreEqual(eager, fixedShape, $"{layout.Conditioning}, top-k {o.TopK}");
                Assert.IsTrue(eager.Distinct().Count() > 1, "samples are degenerate");
            }
        }
    }

    [TestMethod]
    public void ARowsSampleDoesNotDependOnItsBatch()
    {
        random.manual_seed(9);
        var model = new Gpt(Tiny(), new PriorLayout(Conditioning.None, Codes, 2, 2));
        var alone = PriorSampler.Sample(model, full(new long[] { 1, 1 }, (long)Codes), new[] { 42 }, new SamplingOptions()).data<long>().ToArray();
        var inBatch = PriorSampler.Sample(model, full(new long[] { 3, 1 }, (long)Codes), new[] { 5, 42, 6 }, new SamplingOptions());
        CollectionAssert.AreEqual(alone, inBatch[1].data<long>().ToArray());
    }

    [TestMethod]
    public void RowsBeyondTheCacheBudgetAreDrawnInGroupsWithTheSameTokens()
    {
        random.manual_seed(11);
        var model = new Gpt(Tiny(), new PriorLayout(Conditioning.Class, Codes, 2, 3, ClassCount: 4));
        var prefix = tensor(new long[] { 0, 1, 2, 3, 1 }).view(5, 1) + Codes;
        var seeds = Enumerable.Range(20, 5).ToArray();
        var options = new SamplingOptions { TopK = 0 };
        var whole = PriorSampler.Sample(model, prefix, seeds, options).data<long>().ToArray();
        long budget = Gpt.CacheBudgetBytes;
        try
        {
            Gpt.CacheBudgetBytes = 2 * model.CacheBytesPerSequence + 1; // groups of 2, 2 and 1 rows
            Assert.AreEqual(2, model.CachedRowsPerCall);
            CollectionAssert.AreEqual(whole, PriorSampler.Sample(model, prefix, seeds, options).data<long>().ToArray());
            CollectionAssert.AreEqual(whole, PriorSampler.Sample(model, prefix, seeds, options, fixedShapeStep: true).data<long>().ToArray());
            Gpt.CacheBudgetBytes = 1;
            Assert.AreEqual(1, model.CachedRowsPerCall);
            CollectionAssert.AreEqual(whole, PriorSampler.Sample(model, prefix, seeds, options).data<long>().ToArray());
        }
        finally
        {
            Gpt.CacheBudgetBytes = budget;
        }
        Assert.IsTrue(whole.Distinct().Count() > 1, "samples are degenerate");
    }

    [TestMethod]
    public void SaveLoadRoundTripsScoresAndSamplesInAFreshContext()
    {
        Directory.CreateDirectory(Temp);
        var ml = new MLContext(seed: 1);
        var prior = Trained(ml);
        var data = ml.Data.LoadFromEnumerable(RuleRows(9));
        var generator = ml.Transforms.GenerateTokens("Generated", prior, options: new SamplingOptions { Seed = 3, TopK = 0 }).Fit(data);
        var chain = new TransformerChain<ITransformer>(prior, generator);
        string path = Path.Combine(Temp, "prior.zip");
        ml.Model.Save(chain, data.Schema, path);
        var loaded = new MLContext(seed: 2).Model.Load(path, out _);

        CollectionAssert.AreEqual(ScoresOf(chain.Transform(data)), ScoresOf(loaded.Transform(data)));
        var before = TinyData.Tokens(chain.Transform(data), "Generated");
        CollectionAssert.AreEqual(before, TinyData.Tokens(loaded.Transform(data), "Generated"));
        Assert.AreEqual(9 * 6, before.Length);
        var type = (VectorDataViewType)loaded.GetOutputSchema(data.Schema)["Generated"].Type;
        CollectionAssert.AreEqual(new[] { 2, 3 }, type.Dimensions.ToArray());
        var loadedPrior = TamingCatalog.FindPrior(loaded);
        Assert.AreEqual(Conditioning.Class, loadedPrior.Layout.Conditioning);
        Assert.AreEqual((prior.TrainedSteps, prior.Training.LearningRate), (loadedPrior.TrainedSteps, loadedPrior.Training.LearningRate));
        Assert.IsTrue(loadedPrior.TrainedSteps > 0 && loadedPrior.Training.LearningRate > 0, "the training state is recorded");
    }

    [TestMethod]
    public void UnconditionalPriorGeneratesFromRowsWithoutColumns()
    {
        var ml = new MLContext(seed: 1);
        var rows = RuleRows(16).Select(r => new TokenRow { Label = 0, Tokens = r.Tokens }).ToArray();
        var prior = ml.Transforms.FitPrior("Tokens", options: Tiny(steps: 20)).Fit(ml.Data.LoadFromEnumerable(rows));
        Assert.AreEqual(Conditioning.None, prior.Layout.Conditioning);
        var seeds = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 4).Select(i => new SeedRow { Seed = i }));
        var generated = ml.Transforms.GenerateTokens("Generated", prior, seedColumnName: "Seed").Fit(seeds).Transform(seeds);
        var tokens = TinyData.Tokens(generated, "Generated");
        Assert.AreEqual(4 * 6, tokens.Length);
        Assert.IsTrue(tokens.All(t => t is >= 1 and <= Codes));
    }

    [TestMethod]
    public void ImageConditionedPriorLearnsToCopyTheConditionTokens()
    {
        // The image tokens equal the condition tokens (a second "tokenizer" with the same grid): a copy task.
        var rng = new Random(4);
        var rows = Enumerable.Range(0, 96).Select(_ =>
        {
            var ids = Enumerable.Range(0, 6).Select(_ => (uint)rng.Next(Codes) + 1).ToArray();
            return new ConditionRow { Condition = ids, Tokens = ids };
        }).ToArray();
        var ml = new MLContext(seed: 1);
        var options = Tiny(steps: 400);
        var data = ml.Data.LoadFromEnumerable(rows);
        var prior = ml.Transforms.FitPrior("Tokens", conditionColumnName: "Condition", options: options).Fit(data);
        Assert.AreEqual(Conditioning.Image, prior.Layout.Conditioning);
        var test = ml.Data.LoadFromEnumerable(rows.Take(5));
        var generated = ml.Transforms.GenerateTokens("Generated", prior, options: new SamplingOptions { TopK = 1 }).Fit(test).Transform(test);
        CollectionAssert.AreEqual(rows.Take(5).SelectMany(r => r.Condition).ToArray(), TinyData.Tokens(generated, "Generated"));
    }

    [TestMethod]
    public void EarlyStoppingEndsTrainingWhenValidationStopsImproving()
    {
        // Random tokens: nothing to learn beyond their frequencies, so validation loss soon stops improving.
        var rng = new Random(5);
        var rows = Enumerable.Range(0, 200).Select(_ => new TokenRow
        {
            Label = (uint)rng.Next(Classes), Tokens = Enumerable.Range(0, 6).Select(_ => (uint)rng.Next(Codes) + 1).ToArray(),
        }).ToArray();
        var reports = new List<PriorProgress>();
        var options = Tiny(steps: 3000);
        options.ValidationFraction = 0.2;
        options.EarlyStoppingPatience = 2;
        options.ProgressInterval = 25;
        options.Progress = reports.Add;
        var ml = new MLContext(seed: 1);
        var infos = new List<string>();
        ml.Log += (_, m) => { if (m.Kind == Microsoft.ML.Runtime.ChannelMessageKind.Info) infos.Add(m.RawMessage); };
        ml.Transforms.FitPrior("Tokens", "Label", options: options).Fit(ml.Data.LoadFromEnumerable(rows));
        Assert.IsTrue(reports[^1].Step < 3000, $"ran all {reports[^1].Step} steps");
        Assert.IsTrue(reports.All(r => !double.IsNaN(r.ValidationLoss)));
        // The log says which step's weights the prior keeps: the report with the lowest validation loss.
        var best = reports.MinBy(r => r.ValidationLoss)!;
        Assert.IsTrue(best.Step < reports[^1].Step);
        CollectionAssert.Contains(infos, $"Kept the weights of step {best.Step:N0}, whose validation loss was the lowest " +
                                         $"({best.ValidationLoss:F4}, {best.ValidationLoss / Math.Log(2):F3} bits/token).", string.Join("\n", infos));
    }

    [TestMethod]
    public void GeneratorSamplesCanvasesLargerThanTheWindowAndSavesTheirSize()
    {
        Directory.CreateDirectory(Temp);
        var ml = new MLContext(seed: 1);
        var prior = Trained(ml);
        var labels = ml.Data.LoadFromEnumerable(RuleRows(3));
        var options = new SamplingOptions { HeightTokens = 4, WidthTokens = 9, TopK = 1 };
        var generator = ml.Transforms.GenerateTokens("Canvas", prior, options: options).Fit(labels);
        var type = (VectorDataViewType)generator.GetOutputSchema(labels.Schema)["Canvas"].Type;
        CollectionAssert.AreEqual(new[] { 4, 9 }, type.Dimensions.ToArray());
        var tokens = TinyData.Tokens(generator.Transform(labels), "Canvas");
        Assert.AreEqual(3 * 36, tokens.Length);
        // Greedy sampling continues the class rule (token = class·2 + column index, mod 8) across the wide canvas's first row.
        var firstRow = tokens.Take(9).Select(t => (int)t - 1).ToArray();
        CollectionAssert.AreEqual(Enumerable.Range(0, 3).Select(i => i % Codes).ToArray(), firstRow.Take(3).ToArray());

        string path = Path.Combine(Temp, "canvas.zip");
        ml.Model.Save(generator, labels.Schema, path);
        var loaded = new MLContext().Model.Load(path, out _);
        CollectionAssert.AreEqual(tokens, TinyData.Tokens(loaded.Transform(labels), "Canvas"));

        var small = new SamplingOptions { HeightTokens = 1, WidthTokens = 9 };
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Transforms.GenerateTokens("C", prior, options: small).Fit(labels));
        StringAssert.Contains(e.Message, "smaller than the prior's window");
    }

    [TestMethod]
    public void WindowedImageConditioningNeedsAConditionCanvasOfTheOutputSize()
    {
        var rng = new Random(6);
        var rows = Enumerable.Range(0, 32).Select(_ =>
        {
            var ids = Enumerable.Range(0, 6).Select(_ => (uint)rng.Next(Codes) + 1).ToArray();
            return new ConditionRow { Condition = ids, Tokens = ids };
        }).ToArray();
        var ml = new MLContext(seed: 1);
        var prior = ml.Transforms.FitPrior("Tokens", conditionColumnName: "Condition", options: Tiny(steps: 5)).Fit(ml.Data.LoadFromEnumerable(rows));
        var canvas = new SamplingOptions { HeightTokens = 2, WidthTokens = 6 };
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
            ml.Transforms.GenerateTokens("G", prior, options: canvas).Fit(ml.Data.LoadFromEnumerable(rows)));
        StringAssert.Contains(e.Message, "6 condition tokens per row; expected 12");
        var wide = ml.Data.LoadFromEnumerable(new[] { new WideConditionRow() });
        var generated = ml.Transforms.GenerateTokens("G", prior, options: canvas).Fit(wide).Transform(wide);
        Assert.AreEqual(12, TinyData.Tokens(generated, "G").Length);
    }

    [TestMethod]
    public void LongSequencesWarnAndQuietStretchesOfSlowStepsAreLogged()
    {
        // Whole 33×33 grids (1,089 tokens a sequence) warn and point to the window; 16×16 windows of them do not.
        var ml = new MLContext(seed: 1);
        var warnings = new List<string>();
        ml.Log += (_, m) => { if (m.Kind == Microsoft.ML.Runtime.ChannelMessageKind.Warning) warnings.Add(m.RawMessage); };
        var rng = new Random(3);
        var rows = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 4).Select(_ => new LongRow { Tokens = Enumerable.Range(0, 33 * 33).Select(_ => (uint)rng.Next(Codes) + 1).ToArray() }).ToArray());
        var options = Tiny(steps: 1);
        options.BatchSize = 2;
        ml.Transforms.FitPrior("Tokens", options: options).Fit(rows);
        Assert.IsTrue(warnings.Any(w => w.StartsWith("The prior models 33×33 tokens at a time (1,089 a sequence)") && w.Contains("GptOptions.Window")), string.Join("\n", warnings));
        warnings.Clear();
        options.Window = 16;
        ml.Transforms.FitPrior("Tokens", options: options).Fit(rows);
        Assert.IsFalse(warnings.Any(w => w.StartsWith("The prior models")), string.Join("\n", warnings));

        // A window larger than the grids is the grids' size, and the log says so.
        var infos = new List<string>();
        ml.Log += (_, m) => { if (m.Kind == Microsoft.ML.Runtime.ChannelMessageKind.Info) infos.Add(m.RawMessage); };
        ml.Transforms.FitPrior("Tokens", options: options).Fit(rows);
        Assert.IsFalse(infos.Any(i => i.StartsWith("GptOptions.Window")), string.Join("\n", infos));
        options.Window = 40;
        ml.Transforms.FitPrior("Tokens", options: options).Fit(rows);
        CollectionAssert.Contains(infos, "GptOptions.Window 40 is larger than the 33×33 token grids, so the prior models 33×33 tokens at a time.");

        // A line after 30 s without a progress report, then 30 s after the last line or report.
        var lines = new List<string>();
        var heartbeat = new Taming.ML.Training.Heartbeat(lines.Add, 100, null, 50);
        foreach (var (step, seconds, reported) in new[] { (1, 10, false), (2, 31, false), (3, 40, false), (4, 50, true), (5, 79, false), (6, 81, false) })
            heartbeat.Step(step, TimeSpan.FromSeconds(seconds), reported);
        Assert.HasCount(2, lines, string.Join("\n", lines));
        Assert.AreEqual("Step 2 of 100 after 00:31 (15.5 s a step), ETA 25:19; progress reports come every 50 steps.", lines[0]);
        StringAssert.StartsWith(lines[1], "Step 6 of 100 after 01:21 (13.5 s a step)");
    }

    [TestMethod]
    public void APriorFittedOnWindowsGeneratesAndScoresWholeCanvases()
    {
        // 6×6 canvases whose tokens copy their condition: learnt in random 3×3 windows, generated and scored whole.
        var rng = new Random(8);
        CanvasRow Row(bool copy)
        {
            var condition = Enumerable.Range(0, 36).Select(_ => (uint)rng.Next(Codes) + 1).ToArray();
            return new CanvasRow { Condition = condition, Tokens = copy ? condition : condition.Select(c => (uint)(c % Codes) + 1).ToArray() };
        }
        var rows = Enumerable.Range(0, 48).Select(_ => Row(copy: true)).ToArray();
        var ml = new MLContext(seed: 1);
        var options = Tiny(steps: 400);
        options.Window = 3;
        var prior = ml.Transforms.FitPrior("Tokens", conditionColumnName: "Condition", options: options).Fit(ml.Data.LoadFromEnumerable(rows));
        Assert.AreEqual((3, 3, 3, 3), (prior.Layout.GridHeight, prior.Layout.GridWidth, prior.Layout.ConditionHeight, prior.Layout.ConditionWidth));
        Assert.AreEqual((6, 6), prior.Layout.Canvas);
        Assert.AreEqual(9 + 9 - 1, prior.Layout.BlockSize);

        var test = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 4).Select(_ => Row(copy: true)).ToArray());
        var generator = ml.Transforms.GenerateTokens("Generated", prior, options: new SamplingOptions { TopK = 1 }).Fit(test);
        var type = (VectorDataViewType)generator.GetOutputSchema(test.Schema)["Generated"].Type;
        CollectionAssert.AreEqual(new[] { 6, 6 }, type.Dimensions.ToArray(), "the default canvas is the training grids'");
        var generated = TinyData.Tokens(generator.Transform(test), "Generated");
        var conditions = TinyData.Tokens(test, "Condition");
        Assert.AreEqual(36 * 4, generated.Length);
        CollectionAssert.AreEqual(conditions, generated);

        // Scoring reads whole canvases with the sliding window: copies are typical, shifted codes are not.
        var copies = ScoresOf(prior.Transform(test));
        var shifted = ScoresOf(prior.Transform(ml.Data.LoadFromEnumerable(Enumerable.Range(0, 4).Select(_ => Row(copy: false)).ToArray())));
        Assert.IsTrue(copies.Max() < 0.5 && shifted.Min() > 2, $"copies {string.Join(", ", copies)}; shifted {string.Join(", ", shifted)}");

        Directory.CreateDirectory(Temp);
        string path = Path.Combine(Temp, "windowed.zip");
        ml.Model.Save(generator, test.Schema, path);
        var loaded = new MLContext().Model.Load(path, out _);
        CollectionAssert.AreEqual(generated, TinyData.Tokens(loaded.Transform(test), "Generated"));
        Assert.AreEqual((6, 6), ((TokenGeneratorTransformer)loaded).Prior.Layout.Canvas);

        // Windows cut the condition and the tokens at the same place, so their grids must match.
        var mismatched = ml.Data.LoadFromEnumerable(new[] { new MismatchedCanvasRow() });
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
            ml.Transforms.FitPrior("Tokens", conditionColumnName: "Condition", options: options).Fit(mismatched));
        StringAssert.Contains(e.Message, "must have the same size");
    }

    [TestMethod]
    public void AClassPriorFittedOnWindowsContinuesItsClassRuleAcrossTheCanvas()
    {
        // 5×6 canvases stepping by class + 1 along rows and columns from a random start, learnt in 3×3 windows.
        var rng = new Random(9);
        int Token(int start, int label, int i, int j) => (start + (label + 1) * (i + j)) % Codes;
        var rows = Enumerable.Range(0, 64).Select(r =>
        {
            int label = r % 2, start = rng.Next(Codes);
            var tokens = Enumerable.Range(0, 30).Select(k => (uint)Token(start, label, k / 6, k % 6) + 1).ToArray();
            return new ClassCanvasRow { Label = (uint)label, Tokens = tokens };
        }).ToArray();
        var ml = new MLContext(seed: 1);
        var options = Tiny(steps: 400);
        options.Window = 3;
        var prior = ml.Transforms.FitPrior("Tokens", "Label", options: options).Fit(ml.Data.LoadFromEnumerable(rows));
        Assert.AreEqual((3, 3, (5, 6)), (prior.Layout.GridHeight, prior.Layout.GridWidth, prior.Layout.Canvas));
        foreach (int label in new[] { 0, 1 })
        {
            var canvas = prior.Sample(new[] { new long[] { label } }, new[] { 3 }, new SamplingOptions { TopK = 1 })[0];
            Assert.AreEqual(30, canvas.Length);
            var expected = Enumerable.Range(0, 30).Select(k => (long)Token((int)canvas[0], label, k / 6, k % 6)).ToArray();
            CollectionAssert.AreEqual(expected, canvas, $"class {label}: {string.Join(",", canvas)}");
        }
    }

    [TestMethod]
    public void BadInputsAreNamed()
    {
        var ml = new MLContext(seed: 1);
        var prior = Trained(ml);
        // Token id outside the codebook.
        var outside = ml.Data.LoadFromEnumerable(new[] { new IdRow { Label = 0, Tokens = new[] { 0, 1, 2, 3, 4, 99 } } });
        var e1 = Assert.ThrowsExactly<InvalidDataException>(() => ScoresOf(prior.Transform(outside)));
        StringAssert.Contains(e1.Message, "token 5 is 99");
        // Token column of the wrong length.
        var shortRows = ml.Data.LoadFromEnumerable(new[] { new ShortRow() });
        var e2 = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => prior.Transform(shortRows));
        StringAssert.Contains(e2.Message, "4 tokens per row");
        // Token column of the wrong type.
        var floats = ml.Data.LoadFromEnumerable(new[] { new FloatRow() });
        var e3 = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Transforms.FitPrior("Tokens").Fit(floats));
        StringAssert.Contains(e3.Message, "'Tokens'");
        // A label outside the trained classes.
        var e4 = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => prior.Sample(new[] { new long[] { 7 } }, new[] { 1 }));
        StringAssert.Contains(e4.Message, "outside the trained classes");
        var wideLabels = ml.Data.LoadFromEnumerable(new[] { new WideLabelRow() });
        var e5 = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Transforms.GenerateTokens("G", prior).Fit(wideLabels));
        StringAssert.Contains(e5.Message, "fitted on 4");
    }

    private static float[] ScoresOf(IDataView data) =>
        data.GetColumn<float>(data.Schema["BitsPerToken"]).ToArray();

    [TestMethod]
    public void AValidationSetIsScoredAtEveryReportInsteadOfAShareOfTheTrainingRows()
    {
        var ml = new MLContext(seed: 1);
        var rows = ml.Data.LoadFromEnumerable(RuleRows(64));
        var rng = new Random(2);
        var heldOut = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 12).Select(_ => new TokenRow
        {
            Label = (uint)rng.Next(Classes), Tokens = Enumerable.Range(0, 6).Select(_ => (uint)rng.Next(Codes) + 1).ToArray(),
        }).ToArray());
        var options = Tiny(steps: 40);
        options.ProgressInterval = 20;
        options.ValidationFraction = 0.5; // not used: the set is given
        options.EarlyStoppingPatience = 0;
        options.ValidationSet = heldOut;
        var reports = new List<PriorProgress>();
        options.Progress = reports.Add;
        var infos = new List<string>();
        ml.Log += (_, m) => { if (m.Kind == Microsoft.ML.Runtime.ChannelMessageKind.Info) lock (infos) infos.Add(m.RawMessage); };
        var prior = ml.Transforms.FitPrior("Tokens", "Label", options: options).Fit(rows);
        CollectionAssert.Contains(infos, "Validation: 12 held-out token grids (GptOptions.ValidationSet), scored at every progress report.");
        Assert.AreEqual(2, reports.Count);
        // The last report's validation loss is the fitted prior's score of the held-out rows (random: far above the rule's).
        double heldOutBits = ScoresOf(prior.Transform(heldOut)).Average();
        Assert.AreEqual(heldOutBits, reports[^1].ValidationLoss / Math.Log(2), 1e-3);
        Assert.IsTrue(heldOutBits > 2 * ScoresOf(prior.Transform(rows)).Average(), $"held-out {heldOutBits:F3} bits/token");

        string Refused<T>(T[] set) where T : class
        {
            options.ValidationSet = ml.Data.LoadFromEnumerable(set);
            return Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.FitPrior("Tokens", "Label", options: options).Fit(rows)).Message;
        }
        Assert.AreEqual("GptOptions.ValidationSet: Label column 'Label' not found in the data; its columns: 'Condition', 'Tokens'. (Parameter 'ValidationSet')",
            Refused(new[] { new ConditionRow { Condition = Rule(0).Select(t => t + 1).ToArray(), Tokens = Rule(1).Select(t => t + 1).ToArray() } }));
        StringAssert.Contains(Refused(new[] { new WideTokenRow { Tokens = Rule(0).Select(t => t + 1).ToArray() } }),
            "GptOptions.ValidationSet: its rows are not like the training rows: codes 16 (the training rows': 8).");
        StringAssert.StartsWith(Refused(Array.Empty<TokenRow>()), "GptOptions.ValidationSet: it holds no rows.");
    }

    [TestMethod]
    public void CheckpointsAreCopiesThatSaveAndContinueAndLeaveTheFitAsWithoutThem()
    {
        var ml = new MLContext(seed: 1);
        var rows = ml.Data.LoadFromEnumerable(RuleRows(64));
        GptOptions Options()
        {
            var o = Tiny(steps: 10);
            o.Dropout = 0.1; // draws from libtorch's generator, as does a new network's initialisation
            return o;
        }
        var plain = ml.Transforms.FitPrior("Tokens", "Label", options: Options()).Fit(rows);

        var options = Options();
        options.CheckpointInterval = TimeSpan.FromTicks(1); // after every step but the last, which the fit returns
        Directory.CreateDirectory(Temp);
        string path = Path.Combine(Temp, "checkpoint.zip");
        var recorder = new CheckpointRecorder<PriorTransformer>(2, new UnauthorizedAccessException("Access to the path is denied."), 6, p => ml.Model.Save(p, rows.Schema, path));
        options.Checkpoint = recorder.Take;
        var copies = recorder.Copies;
        var warnings = TinyData.Warnings(ml);
        var checkpointed = ml.Transforms.FitPrior("Tokens", "Label", options: options).Fit(rows);

        CollectionAssert.AreEqual(Enumerable.Range(1, 9).ToArray(), copies.Select(c => c.TrainedSteps).ToArray());
        Assert.IsTrue(warnings.Any(w => w.Contains("GptOptions.Checkpoint failed at step 2; training goes on. UnauthorizedAccessException")),
            string.Join("\n", warnings));
        CollectionAssert.AreEqual(ScoresOf(plain.Transform(rows)), ScoresOf(checkpointed.Transform(rows)), "the same fit as without checkpoints");
        CollectionAssert.AreNotEqual(ScoresOf(checkpointed.Transform(rows)), ScoresOf(copies[0].Transform(rows)), "a copy keeps the weights of its step");

        // The saved checkpoint continues for the steps that were left.
        var loaded = TamingCatalog.FindPrior(new MLContext().Model.Load(path, out _));
        Assert.AreEqual(6, loaded.TrainedSteps);
        CollectionAssert.AreEqual(ScoresOf(copies[5].Transform(rows)), ScoresOf(loaded.Transform(rows)));
        var rest = Options();
        rest.Steps = 4;
        Assert.AreEqual(10, ml.Transforms.FitPrior("Tokens", "Label", options: rest).Fit(rows, loaded).TrainedSteps);

        options.CheckpointInterval = TimeSpan.FromMinutes(-1);
        var negative = Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.FitPrior("Tokens", "Label", options: options).Fit(rows));
        StringAssert.Contains(negative.Message, "GptOptions.CheckpointInterval: must be positive");
    }

    [TestMethod]
    public void AFitContinuesAPriorOnRowsLikeItsOwnAndRefusesOthers()
    {
        var ml = new MLContext(seed: 1);
        var rows = ml.Data.LoadFromEnumerable(RuleRows(64));
        var firstLosses = new List<double>();
        double endRate = 0;
        var first = Tiny(steps: 60);
        first.Progress = p => { firstLosses.Add(p.TrainLoss); endRate = p.LearningRate; };
        first.ProgressInterval = 20;
        var prior = ml.Transforms.FitPrior("Tokens", "Label", options: first).Fit(rows);
        Assert.AreEqual(60, prior.TrainedSteps);
        var scoresBefore = ScoresOf(prior.Transform(rows));

        var more = Tiny(steps: 60);
        more.ProgressInterval = 20;
        more.Layers = 3; // the continued prior keeps its own 2
        var losses = new List<double>();
        var rates = new List<double>();
        more.Progress = p => { losses.Add(p.TrainLoss); rates.Add(p.LearningRate); };
        var continued = ml.Transforms.FitPrior("Tokens", "Label", options: more).Fit(rows, prior);
        Assert.AreEqual(2, continued.Model.Options.Layers);
        Assert.AreEqual(120, continued.TrainedSteps);
        Assert.IsTrue(rates.Max() <= endRate * (1 + 1e-9), $"the continued fit goes no higher than the rate the first ended at ({endRate:G3}): {rates.Max():G3}");
        Assert.IsTrue(losses[0] < 0.5 * firstLosses[0], $"continued from the trained weights: loss {losses[0]:F3} at its first report, a new fit {firstLosses[0]:F3}");
        Assert.IsTrue(losses[^1] < firstLosses[^1], $"final loss {losses[^1]:F3}, the first fit's {firstLosses[^1]:F3}");
        CollectionAssert.AreEqual(scoresBefore, ScoresOf(prior.Transform(rows)), "the continued prior is left as it was");

        var restarted = new List<double>();
        more.RestartLearningRate = true;
        more.Progress = p => restarted.Add(p.LearningRate);
        ml.Transforms.FitPrior("Tokens", "Label", options: more).Fit(rows, prior);
        Assert.IsTrue(restarted.Max() > 0.5 * more.LearningRate, $"RestartLearningRate warms up to the options' rate: {restarted.Max():G3}");

        var unconditional = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Transforms.FitPrior("Tokens", options: more).Fit(rows, prior));
        StringAssert.Contains(unconditional.Message, "conditioning None (the prior's: Class)");
    }

    [TestMethod]
    public void AStopTokenEndsTheFitAfterTheStepInProgress()
    {
        var ml = new MLContext(seed: 1);
        using var stop = new CancellationTokenSource();
        var options = Tiny(steps: 1000);
        options.StopToken = stop.Token;
        var reports = new List<int>();
        options.Progress = p => { reports.Add(p.Step); stop.Cancel(); }; // set at step 50: step 51 ends the fit
        var rows = ml.Data.LoadFromEnumerable(RuleRows(16));
        var prior = ml.Transforms.FitPrior("Tokens", "Label", options: options).Fit(rows);
        CollectionAssert.AreEqual(new[] { 50, 51 }, reports);
        Assert.AreEqual(51, prior.TrainedSteps);

        var early = Assert.ThrowsExactly<OperationCanceledException>(() => ml.Transforms.FitPrior("Tokens", "Label", options: options).Fit(rows));
        StringAssert.Contains(early.Message, "GptOptions.StopToken was set before the first training step");
    }

    private sealed class TokenRow
    {
        [KeyType(Classes)] public uint Label { get; set; }
        [KeyType(Codes), VectorType(2, 3)] public uint[] Tokens { get; set; } = Array.Empty<uint>();
    }

    private sealed class WideTokenRow
    {
        [KeyType(Classes)] public uint Label { get; set; }
        [KeyType(2 * Codes), VectorType(2, 3)] public uint[] Tokens { get; set; } = Array.Empty<uint>();
    }

    private sealed class NamedRow
    {
        public string Class { get; set; } = "";
        [KeyType(Codes), VectorType(2, 3)] public uint[] Tokens { get; set; } = Array.Empty<uint>();
    }

    private sealed class ClassNameRow
    {
        public string Class { get; set; } = "";
    }

    private sealed class ConditionRow
    {
        [KeyType(Codes), VectorType(2, 3)] public uint[] Condition { get; set; } = Array.Empty<uint>();
        [KeyType(Codes), VectorType(2, 3)] public uint[] Tokens { get; set; } = Array.Empty<uint>();
    }

    private sealed class LongRow
    {
        [KeyType(Codes), VectorType(33, 33)] public uint[] Tokens { get; set; } = Array.Empty<uint>();
    }

    private sealed class CanvasRow
    {
        [KeyType(Codes), VectorType(6, 6)] public uint[] Condition { get; set; } = Array.Empty<uint>();
        [KeyType(Codes), VectorType(6, 6)] public uint[] Tokens { get; set; } = Array.Empty<uint>();
    }

    private sealed class ClassCanvasRow
    {
        [KeyType(2)] public uint Label { get; set; }
        [KeyType(Codes), VectorType(5, 6)] public uint[] Tokens { get; set; } = Array.Empty<uint>();
    }

    private sealed class MismatchedCanvasRow
    {
        [KeyType(Codes), VectorType(3, 3)] public uint[] Condition { get; set; } = Enumerable.Repeat(1u, 9).ToArray();
        [KeyType(Codes), VectorType(6, 6)] public uint[] Tokens { get; set; } = Enumerable.Repeat(1u, 36).ToArray();
    }

    private sealed class WideConditionRow
    {
        [KeyType(Codes), VectorType(2, 6)] public uint[] Condition { get; set; } = Enumerable.Range(1, 12).Select(i => (uint)(i % Codes) + 1).ToArray();
    }

    private sealed class IdRow
    {
        [KeyType(Classes)] public uint Label { get; set; }
        [VectorType(2, 3)] public int[] Tokens { get; set; } = Array.Empty<int>();
    }

    private sealed class ShortRow
    {
        [KeyType(Classes)] public uint Label { get; set; }
        [KeyType(Codes), VectorType(2, 2)] public uint[] Tokens { get; set; } = { 1, 1, 1, 1 };
    }

    private sealed class FloatRow
    {
        [VectorType(4)] public float[] Tokens { get; set; } = new float[4];
    }

    private sealed class WideLabelRow
    {
        [KeyType(9)] public uint Label { get; set; }
    }

    private sealed class SeedRow
    {
        public int Seed { get; set; }
    }
}
