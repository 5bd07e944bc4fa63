using TorchSharp;
using static TorchSharp.torch;
using Taming.ML.Models;

namespace Taming.ML.Sampling;

/// <summary>How the sliding-window sampler computes each token's logits.</summary>
public enum WindowMode
{
    /// <summary>As the reference: a full forward pass of the whole window for every token.</summary>
    Reference,
    /// <summary>The reference's tokens, faster: only the window prefix a position needs, and one key/value cache per
    /// window placement that later positions in the same placement extend (causal attention makes this exact).</summary>
    Exact,
}

/// <summary>
/// Samples token canvases larger than the prior's trained window (H ≥ window height, W ≥ window width) with the
/// reference's sliding window (<see cref="SlidingWindow"/>). For image-conditioned priors the condition canvas has
/// the same shape as the output canvas and is cropped with the same window. A canvas equal to the window gives
/// the same tokens as <see cref="PriorSampler"/>.
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
        var layout = model.Layout;
        int h = layout.GridHeight, w = layout.GridWidth;
        if (height < h || width < w)
            throw new ArgumentOutOfRangeException(nameof(height), $"The canvas ({height}×{width} tokens) is smaller than the prior's window ({h}×{w}).");
        long b = seeds.Count;
        if (layout.Conditioning == Conditioning.Image)
        {
            if (condition is null) throw new ArgumentException("This prior is conditioned on images: give a condition canvas.");
            if (layout.ConditionHeight != h || layout.ConditionWidth != w)
                throw new ArgumentException($"Windowed sampling crops the condition with the image window, so the condition grid ({layout.ConditionHeight}×{layout.ConditionWidth}) must match it ({h}×{w}).");
            if (condition.shape[0] != b || condition.shape[1] != height || condition.shape[2] != width)
                throw new ArgumentException($"The condition canvas is {string.Join("×", condition.shape)}; expected {b}×{height}×{width} to match the output canvas.");
        }
        else if (prefix is null || prefix.shape[0] != b || prefix.shape[1] != 1)
            throw new ArgumentException($"Give one start or class token per canvas ({b}×1).");

        var device = (prefix ?? condition)!.device;
        using var outer = NewDisposeScope();
        using var _ = no_grad();
        bool wasTraining = model.training;
        model.eval();
        try
        {
            var uniforms = PriorSampler.Uniforms(seeds, height * width).to(device);
            var canvas = zeros(new[] { b, (long)height, (long)width }, ScalarType.Int64, device);
            var shiftedCondition = condition is null ? null : condition.to(ScalarType.Int64).to(device) + layout.CodebookSize;
            var caches = new Dictionary<(int Top, int Left), (KvCache Cache, int Filled)>();
            int p = layout.PrefixLength;
            for (int i = 0; i < height; i++)
            {
                for (int j = 0; j < width; j++)
                {
                    using var step = NewDisposeScope();
                    var (top, left, li, lj) = SlidingWindow.Place(i, j, height, width, h, w);
                    int index = li * w + lj;
                    Tensor Sequence()
                    {
                        var head = shiftedCondition is null ? prefix! : shiftedCondition.narrow(1, top, h).narrow(2, left, w).reshape(b, -1);
                        return cat(new[] { head, canvas.narrow(1, top, h).narrow(2, left, w).reshape(b, -1) }, 1);
                    }
                    Tensor logits;
                    if (mode == WindowMode.Reference)
                    {
                        logits = model.forward(Sequence().narrow(1, 0, p + h * w - 1)).select(1, p - 1 + index);
                    }
                    else
                    {
                        if (!caches.TryGetValue((top, left), out var entry)) entry = (model.NewCache(b), 0);
                        int need = p + index;
                        logits = model.Forward(Sequence().narrow(1, entry.Filled, need - entry.Filled), entry.Cache, entry.Filled, lastOnly: true).select(1, -1);
                        caches[(top, left)] = (entry.Cache, need);
                    }
                    canvas.select(1, i).select(1, j).copy_(PriorSampler.Pick(logits, uniforms.select(1, i * width + j), options));
                }
                // Placements whose top row the next canvas row will not use again are done.
                int nextTop = i + 1 < height ? i + 1 - SlidingWindow.Local(i + 1, height, h) : -1;
                foreach (var key in caches.Keys.Where(k => k.Top != nextTop).ToList())
                {
                    caches[key].Cache.Dispose();
                    caches.Remove(key);
                }
            }
            return canvas.MoveToOuterDisposeScope();
        }
        finally
        {
            model.train(wasTraining);
        }
    }
}
