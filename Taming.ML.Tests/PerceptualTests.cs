using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Taming.ML.Evaluation;
using Taming.ML.Perceptual;
using static TorchSharp.torch;

namespace Taming.ML.Tests;

[TestClass]
public sealed class PerceptualTests
{
    private static ResNet18Features? network;
    private static ResNet18Features Network => network ??= ResNet18Features.Load();

    [TestMethod]
    public void FrechetDistanceOfIdenticalSetsIsZero()
    {
        random.manual_seed(1);
        var features = randn(200, 16, dtype: ScalarType.Float64);
        Assert.AreEqual(0, FrechetDistance.Between(features, features.clone()), 1e-8);
    }

    [TestMethod]
    public void KernelDistanceIsTheUnbiasedMmdAndComparableAcrossSetSizesPairedOrNot()
    {
        // The estimate written out: within-set kernel means without the diagonal, minus twice the cross mean.
        random.manual_seed(2);
        var x = randn(5, 3, dtype: ScalarType.Float64);
        var y = randn(4, 3, dtype: ScalarType.Float64) + 0.5;
        double K(TorchSharp.torch.Tensor p, int i, TorchSharp.torch.Tensor q, int j) => Math.Pow(p[i].dot(q[j]).item<double>() / 3 + 1, 3);
        double Within(TorchSharp.torch.Tensor p, int n) => Enumerable.Range(0, n).SelectMany(i => Enumerable.Range(0, n).Where(j => j != i).Select(j => K(p, i, p, j))).Sum() / (n * (n - 1));
        double cross = Enumerable.Range(0, 5).SelectMany(i => Enumerable.Range(0, 4).Select(j => K(x, i, y, j))).Sum() / 20;
        Assert.AreEqual(Within(x, 5) + Within(y, 4) - 2 * cross, KernelDistance.Between(x, y), 1e-9);

        // Unbiased: over 20 images it averages what it gives over 500; the Fréchet distance grows as the sets shrink.
        double Mean(int n, double shift, Func<TorchSharp.torch.Tensor, TorchSharp.torch.Tensor, double> distance) => Enumerable.Range(0, 20)
            .Average(_ => distance(randn(n, 16, dtype: ScalarType.Float64), randn(n, 16, dtype: ScalarType.Float64) + shift));
        double kidFew = Mean(20, 0.5, (a, b) => KernelDistance.Between(a, b)), kidMany = Mean(500, 0.5, (a, b) => KernelDistance.Between(a, b));
        Assert.AreEqual(kidMany, kidFew, 0.25 * kidMany, $"KID over 20: {kidFew}, over 500: {kidMany}");
        Assert.AreEqual(0, Mean(20, 0, (a, b) => KernelDistance.Between(a, b)), 0.1 * kidMany, "the same distribution");
        double fidFew = Mean(20, 0.5, (a, b) => FrechetDistance.Between(a, b)), fidMany = Mean(500, 0.5, (a, b) => FrechetDistance.Between(a, b));
        Assert.IsTrue(fidFew > 2 * fidMany, $"FID over 20: {fidFew}, over 500: {fidMany}");

        // Paired sets (reconstructions of the same images): each row's own pair stays out of the cross term, which
        // would pull the estimate down by about 1/n.
        double Paired(int n, bool paired) => Enumerable.Range(0, 20).Average(_ =>
        {
            var originals = randn(n, 16, dtype: ScalarType.Float64);
            return KernelDistance.Between(originals, originals + 0.5 + 0.1 * randn(n, 16, dtype: ScalarType.Float64), paired: paired);
        });
        double pairedMany = Paired(500, paired: true), pairedFew = Paired(20, paired: true), unpairedFew = Paired(20, paired: false);
        Assert.AreEqual(pairedMany, pairedFew, 0.25 * pairedMany, $"paired KID over 20: {pairedFew}, over 500: {pairedMany}");
        Assert.IsTrue(unpairedFew < pairedMany - 0.5 * pairedMany, $"unpaired KID over 20 of paired sets: {unpairedFew}");
        Assert.ThrowsExactly<ArgumentException>(() => KernelDistance.Between(x, y, paired: true));

        // Larger sets: the mean over random subsets, repeatable by seed, near the whole-set figure.
        var big1 = randn(300, 16, dtype: ScalarType.Float64);
        var big2 = randn(300, 16, dtype: ScalarType.Float64) + 0.5;
        double whole = KernelDistance.Between(big1, big2), subsets = KernelDistance.Between(big1, big2, subsetSize: 100, subsets: 30);
        Assert.AreEqual(subsets, KernelDistance.Between(big1, big2, subsetSize: 100, subsets: 30));
        Assert.AreEqual(whole, subsets, 0.15 * whole);

        Assert.ThrowsExactly<ArgumentException>(() => KernelDistance.Between(x.narrow(0, 0, 1), y));
        Assert.ThrowsExactly<ArgumentException>(() => KernelDistance.Between(x, y.index_fill(0, tensor(new long[] { 1 }), double.NaN)));
    }

