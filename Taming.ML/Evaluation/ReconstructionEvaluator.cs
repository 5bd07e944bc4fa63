using Microsoft.ML;
using Taming.ML.Data;
using Taming.ML.MLNet;
using Taming.ML.Perceptual;
using Taming.ML.Quantization;
using static TorchSharp.torch;

namespace Taming.ML.Evaluation;

/// <summary>Runs a tokenizer over images (encode → quantize → decode) and measures the reconstructions.</summary>
internal static class ReconstructionEvaluator
{
    /// <summary>
    /// Metrics over every row of <paramref name="data"/>; <paramref name="keep"/> receives <paramref name="keepCount"/>
    /// rows' original and reconstructed bytes (planar) for pictures: rows spread evenly over the data, so that a folder
    /// sorted by class shows every class (the first rows where the data does not know its row count). With
    /// <paramref name="features"/>, also rFID.
    /// </summary>
    public static ReconstructionMetrics Evaluate(VqganTokenizerTransformer tokenizer, IDataView data, string imageColumnName,
        int keepCount = 0, List<(byte[] Original, byte[] Reconstruction)>? keep = null, ResNet18Features? features = null)
    {
        var originalFeatures = new List<Tensor>();
        var reconstructionFeatures = new List<Tensor>();
        var o = tokenizer.Model.Options;
        var column = ImageColumnReader.Find(data.Schema, imageColumnName);
        var (h, w) = tokenizer.ImageSizeOf(column); // the trained resolution, or whole images' own size
        int pixelsPerImage = o.Channels * h * w, batch = o.InferenceRows(h, w);
        var counts = new long[o.CodebookSize];
        double psnr = 0, ssim = 0, l1 = 0;
        int n = 0;
        using var cursor = ParallelCursor.Create(data, new[] { column });
        var reader = new ImageColumnReader(cursor, column, o.Channels, h, w, tokenizer.ResizeToResolution);
        var buffer = new float[batch * pixelsPerImage];
        long rowCount = keepCount > 0 && data.GetRowCount() is { } c && c > keepCount ? c : keepCount;
        long nextKept = 0; // row index of the next picture: ⌊i · rows / keepCount⌋
        while (true)
        {
            int filled = 0;
            while (filled < batch && cursor.MoveNext()) reader.Read(buffer.AsSpan(filled++ * pixelsPerImage, pixelsPerImage));
            if (filled == 0) break;
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var x = tensor(buffer.AsSpan(0, filled * pixelsPerImage).ToArray(), new long[] { filled, o.Channels, h, w });
            // One upload per batch: the model and the feature network read the same device copy.
            var xModel = PixelScale.ToModel(x.to(tokenizer.Device));
            var (rec, _, ids) = tokenizer.Model.forward(xModel);
            var recOnDevice = PixelScale.ToBytes(rec);
            var recBytes = recOnDevice.cpu();
            var recPixels = recBytes.to(ScalarType.Float32);
            psnr += ImageQuality.Psnr(x, recPixels).Select(p => Math.Min(p, 100)).Sum();
            ssim += ImageQuality.Ssim(x, recPixels).Sum();
            l1 += (x - recPixels).abs().flatten(1).mean(new long[] { 1 }).sum().item<float>() / 255.0;
            foreach (long id in ids.cpu().data<long>()) counts[id]++;
            if (features != null)
            {
                // Features of what a user sees: the originals and the reconstructions rounded to bytes.
                originalFeatures.Add(features.forward(xModel).cpu().MoveToOuterDisposeScope());
                reconstructionFeatures.Add(features.forward(PixelScale.ToModel(recOnDevice)).cpu().MoveToOuterDisposeScope());
            }
            for (int i = 0; keep != null && i < filled && keep.Count < keepCount; i++)
            {
                if (n + i != nextKept) continue;
                nextKept = (keep.Count + 1) * rowCount / keepCount;
                var original = PixelScale.ToBytes(x[i].flatten().data<float>().ToArray());
                keep.Add((original, recBytes[i].flatten().data<byte>().ToArray()));
            }
            n += filled;
        }
        if (n == 0) throw new InvalidOperationException("The evaluation data is empty.");
        var (usage, perplexity) = CodebookUsage.Statistics(counts);
        double rfid = double.NaN, rkid = double.NaN;
        if (features != null && n >= 2)
        {
            using var a = cat(originalFeatures, 0);
            using var b = cat(reconstructionFeatures, 0);
            rfid = FrechetDistance.Between(a, b);
            rkid = KernelDistance.Between(a, b, paired: true); // each reconstruction belongs to its original
        }
        foreach (var t in originalFeatures.Concat(reconstructionFeatures)) t.Dispose();
        return new ReconstructionMetrics
        {
            Count = n, Psnr = psnr / n, Ssim = ssim / n, L1 = l1 / n, CodebookUsage = usage, Perplexity = perplexity, Rfid = rfid, Rkid = rkid,
        };
    }
}
