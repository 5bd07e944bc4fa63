using TorchSharp;
using static TorchSharp.torch;
using Taming.ML.Models;

namespace Taming.ML.Sampling;

/// <summary>How the sliding-window sampler computes each token's logits.</summary>
public enum WindowMode
{
    /// <summary>As the reference: a full forward pass of the whole window for every token.</summary>
    Reference,
    /// <summary>The reference's tokens, faster: each token only feeds the window prefix it needs (causal attention
    /// makes this exact), and all tokens whose prefixes are known run in one batched pass (a wavefront).</summary>
    Exact,
    /// <summary>Approximate and much faster: the window moves in strides of half its size; each placement samples the
    /// tokens it does not yet know in raster order with one key/value cache, reading the known ones as context.</summary>
    Strided,
}

/// <summary>
/// Samples token canvases larger than the prior's trained window (H ≥ window height, W ≥ window width) with the
/// reference's sliding window (<see cref="SlidingWindow"/>), or approximately with a strided window. For
/// image-conditioned priors the condition canvas has the same shape as the output canvas and is cropped with the
/// same window. A canvas equal to the window gives the same tokens as <see cref="PriorSampler"/> in every mode.
/// </summary>
public static class WindowedSampler
{
    /// <summary>
    /// Samples canvases (b, H, W) of image-code ids. <paramref name="prefix"/>: (b, 1) start or class tokens in
    /// vocabulary ids, or null for image conditioning, where <paramref name="condition"/> (b, H, W) holds the
    /// condition canvas as condition-codebook ids.
    /// </summary>
    public static Tensor Sample(Gpt model, int height, int width, Tensor? prefix, Tensor? condition, IReadOnlyList<int> seeds,
        SamplingOptions options, WindowMode mode = WindowMode.Exact)
    {
        options.Validate();
        using var outer = NewDisposeScope();
        var walk = new WindowWalk(model, height, width, prefix, condition, seeds.Count);
        // One uniform per canvas position: what is drawn does not depend on the order positions are visited in.
        var uniforms = PriorSampler.Uniforms(seeds, height * width).to(walk.Device);
        walk.Run(mode, (logits, targets) => PriorSampler.Pick(logits, uniforms.index_select(1, targets).t().reshape(-1), options),
            Reporter(options.Progress, (long)seeds.Count * height * width));
        return walk.Canvas.clone().MoveToOuterDisposeScope();
    }

    /// <summary>Turns the walk's token counts into <see cref="SamplingProgress"/> reports about once a second, and at the end.</summary>
    private static Action<long>? Reporter(Action<SamplingProgress>? report, long total)
    {
        if (report is null) return null;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var last = TimeSpan.Zero;
        return tokens =>
        {
            var elapsed = clock.Elapsed;
            if (tokens < total && elapsed - last < TimeSpan.FromSeconds(1)) return;
            last = elapsed;
            report(new SamplingProgress
            {
                Tokens = tokens, TotalTokens = total, Elapsed = elapsed,
                Eta = TimeSpan.FromSeconds(elapsed.TotalSeconds / Math.Max(1, tokens) * (total - tokens)),
            });
        };
    }

    /// <summary>
    /// The prior's negative log-likelihood of given canvases (b, H, W) under the reference's sliding window, in bits
    /// per token, one value per canvas: a quality figure for canvases however they were made.
    /// </summary>
    public static double[] BitsPerToken(Gpt model, Tensor canvas, Tensor? prefix, Tensor? condition)
    {
        using var outer = NewDisposeScope();
        long b = canvas.shape[0];
        int height = (int)canvas.shape[1], width = (int)canvas.shape[2];
        var walk = new WindowWalk(model, height, width, prefix, condition, b);
        var given = canvas.to(ScalarType.Int64).to(walk.Device).reshape(b, -1);
        var nll = zeros(new[] { b }, ScalarType.Float64, walk.Device);
        walk.Run(WindowMode.Exact, (logits, targets) =>
        {
            var token = given.index_select(1, targets).t().reshape(-1);
            var logp = nn.functional.log_softmax(logits.to(ScalarType.Float64), 1).gather(1, token.unsqueeze(1));
            nll.sub_(logp.view(targets.shape[0], b).sum(dim: 0)); // dim named: a bare 0 would bind to sum(ScalarType)
            return token;
        });
        return (nll / (height * width) / Math.Log(2)).cpu().data<double>().ToArray();
    }
}