    [TestMethod]
    public void FrechetDistanceOfDiagonalGaussiansIsTheClosedForm()
    {
        // ‖μ₁ − μ₂‖² + Σ (√a − √b)² when both covariances are diagonal.
        var a = tensor(new[] { 1.0, 4.0, 9.0 });
        var b = tensor(new[] { 4.0, 1.0, 0.25 });
        var mean1 = tensor(new[] { 0.0, 1.0, 2.0 });
        var mean2 = tensor(new[] { 1.0, 1.0, 0.0 });
        double expected = 1 + 0 + 4 + (1 - 2) * (1 - 2) + (2 - 1) * (2 - 1) + (3 - 0.5) * (3 - 0.5);
        Assert.AreEqual(expected, FrechetDistance.FromMoments(mean1, diag(a), mean2, diag(b)), 1e-9);
    }

    [TestMethod]
    public void FrechetDistanceAgainstTheIdentityUsesTheRootOfTheOtherCovariance()
    {
        // Σ₁ = I, Σ₂ = S (not diagonal): Tr(I + S − 2 S^½), with S^½ from S's eigenvalues.
        random.manual_seed(2);
        var m = randn(6, 6, dtype: ScalarType.Float64);
        var s = m.matmul(m.t()) + eye(6, dtype: ScalarType.Float64) * 0.1;
        double rootTrace = linalg.eigvalsh(s).sqrt().sum().item<double>();
        double expected = 6 + s.trace().item<double>() - 2 * rootTrace;
        var zero = zeros(6, dtype: ScalarType.Float64);
        Assert.AreEqual(expected, FrechetDistance.FromMoments(zero, eye(6, dtype: ScalarType.Float64), zero, s), 1e-8);
        // And it is symmetric in its arguments.
        Assert.AreEqual(expected, FrechetDistance.FromMoments(zero, s, zero, eye(6, dtype: ScalarType.Float64)), 1e-8);
    }

    [TestMethod]
    public void FrechetDistanceRejectsBadFeatures()
    {
        Assert.ThrowsExactly<ArgumentException>(() => FrechetDistance.Between(zeros(5, 3), zeros(5, 4)));
        Assert.ThrowsExactly<ArgumentException>(() => FrechetDistance.Between(zeros(1, 3), zeros(5, 3)));
        var nan = zeros(4, 3);
        nan[0, 0] = tensor(float.NaN);
        Assert.ThrowsExactly<ArgumentException>(() => FrechetDistance.Between(nan, zeros(4, 3)));
    }

    [TestMethod]
    public void ResNet18MatchesOnnxRuntimeOnTheShippedFile()
    {
        random.manual_seed(3);
        var images = rand(1, 3, 224, 224) * 2 - 1;
        using var _ = no_grad();
        var ours = Network.forward(images).data<float>().ToArray();
        // The same preprocessing as ours, then the network as ONNX Runtime runs it.
        var bgr = ((images.flip(1) + 1) * 127.5 - Network.get_buffer("bgr_mean")!).contiguous();
        using var session = new InferenceSession(ResNet18Features.DefaultPath()!);
        var input = new DenseTensor<float>(bgr.data<float>().ToArray(), new[] { 1, 3, 224, 224 });
        using var results = session.Run(new[] { NamedOnnxValue.CreateFromTensor(session.InputMetadata.Keys.Single(), input) });
        var theirs = results.Single().AsEnumerable<float>().ToArray();
        Assert.HasCount(512, ours);
        double scale = theirs.Max(Math.Abs);
        Assert.IsTrue(scale > 0);
        double worst = ours.Zip(theirs).Max(p => Math.Abs(p.First - p.Second)) / scale;
        Assert.IsTrue(worst < 1e-4, $"largest difference {worst:E2} of the largest feature");
    }

    [TestMethod]
    public void ResNet18TakesImagesOfAnySize()
    {
        // CNTK's stride-2 stages pad one side only, so a stage input of odd size once failed to add its shortcut
        // (36–46, 52–62, 68–94… pixels a side): a tokenizer at --resolution 40 with the perceptual term crashed.
        var distance = new ResNetPerceptualDistance(Network);
        random.manual_seed(5);
        using var _ = no_grad();
        foreach (var (h, w) in new[] { (40, 40), (36, 47), (100, 75), (33, 130), (224, 224) })
        {
            var images = rand(2, 3, h, w) * 2 - 1;
            var stages = Network.Stages(images);
            Assert.HasCount(5, stages, $"{h}×{w}");
            Assert.IsTrue(stages.All(t => t.isfinite().all().item<bool>()), $"{h}×{w}");
            CollectionAssert.AreEqual(new long[] { 2, 512 }, Network.forward(images).shape, $"{h}×{w}");
            Assert.AreEqual(0, distance.Distance(images, images.clone())[0].item<float>(), 1e-6, $"{h}×{w}");
            Assert.IsTrue(distance.Distance(images, nn.functional.avg_pool2d(images, 3, 1, 1))[0].item<float>() > 0, $"{h}×{w}");
        }
    }

