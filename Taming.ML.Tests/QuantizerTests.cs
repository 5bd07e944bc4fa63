using Taming.ML.Modules;
using Taming.ML.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace Taming.ML.Tests;

[TestClass]
public sealed class QuantizerTests
{
    [TestMethod]
    public void NearestCodeMatchesBruteForce()
    {
        random.manual_seed(1);
        var points = randn(200, 5);
        var codebook = randn(37, 5);
        var ids = VectorQuantizer.NearestCode(points, codebook).data<long>().ToArray();
        for (int i = 0; i < 200; i++)
        {
            var distances = (codebook - points[i]).pow(2).sum(1).data<float>().ToArray();
            Assert.AreEqual(Array.IndexOf(distances, distances.Min()), (int)ids[i], $"row {i}");
        }
    }

    [TestMethod]
    [DataRow(false)]
    [DataRow(true)]
    public void QuantizedValuesAreCodesAndGradientPassesStraightThrough(bool l2)
    {
        random.manual_seed(2);
        using var quantizer = new VectorQuantizer(codebookSize: 11, embedDim: 3, beta: 0.25, l2Normalize: l2);
        var z = randn(2, 3, 4, 4).requires_grad_(true);
        var output = quantizer.forward(z);
        // Forward: each output vector is the chosen code.
        var codes = quantizer.Codebook.index_select(0, output.Indices.flatten()).reshape(2, 4, 4, 3).permute(0, 3, 1, 2);
        Assert.IsTrue(allclose(output.Quantized, codes, rtol: 1e-5, atol: 1e-6), "quantized vectors are not the codes");
        // Backward: d(sum(w·z_q))/dz = w (through the l2 normalisation's Jacobian when it is on).
        var weights = randn(2, 3, 4, 4);
        var grad = autograd.grad(new[] { (output.Quantized * weights).sum() }, new[] { z })[0];
        var expected = l2
            ? autograd.grad(new[] { (nn.functional.normalize(z, dim: 1) * weights).sum() }, new[] { z })[0]
            : weights;
        Assert.IsTrue(allclose(grad, expected, rtol: 1e-4, atol: 1e-6), "gradient is not passed straight through");
    }

