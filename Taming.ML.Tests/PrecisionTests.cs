using Taming.ML.Modules;
using Taming.ML.Sampling;
using Taming.ML.Training;
using static TorchSharp.torch;

namespace Taming.ML.Tests;

[TestClass]
public sealed class PrecisionTests
{
    private static Tensor Images(int count, int side, int seed)
    {
        random.manual_seed(seed);
        return rand(count, 1, side, side) * 2 - 1;
    }

    private static double RelativeError(Tensor a, Tensor b) =>
        (a - b).norm().item<float>() / b.norm().item<float>();

    [TestMethod]
    public void BFloat16VqganStaysCloseToFloat32AndReturnsFloat32()
    {
        random.manual_seed(1);
        var options = TinyData.Options();
        options.Resolution = 16;
        var model = new Vqgan(options);
        model.eval();
        var x = Images(4, 16, 2);
        using var _ = no_grad();
        var fullLatents = model.Encode(x).Inputs;
        var zq = model.Quantizer.LookupGrid(model.Tokenize(x));
        var fullDecode = model.Decode(zq);
        model.Options.Precision = Precision.BFloat16;
        var (mixed, loss, _) = model.forward(x);
        var mixedLatents = model.Encode(x).Inputs;
        var mixedDecode = model.Decode(zq);
        Assert.AreEqual(ScalarType.Float32, mixed.dtype);
        Assert.AreEqual(ScalarType.Float32, loss.dtype);
        Assert.IsTrue(model.parameters().All(p => p.dtype == ScalarType.Float32));
        // bf16 keeps 8 bits of mantissa: about 0.4% per product, some percent through a dozen layers.
        double error = RelativeError(mixedDecode, fullDecode);
        Assert.IsTrue(error is > 0 and < 0.05, $"decoder relative error {error}");
        // (An untrained codebook's nearest codes are near ties, so compare the encoder's output, not its codes.)
        double encoderError = RelativeError(mixedLatents, fullLatents);
        Assert.IsTrue(encoderError is > 0 and < 0.05, $"encoder relative error {encoderError}");
    }

    [TestMethod]
    public void BFloat16GptLogitsStayCloseAndItsCacheTakesHalfTheBytes()
    {
        random.manual_seed(3);
        var layout = new PriorLayout(Conditioning.Class, 8, 3, 3, ClassCount: 2);
        var model = new Gpt(new GptOptions { Layers = 2, Heads = 2, Width = 32 }, layout);
        model.eval();
        var ids = randint(8, new long[] { 3, layout.BlockSize });
        using var _ = no_grad();
        var full = model.forward(ids);
        long fullBytes = model.CacheBytesPerSequence;
        model.Options.Precision = Precision.BFloat16;
        var mixed = model.forward(ids);
        Assert.AreEqual(ScalarType.Float32, mixed.dtype);
        double error = RelativeError(mixed, full);
        Assert.IsTrue(error is > 0 and < 0.05, $"relative error {error}");
        Assert.AreEqual(fullBytes / 2, model.CacheBytesPerSequence);
        var sampled = PriorSampler.Sample(model, tensor(new long[] { 8, 9 }, new long[] { 2, 1 }), new[] { 1, 2 }, new SamplingOptions());
        Assert.IsTrue(sampled.data<long>().ToArray().All(t => t is >= 0 and < 8));
    }

    [TestMethod]
    public void BFloat16PerceptualDistanceStaysClose()
    {
        using var distance = Perceptual.ResNetPerceptualDistance.Load();
        var x = Images(4, 32, 5).expand(-1, 3, -1, -1);
        var y = (x + 0.3 * Images(4, 32, 6)).clamp(-1, 1);
        using var _ = no_grad();
        var full = distance.Distance(x, y);
        Tensor mixed;
        using (MixedPrecision.Enter(Precision.BFloat16)) mixed = distance.Distance(x, y);
        Assert.AreEqual(ScalarType.Float32, mixed.dtype);
        double error = RelativeError(mixed, full);
        Assert.IsTrue(error is > 0 and < 0.05, $"relative error {error}");
    }

    [TestMethod]
    public void BFloat16TrainingLowersTheLossAndKeepsFloat32Weights()
    {
        var reports = new List<VqganProgress>();
        var options = TinyData.Options(steps: 60);
        options.DiscStart = 30; // the GAN step and the adaptive weight's autograd.grad run in bf16 too
        options.Precision = Precision.BFloat16;
        options.Progress = reports.Add;
        var tokenizer = new MLContext(seed: 1).Transforms.TokenizeImages("Tokens", "Image", options).Fit(TinyData.ImageView(64));
        Assert.IsTrue(reports[^1].ReconstructionLoss < 0.6 * reports[0].ReconstructionLoss,
            $"L1 went from {reports[0].ReconstructionLoss} to {reports[^1].ReconstructionLoss}");
        Assert.IsTrue(reports[^1].Lambda > 0 && double.IsFinite(reports[^1].DiscriminatorLoss));
        Assert.IsTrue(tokenizer.Model.parameters().All(p => p.dtype == ScalarType.Float32));
        Assert.AreEqual(Precision.BFloat16, tokenizer.Model.Options.Precision);
    }

