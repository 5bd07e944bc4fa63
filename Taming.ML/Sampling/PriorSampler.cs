using TorchSharp;
using static TorchSharp.torch;
using Taming.ML.Models;

namespace Taming.ML.Sampling;

/// <summary>
/// Autoregressive sampling of image tokens from a <see cref="Gpt"/>. Each row draws its uniforms from its own
/// seed, and tokens are picked by inverse-CDF over the filtered distribution, so a row's sample does not
/// depend on the batch it is in, and the cached and uncached loops pick the same tokens.
/// </summary>
public static class PriorSampler
{
    /// <summary>
    /// Samples image tokens (b, grid h·w) after the given prefixes (b, prefix length) of vocabulary ids, with one
    /// seed per row.
    /// </summary>
    public static Tensor Sample(Gpt model, Tensor prefix, IReadOnlyList<int> seeds, SamplingOptions options) =>
        Sample(model, prefix, seeds, options, fixedShapeStep: options.CudaGraphs && prefix.device_type == DeviceType.CUDA);

    /// <summary>Sampling as above; <paramref name="fixedShapeStep"/> runs the cached loop with the step that a GPU
    /// captures as a graph (eagerly on a CPU, where it draws the same tokens: a test).</summary>
    internal static Tensor Sample(Gpt model, Tensor prefix, IReadOnlyList<int> seeds, SamplingOptions options, bool fixedShapeStep)
    {
        options.Validate();
        long b = prefix.shape[0];
        int n = model.Layout.ImageLength;
        if (seeds.Count != b) throw new ArgumentException($"{b} prefixes but {seeds.Count} seeds.");
        int rows = model.CachedRowsPerCall;
        if (options.UseCache && b > rows)
        {
            // Rows do not depend on their batch, so groups whose caches fit the budget draw the same tokens as one batch.
            using var groups = NewDisposeScope();
            var parts = new List<Tensor>();
            for (int from = 0; from < b; from += rows)
            {
                int count = (int)Math.Min(rows, b - from);
                parts.Add(Sample(model, prefix.narrow(0, from, count), seeds.Skip(from).Take(count).ToList(), options, fixedShapeStep));
            }
            return cat(parts, 0).MoveToOuterDisposeScope();
        }
        var device = prefix.device;
        using var outer = NewDisposeScope();
        // An ordinary tensor for the result (the loop writes it in place); inference tensors could not be changed afterwards.
        var tokens = zeros(new[] { b, (long)n }, ScalarType.Int64, device);
        using var _ = inference_mode(true); // no autograd bookkeeping in libtorch's dispatch: a step is bound by per-op cost
        using var weights = Modules.MixedPrecision.CastWeightsOnce();
        bool wasTraining = model.training;
        model.eval();
        try
        {
            var uniforms = Uniforms(seeds, n).to(device);
            if (options.UseCache)
            {
                using var cache = model.NewCache(b);
                var logits = model.Forward(prefix, cache, 0, lastOnly: true).select(1, -1);
                if (fixedShapeStep)
                {
                    var first = Pick(logits, uniforms.select(1, 0), options);
                    tokens.select(1, 0).copy_(first);
                    using var steps = new StaticTokenStep(model, cache, tokens, uniforms, first, prefix.shape[1], options);
                    steps.Run(n - 1, graph: device.type == DeviceType.CUDA);
                    return tokens.MoveToOuterDisposeScope();
                }
                for (int i = 0; i < n; i++)
                {
                    using var step = NewDisposeScope();
                    var next = Pick(logits, uniforms.select(1, i), options);
                    tokens.select(1, i).copy_(next);
                    if (i + 1 < n)
                        logits = model.Forward(next.unsqueeze(1), cache, prefix.shape[1] + i, lastOnly: true).select(1, -1).MoveToOuterDisposeScope();
                }
            }
            else
            {
                for (int i = 0; i < n; i++)
                {
                    using var step = NewDisposeScope();
                    var sequence = cat(new[] { prefix, tokens.narrow(1, 0, i) }, 1);
                    var next = Pick(model.forward(sequence).select(1, -1), uniforms.select(1, i), options);
                    tokens.select(1, i).copy_(next);
                }
            }
            return tokens.MoveToOuterDisposeScope();
        }
        finally
        {
            model.train(wasTraining);
        }
    }

    /// <summary>One uniform in [0, 1) per row and position, from each row's own seed.</summary>
    internal static Tensor Uniforms(IReadOnlyList<int> seeds, int n)
    {
        var u = new float[seeds.Count * n];
        for (int r = 0; r < seeds.Count; r++)
        {
            var rng = new Random(seeds[r]);
            for (int i = 0; i < n; i++) u[r * n + i] = (float)rng.NextDouble();
        }
        return tensor(u, new long[] { seeds.Count, n });
    }

    /// <summary>Filters logits (b, K) by temperature, top-k and top-p, and picks the code whose CDF interval holds u.</summary>
    internal static Tensor Pick(Tensor logits, Tensor u, SamplingOptions o)
    {
        var scaled = logits.to(ScalarType.Float32) / o.Temperature; // a new tensor, filtered in place below
        long k = logits.shape[1];
        if (o.TopK > 0 && o.TopK < k)
        {
            // The k-th largest logit by selection: topk would also sort the k it keeps (4× slower on a CPU).
            var kth = scaled.kthvalue(k - o.TopK + 1, 1, keepdim: true).values;
            scaled.masked_fill_(scaled < kth, float.NegativeInfinity);
        }
        var probs = nn.functional.softmax(scaled, 1);
        if (o.TopP < 1)
        {
            var (sorted, order) = probs.sort(1, descending: true);
            var before = sorted.cumsum(1) - sorted; // mass of the more likely codes
            sorted = sorted.masked_fill(before >= o.TopP, 0);
            probs = zeros_like(probs).scatter(1, order, sorted);
        }
        var cdf = probs.cumsum(1);
        var target = (u * cdf.select(1, -1)).unsqueeze(1);
        return searchsorted(cdf, target, right: true).squeeze(1).clamp(0, k - 1);
    }
}