    [TestMethod]
    public void OnTheCpuWideNetworksRunChannelsLastAndNarrowOnesStandard()
    {
        // libtorch carries an input's layout through the network, so what the encoder and decoder are given decides it:
        // channels-last with at least 128 channels in every group norm, the standard layout below.
        random.manual_seed(4);
        static bool ChannelsLast(Tensor t) => t.stride(1) == 1 && t.stride(3) == t.shape[1];
        static bool Standard(Tensor t) => t.is_contiguous();
        var wideOptions = TinyData.Options();
        (wideOptions.Channels, wideOptions.Ch, wideOptions.ChMult) = (3, 128, new[] { 1 }); // 4 channels in each of 32 groups
        var narrowOptions = TinyData.Options();
        narrowOptions.Channels = 3; // 8 and 16 channels
        var (wideForcedStandard, narrowForcedChannelsLast) = (wideOptions.Clone(), narrowOptions.Clone());
        (wideForcedStandard.ChannelsLast, narrowForcedChannelsLast.ChannelsLast) = (false, true);
        using var _ = no_grad();
        var x = rand(2, 3, TinyData.Side, TinyData.Side) * 2 - 1;
        var xChannelsLast = x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);
        foreach (var (options, inLayout, name) in new (VqganOptions, Func<Tensor, bool>, string)[]
                     { (wideOptions, ChannelsLast, "wide"), (narrowOptions, Standard, "narrow"),
                       (wideForcedStandard, Standard, "wide, ChannelsLast = false"), (narrowForcedChannelsLast, ChannelsLast, "narrow, ChannelsLast = true") })
        {
            using var model = new Vqgan(options);
            var q = model.Encode(x);
            Assert.IsTrue(model.Encode(xChannelsLast).Indices.eq(q.Indices).all().item<bool>(), $"{name}: the input's layout changed the codes");
            Assert.IsTrue(inLayout(model.Decode(q.Quantized)), $"{name}: the reconstruction is in the other layout");
            Assert.IsTrue(inLayout(model.DecodeTokens(q.Indices)), $"{name}: the decoded tokens are in the other layout");
            Assert.IsTrue(inLayout(model.Decode(q.Quantized.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2))), $"{name}: a channels-last z_q kept its layout");
            Assert.IsTrue(inLayout(model.Decode(q.Quantized.contiguous())), $"{name}: a standard z_q kept its layout");
        }
    }

    private static Tensor InLayout(Tensor x, bool channelsLast) => MemoryLayout.Preferred(x, channelsLast);

    private static bool HasLayout(Tensor x, bool channelsLast) => channelsLast ? MemoryLayout.IsChannelsLast(x) : x.is_contiguous();

    [TestMethod]
    public void TheLayoutKeepingGroupNormMatchesLibtorchsAndKeepsTheLayout()
    {
        // The GPU's own group norm, run here on the CPU: same values and gradients as group_norm, in either layout.
        random.manual_seed(5);
        foreach (var channelsLast in new[] { true, false })
        foreach (var dtype in new[] { ScalarType.Float32, ScalarType.BFloat16 })
        {
            string name = $"{(channelsLast ? "channels-last" : "standard")} {dtype}";
            var x = InLayout(randn(3, 32, 5, 6) * 2 + 1, channelsLast).to(dtype).requires_grad_();
            var weight = (rand(32) + 0.5).requires_grad_();
            var bias = randn(32).requires_grad_();
            var ours = Normalize.KeepingLayout(x, 8, weight, bias, 1e-6);
            var theirs = nn.functional.group_norm(x.to(ScalarType.Float32), 8, weight, bias, 1e-6);
            Assert.IsTrue(HasLayout(ours, channelsLast), $"{name}: the output changed layout");
            Assert.AreEqual(dtype, ours.dtype);
            double tolerance = dtype == ScalarType.Float32 ? 1e-4 : 0.05;
            Assert.IsTrue(allclose(ours.to(ScalarType.Float32), theirs, rtol: tolerance, atol: tolerance), $"{name}: values differ from group_norm");
            var upstream = randn(3, 32, 5, 6);
            var oursGrad = autograd.grad(new[] { (ours.to(ScalarType.Float32) * upstream).sum() }, new[] { x, weight, bias });
            var theirsGrad = autograd.grad(new[] { (theirs * upstream).sum() }, new[] { x, weight, bias });
            foreach (var (a, b, what) in new[] { (oursGrad[0], theirsGrad[0], "x"), (oursGrad[1], theirsGrad[1], "weight"), (oursGrad[2], theirsGrad[2], "bias") })
                Assert.IsTrue(allclose(a.to(ScalarType.Float32), b.to(ScalarType.Float32), rtol: 2 * tolerance, atol: 2 * tolerance), $"{name}: gradient of {what} differs");
        }
        Assert.IsFalse(MemoryLayout.IsChannelsLast(randn(2, 8, 3, 3)), "a contiguous tensor is not channels-last");
    }

    [TestMethod]
    public void FoldingAConvolutionsBiasIntoTheGroupNormAfterItChangesNothing()
    {
        // ResNet blocks on a GPU fold conv1's bias into norm2; forced here on the CPU, in either layout, float32 and bf16.
        random.manual_seed(6);
        var conv = nn.Conv2d(16, 32, 3, padding: 1);
        var norm = Normalize.Create(32, 4); // 8 groups of 4: the bias also moves the spread between a group's channels
        using (no_grad())
        {
            conv.bias!.copy_(randn(32) * 3);
            norm.weight!.copy_(rand(32) + 0.5);
            norm.bias!.copy_(randn(32));
        }
        var parameters = new Tensor[] { conv.weight!, conv.bias!, norm.weight!, norm.bias! };
        foreach (var channelsLast in new[] { true, false })
        foreach (var precision in new[] { Precision.Float32, Precision.BFloat16 })
        {
            string name = $"{(channelsLast ? "channels-last" : "standard")} {precision}";
            using var scope = MixedPrecision.Enter(precision);
            var x = InLayout(randn(2, 16, 6, 5), channelsLast).requires_grad_();
            var inputs = parameters.Prepend(x).ToArray();
            var upstream = randn(2, 32, 6, 5);
            var folded = conv.AutocastThen(norm, x, foldBias: true);
            var separate = conv.AutocastThen(norm, x, foldBias: false);
            Assert.IsTrue(HasLayout(folded, channelsLast), $"{name}: the folded norm changed layout");
            double tolerance = precision == Precision.Float32 ? 1e-4 : 0.05;
            Assert.IsTrue(allclose(MixedPrecision.Float(folded), MixedPrecision.Float(separate), rtol: tolerance, atol: tolerance), $"{name}: values differ");
            var foldedGrad = autograd.grad(new[] { (MixedPrecision.Float(folded) * upstream).sum() }, inputs);
            var separateGrad = autograd.grad(new[] { (MixedPrecision.Float(separate) * upstream).sum() }, inputs);
            foreach (var (i, what) in new[] { (0, "x"), (1, "conv weight"), (2, "conv bias"), (3, "norm weight"), (4, "norm bias") })
            {
                var (a, b) = (foldedGrad[i].to(ScalarType.Float32), separateGrad[i].to(ScalarType.Float32));
                double scale = b.abs().max().item<float>();
                Assert.IsTrue((a - b).abs().max().item<float>() <= 2 * tolerance * Math.Max(1, scale), $"{name}: gradient of {what} differs");
            }
        }
    }

    [TestMethod]
    public void OnTheCpuLibtorchsGroupNormAndConvolutionBiasesStay()
    {
        // oneDNN adds a convolution's bias inside the convolution and libtorch's CPU group norm keeps either layout.
        foreach (var channelsLast in new[] { true, false })
        {
            var x = InLayout(randn(2, 8, 3, 3), channelsLast);
            Assert.IsFalse(Normalize.RunsKeepingLayout(x), "the CPU runs Taming.ML's group norm");
            Assert.IsFalse(Normalize.FoldsConvolutionBias(x), "the CPU folds a convolution's bias, with gradients");
            using (no_grad()) Assert.IsFalse(Normalize.FoldsConvolutionBias(x), "the CPU folds a convolution's bias, in inference");
        }
    }

    [TestMethod]
    public void OnAGpuInferenceRunsChannelsLastAndTrainingStandard()
    {
        // The automatic choice on a GPU depends on the task, not the width; an explicit option wins everywhere.
        long[] narrow = { 32, 64 }, wide = { 128, 256 };
        foreach (var widths in new[] { narrow, wide })
        {
            Assert.IsTrue(MemoryLayout.ChannelsLast(null, DeviceType.CUDA, widths, gradients: false), "GPU inference is not channels-last");
            Assert.IsFalse(MemoryLayout.ChannelsLast(null, DeviceType.CUDA, widths, gradients: true), "GPU training is not standard");
            foreach (var requested in new[] { true, false })
            foreach (var device in new[] { DeviceType.CUDA, DeviceType.CPU })
            foreach (var gradients in new[] { true, false })
                Assert.AreEqual(requested, MemoryLayout.ChannelsLast(requested, device, widths, gradients), $"ChannelsLast = {requested} was overridden");
        }
        foreach (var gradients in new[] { true, false })
        {
            Assert.IsTrue(MemoryLayout.ChannelsLast(null, DeviceType.CPU, wide, gradients), "a wide network on the CPU is not channels-last");
            Assert.IsFalse(MemoryLayout.ChannelsLast(null, DeviceType.CPU, narrow, gradients), "a narrow network on the CPU is not standard");
        }
    }

    [TestMethod]
    public void GroupNormGroupsKeepTheMinimumChannelsAndOldModelsLoadWithOne()
    {
        Assert.AreEqual(32L, Normalize.Groups(128, 4), "the reference's 32 groups at its widths");
        Assert.AreEqual(32L, Normalize.Groups(512, 4));
        Assert.AreEqual(8L, Normalize.Groups(32, 4));
        Assert.AreEqual(12L, Normalize.Groups(48, 4));
        Assert.AreEqual(1L, Normalize.Groups(3, 4), "one group when the channels are fewer than the minimum");
        Assert.AreEqual(32L, Normalize.Groups(32, 1));
        Assert.AreEqual(4, new VqganOptions().GroupNormMinChannels);

        var json = System.Text.Json.Nodes.JsonNode.Parse(System.Text.Json.JsonSerializer.Serialize(new VqganOptions { GroupNormMinChannels = 4 }))!.AsObject();
        Assert.AreEqual(4, VqganModelFile.ReadOptions(json.ToJsonString()).GroupNormMinChannels);
        json.Remove(nameof(VqganOptions.GroupNormMinChannels));
        Assert.AreEqual(1, VqganModelFile.ReadOptions(json.ToJsonString()).GroupNormMinChannels, "a model saved before the option");
    }

    [TestMethod]
    public void LossPutsBetaOnTheCommitmentTerm()
    {
        random.manual_seed(3);
        using var quantizer = new VectorQuantizer(codebookSize: 5, embedDim: 2, beta: 0.25, l2Normalize: false);
        var z = randn(1, 2, 3, 3).requires_grad_(true);
        var output = quantizer.forward(z);
        // d loss / dz comes only from β‖z − sg[z_q]‖²: 2β(z − z_q)/N.
        var grad = autograd.grad(new[] { output.Loss }, new[] { z })[0];
        var expected = 2 * 0.25 * (z - output.Quantized).detach() / z.numel();
        Assert.IsTrue(allclose(grad, expected, rtol: 1e-4, atol: 1e-7));
    }

    [TestMethod]
    public void UsageAndPerplexity()
    {
        var (usage, perplexity) = CodebookUsage.Statistics(new long[] { 5, 5, 0, 0 });
        Assert.AreEqual(0.5, usage, 1e-12);
        Assert.AreEqual(2.0, perplexity, 1e-9);
        using var tracker = new CodebookUsage(4);
        tracker.Add(tensor(new long[] { 0, 1, 1 }), step: 10);
        CollectionAssert.AreEqual(new long[] { 2, 3 }, tracker.DeadCodes(step: 59, patience: 50));
        CollectionAssert.AreEqual(new long[] { 0, 1, 2, 3 }, tracker.DeadCodes(step: 60, patience: 50));
        tracker.Revive(new long[] { 3 }, step: 20);
        CollectionAssert.AreEqual(new long[] { 0, 1, 2 }, tracker.DeadCodes(step: 60, patience: 50));
        var (windowUsage, windowPerplexity) = tracker.TakeWindow();
        Assert.AreEqual(0.5, windowUsage, 1e-12);
        Assert.AreEqual(Math.Exp(-(1 / 3.0 * Math.Log(1 / 3.0) + 2 / 3.0 * Math.Log(2 / 3.0))), windowPerplexity, 1e-9);
        Assert.AreEqual((0.0, 0.0), tracker.TakeWindow());
    }

    [TestMethod]
    public void RestartReplacesDeadCodesWithEncoderOutputs()
    {
        random.manual_seed(4);
        using var quantizer = new VectorQuantizer(codebookSize: 6, embedDim: 3, beta: 0.25, l2Normalize: false);
        var inputs = full(new long[] { 10, 3 }, 7f);
        quantizer.Restart(new long[] { 1, 4 }, inputs);
        var codebook = quantizer.Codebook;
        Assert.AreEqual(7.0, codebook[1].mean().item<float>(), 0.1);
        Assert.AreEqual(7.0, codebook[4].mean().item<float>(), 0.1);
        Assert.IsTrue(codebook[0].abs().max().item<float>() < 1, "a live code was touched");
    }
}