    [TestMethod]
    public void PerceptualDistanceIsZeroForIdenticalImagesAndGrowsWithBlurAndNoise()
    {
        var distance = new ResNetPerceptualDistance(Network);
        random.manual_seed(4);
        // A smooth picture with edges: stripes and a bright square.
        var y = linspace(-1, 1, 64).view(1, 1, 64, 1).expand(2, 3, 64, 64).clone();
        y[.., .., 20..44, 20..44] = tensor(0.9f);
        using var _ = no_grad();
        Assert.AreEqual(0, distance.Distance(y, y.clone())[0].item<float>(), 1e-6);
        var blurLight = nn.functional.avg_pool2d(y, 3, 1, 1);
        var blurHeavy = nn.functional.avg_pool2d(y, 9, 1, 4);
        float light = distance.Distance(y, blurLight)[0].item<float>(), heavy = distance.Distance(y, blurHeavy)[0].item<float>();
        Assert.IsTrue(0 < light && light < heavy, $"blur 3: {light}, blur 9: {heavy}");
        float weak = distance.Distance(y, (y + randn_like(y) * 0.05).clamp(-1, 1))[0].item<float>();
        float strong = distance.Distance(y, (y + randn_like(y) * 0.3).clamp(-1, 1))[0].item<float>();
        Assert.IsTrue(0 < weak && weak < strong, $"noise 0.05: {weak}, noise 0.3: {strong}");
        // Gray images are replicated to three channels.
        Assert.AreEqual(distance.Distance(y.narrow(1, 0, 1), blurLight.narrow(1, 0, 1))[0].item<float>(), light, 1e-5);
    }

    [TestMethod]
    public void GenerationFidIsZeroForTheSameImagesAndGrowsForOthers()
    {
        var ml = new Microsoft.ML.MLContext(seed: 1);
        var real = TinyData.ImageView(24, side: 16);
        var same = ml.Taming().EvaluateGeneration(TinyData.ImageView(24, side: 16), real);
        Assert.AreEqual(24, same.Count);
        Assert.AreEqual(0, same.Fid, 1e-3);
        // Pixel vectors, inverted: another distribution.
        var inverted = TinyData.PixelView(ml, 24, 16, (_, p) => p.Select(v => 255 - v).ToArray());
        var other = ml.Taming().EvaluateGeneration(inverted, real, "Pixels");
        Assert.IsTrue(other.Fid > 1, $"FID {other.Fid}");
        Assert.IsNull(other.ClassConsistency);
    }

    [TestMethod]
    public void GenerationFidReadsCanvasesAtTheirOwnShape()
    {
        // 16×40 canvases: their features are the network's on those pixels, not on a square squeezed from them.
        var ml = new Microsoft.ML.MLContext(seed: 1);
        random.manual_seed(6);
        var pixels = (rand(6, 1, 16, 40) * 255).floor();
        var rows = Enumerable.Range(0, 6).Select(i => new TinyData.PixelRow { Pixels = pixels[i].data<float>().ToArray() }).ToList();
        var schema = Microsoft.ML.Data.SchemaDefinition.Create(typeof(TinyData.PixelRow));
        schema[nameof(TinyData.PixelRow.Pixels)].ColumnType = new Microsoft.ML.Data.VectorDataViewType(Microsoft.ML.Data.NumberDataViewType.Single, 1, 16, 40);
        var canvases = ml.Data.LoadFromEnumerable(rows, schema);
        Assert.AreEqual((16, 40), ImageFeatures.Size(canvases, "Pixels"));
        using var _ = no_grad();
        var read = ImageFeatures.Read(Network, canvases, "Pixels", 16, 40, CPU);
        var direct = Network.forward(Taming.ML.Data.PixelScale.ToModel(pixels));
        Assert.IsTrue(read.allclose(direct, rtol: 1e-4, atol: 1e-5), $"largest difference {(read - direct).abs().max().item<float>()}");
        Assert.AreEqual(0, ml.Taming().EvaluateGeneration(canvases, canvases, "Pixels", "Pixels").Fid, 1e-3);
    }

    [TestMethod]
    public void MissingOrForeignNetworkFilesAreNamed()
    {
        var missing = Assert.ThrowsExactly<FileNotFoundException>(() => ResNet18Features.Load("/nonexistent/ResNet18.onnx"));
        StringAssert.Contains(missing.Message, "/nonexistent/ResNet18.onnx");
        var junk = Path.GetTempFileName();
        File.WriteAllBytes(junk, new byte[] { 1, 2, 3, 4, 5, 6, 7 });
        try
        {
            var e = Assert.ThrowsExactly<InvalidDataException>(() => ResNet18Features.Load(junk));
            StringAssert.Contains(e.Message, junk);
        }
        finally
        {
            File.Delete(junk);
        }
    }
}