    [TestMethod]
    public void BFloat16PriorLearnsARule()
    {
        var layout = new PriorLayout(Conditioning.Class, 8, 2, 3, ClassCount: 4);
        var sequences = Enumerable.Range(0, 64).Select(r => new long[] { 8 + r % 4 }
            .Concat(Enumerable.Range(0, 6).Select(i => (long)((r % 4 * 2 + i) % 8))).ToArray()).ToList();
        var options = new GptOptions
        {
            Layers = 2, Heads = 2, Width = 32, Dropout = 0, Steps = 300, BatchSize = 16, LearningRate = 3e-3,
            ProgressInterval = 100, ValidationFraction = 0, Seed = 1, Precision = Precision.BFloat16,
        };
        var reports = new List<PriorProgress>();
        options.Progress = reports.Add;
        var (model, _) = new GptTrainer(options, layout, CPU).Train(sequences);
        Assert.IsTrue(reports[^1].TrainLoss < 0.05, $"final loss {reports[^1].TrainLoss}");
        var prefix = tensor(new long[] { 8, 9, 10, 11 }, new long[] { 4, 1 });
        var sampled = PriorSampler.Sample(model, prefix, new[] { 1, 2, 3, 4 }, new SamplingOptions { TopK = 0 });
        for (int c = 0; c < 4; c++)
            CollectionAssert.AreEqual(sequences[c].Skip(1).ToArray(), sampled[c].data<long>().ToArray(), $"class {c}");
    }

    [TestMethod]
    public void BFloat16PipelineSavesLoadsScoresAndDecodes()
    {
        string dir = Path.Combine(Path.GetTempPath(), "taming-precision-" + Environment.ProcessId);
        Directory.CreateDirectory(dir);
        try
        {
            var ml = new MLContext(seed: 1);
            var options = TinyData.Options(steps: 10);
            options.Precision = Precision.BFloat16;
            var data = TinyData.ImageView(24);
            var tokenizer = ml.Transforms.TokenizeImages("Tokens", "Image", options).Fit(data);
            var tokens = tokenizer.Transform(data);
            var prior = ml.Transforms.FitPrior("Tokens", "Label", options: new GptOptions
            {
                Layers = 1, Heads = 2, Width = 16, Steps = 20, BatchSize = 8, ValidationFraction = 0, Precision = Precision.BFloat16,
            }).Fit(tokens);
            var decoder = ml.Transforms.DecodeTokens("Decoded", "Tokens", tokenizer).Fit(tokens);
            var chain = new TransformerChain<ITransformer>(tokenizer, prior, decoder);
            string path = Path.Combine(dir, "bf16.zip");
            ml.Model.Save(chain, data.Schema, path);

            var loaded = new MLContext(seed: 2).Model.Load(path, out _);
            var output = loaded.Transform(data);
            CollectionAssert.AreEqual(TinyData.Tokens(tokens), TinyData.Tokens(output));
            Assert.AreEqual(Precision.BFloat16, TamingCatalog.FindTokenizer(loaded).Model.Options.Precision);
            Assert.AreEqual(Precision.BFloat16, TamingCatalog.FindPrior(loaded).Model.Options.Precision);
            var bits = ml.Data.CreateEnumerable<Score>(output, reuseRowObject: false).Select(r => r.BitsPerToken).ToList();
            Assert.IsTrue(bits.Count == 24 && bits.All(b => float.IsFinite(b) && b > 0), string.Join(", ", bits));
            Assert.IsNotNull(output.Schema.GetColumnOrNull("Decoded"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private sealed class Score
    {
        public float BitsPerToken { get; set; }
    }

    [TestMethod]
    public void TensorFloat32ScopeSetsAndRestoresLibtorchFlags()
    {
        bool matmul = backends.cuda.matmul.allow_tf32, cudnn = backends.cudnn.allow_tf32;
        using (MixedPrecision.Enter(Precision.TensorFloat32))
        {
            Assert.IsTrue(backends.cuda.matmul.allow_tf32 && backends.cudnn.allow_tf32);
            Assert.IsNull(MixedPrecision.ComputeDtype);
            using (MixedPrecision.Enter(Precision.BFloat16))
            {
                Assert.AreEqual(ScalarType.BFloat16, MixedPrecision.ComputeDtype);
                Assert.IsFalse(backends.cuda.matmul.allow_tf32);
            }
            Assert.IsTrue(backends.cuda.matmul.allow_tf32);
            Assert.IsNull(MixedPrecision.ComputeDtype);
        }
        Assert.AreEqual(matmul, backends.cuda.matmul.allow_tf32);
        Assert.AreEqual(cudnn, backends.cudnn.allow_tf32);
    }

    [TestMethod]
    public void PrecisionIsSavedWithTheModelAndOlderFilesReadAsFloat32()
    {
        var options = TinyData.Options();
        options.Precision = Precision.TensorFloat32;
        string json = ModelFile.Json(options);
        StringAssert.Contains(json, "\"Precision\":\"TensorFloat32\"");
        Assert.AreEqual(Precision.TensorFloat32, ModelFile.FromJson<VqganOptions>(json, "settings").Precision);
        string older = json.Replace(",\"Precision\":\"TensorFloat32\"", "");
        Assert.AreNotEqual(json, older);
        Assert.AreEqual(Precision.Float32, ModelFile.FromJson<VqganOptions>(older, "settings").Precision);
        options.Precision = (Precision)7;
        Assert.ThrowsExactly<ArgumentException>(() => options.Validate());
    }
}
