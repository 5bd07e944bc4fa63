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
        var window = new Window(model, height, width, prefix, condition, seeds.Count);
        var uniforms = PriorSampler.Uniforms(seeds, height * width).to(window.Device);
        Tensor Choose(Tensor logits, int i, int j) => PriorSampler.Pick(logits, uniforms.select(1, i * width + j), options);
        var canvas = zeros(new[] { (long)seeds.Count, height, width }, ScalarType.Int64, window.Device);
        window.Run(canvas, mode, Choose);
        return canvas.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The prior's negative log-likelihood of given canvases (b, H, W) under the reference's sliding window, in bits
    /// per token, one value per canvas: a quality figure for canvases however they were made.
    /// </summary>
    public static double[] BitsPerToken(Gpt model, Tensor canvas, Tensor? prefix, Tensor? condition)
    {
        using var outer = NewDisposeScope();
        int height = (int)canvas.shape[1], width = (int)canvas.shape[2];
        var window = new Window(model, height, width, prefix, condition, canvas.shape[0]);
        var given = canvas.to(ScalarType.Int64).to(window.Device);
        var nll = zeros(new[] { canvas.shape[0] }, ScalarType.Float64, window.Device);
        Tensor Choose(Tensor logits, int i, int j)
        {
            var token = given.select(1, i).select(1, j);
            var logp = nn.functional.log_softmax(logits.to(ScalarType.Float64), 1).gather(1, token.unsqueeze(1)).squeeze(1);
            nll.sub_(logp);
            return token;
        }
        window.Run(zeros_like(given), WindowMode.Exact, Choose);
        return (nll / (height * width) / Math.Log(2)).cpu().data<double>().ToArray();
    }

    /// <summary>One canvas batch's geometry and inputs, and the three ways of walking it.</summary>
    private sealed class Window
    {
        private readonly Gpt model;
        private readonly int height, width, h, w, p;
        private readonly long b;
        private readonly Tensor? prefix, shiftedCondition;

        public Window(Gpt model, int height, int width, Tensor? prefix, Tensor? condition, long batch)
        {
            var layout = model.Layout;
            (this.model, this.height, this.width, h, w, p, b) = (model, height, width, layout.GridHeight, layout.GridWidth, layout.PrefixLength, batch);
            if (height < h || width < w)
                throw new ArgumentOutOfRangeException(nameof(height), $"The canvas ({height}×{width} tokens) is smaller than the prior's window ({h}×{w}).");
            if (layout.Conditioning == Conditioning.Image)
            {
                if (condition is null) throw new ArgumentException("This prior is conditioned on images: give a condition canvas.");
                if (layout.ConditionHeight != h || layout.ConditionWidth != w)
                    throw new ArgumentException($"Windowed sampling crops the condition with the image window, so the condition grid ({layout.ConditionHeight}×{layout.ConditionWidth}) must match it ({h}×{w}).");
                if (condition.shape[0] != b || condition.shape[1] != height || condition.shape[2] != width)
                    throw new ArgumentException($"The condition canvas is {string.Join("×", condition.shape)}; expected {b}×{height}×{width} to match the output canvas.");
                shiftedCondition = condition.to(ScalarType.Int64) + layout.CodebookSize;
            }
            else if (prefix is null || prefix.shape[0] != b || prefix.shape[1] != 1)
                throw new ArgumentException($"Give one start or class token per canvas ({b}×1).");
            this.prefix = prefix;
            Device = (prefix ?? condition)!.device;
        }

        public Device Device { get; }

        /// <summary>The sequence the prior sees for the window at (top, left): prefix or condition crop, then the window's tokens.</summary>
        private Tensor Sequence(Tensor canvas, int top, int left)
        {
            var head = shiftedCondition is null ? prefix! : shiftedCondition.narrow(1, top, h).narrow(2, left, w).reshape(b, -1);
            return cat(new[] { head, canvas.narrow(1, top, h).narrow(2, left, w).reshape(b, -1) }, 1);
        }

        /// <summary>Fills <paramref name="canvas"/> position by position; <paramref name="choose"/> turns logits (b, K) at (i, j) into tokens (b).</summary>
        public void Run(Tensor canvas, WindowMode mode, Func<Tensor, int, int, Tensor> choose)
        {
            using var _ = no_grad();
            bool wasTraining = model.training;
            model.eval();
            try
            {
                if (mode == WindowMode.Strided) RunStrided(canvas, choose);
                else RunSliding(canvas, mode, choose);
            }
            finally
            {
                model.train(wasTraining);
            }
        }

        private void RunSliding(Tensor canvas, WindowMode mode, Func<Tensor, int, int, Tensor> choose)
        {
            var caches = new Dictionary<(int Top, int Left), (KvCache Cache, int Filled)>();
            for (int i = 0; i < height; i++)
            {
                for (int j = 0; j < width; j++)
                {
                    using var step = NewDisposeScope();
                    var (top, left, li, lj) = SlidingWindow.Place(i, j, height, width, h, w);
                    int index = li * w + lj;
                    Tensor logits;
                    if (mode == WindowMode.Reference)
                    {
                        logits = model.forward(Sequence(canvas, top, left).narrow(1, 0, p + h * w - 1)).select(1, p - 1 + index);
                    }
                    else
                    {
                        if (!caches.TryGetValue((top, left), out var entry)) entry = (model.NewCache(b), 0);
                        int need = p + index;
                        logits = model.Forward(Sequence(canvas, top, left).narrow(1, entry.Filled, need - entry.Filled), entry.Cache, entry.Filled, lastOnly: true).select(1, -1);
                        caches[(top, left)] = (entry.Cache, need);
                    }
                    canvas.select(1, i).select(1, j).copy_(choose(logits, i, j));
                }
                // Placements whose top row the next canvas row will not use again are done.
                int nextTop = i + 1 < height ? i + 1 - SlidingWindow.Local(i + 1, height, h) : -1;
                foreach (var key in caches.Keys.Where(k => k.Top != nextTop).ToList())
                {
                    caches[key].Cache.Dispose();
                    caches.Remove(key);
                }
            }
            foreach (var entry in caches.Values) entry.Cache.Dispose();
        }

        private void RunStrided(Tensor canvas, Func<Tensor, int, int, Tensor> choose)
        {
            var known = new bool[height, width];
            foreach (int top in Starts(height, h))
            foreach (int left in Starts(width, w))
            {
                using var cache = model.NewCache(b);
                int filled = 0;
                for (int index = 0; index < h * w; index++)
                {
                    int i = top + index / w, j = left + index % w;
                    if (known[i, j]) continue; // context, fed with the next unknown token's chunk
                    using var step = NewDisposeScope();
                    int need = p + index;
                    var logits = model.Forward(Sequence(canvas, top, left).narrow(1, filled, need - filled), cache, filled, lastOnly: true).select(1, -1);
                    filled = need;
                    canvas.select(1, i).select(1, j).copy_(choose(logits, i, j));
                    known[i, j] = true;
                }
            }
        }

        /// <summary>Window starts every half window, the last one flush with the far edge.</summary>
        private static IEnumerable<int> Starts(int canvas, int window)
        {
            int stride = Math.Max(1, window / 2);
            for (int s = 0; s < canvas - window; s += stride) yield return s;
            yield return canvas - window;
        }
    }
}
