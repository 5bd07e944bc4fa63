using TorchSharp;
using static TorchSharp.torch;
using Taming.ML.Models;

namespace Taming.ML.Sampling;

/// <summary>
/// One row of a batched forward pass over windows: sequence positions [From, To) of window <c>Window</c> are fed
/// (positions before From are in the cache; From = 0 without one), and the token at canvas index Target (i·W + j) is
/// drawn from the logits at position At.
/// </summary>
internal readonly record struct WindowFeed(int Window, int From, int To, int At, int Target);

/// <summary>
/// Walks a batch of canvases with the prior's window in one of the <see cref="WindowMode"/>s. The canvases and the
/// sequence heads (prefix tokens, or the condition canvas) live in one source tensor; each window placement is a map
/// from its sequence positions into that source, so any set of windows is gathered into one batch with one index.
/// </summary>
internal sealed class WindowWalk
{
    /// <summary>Tokens per forward pass at most (rows × sequence length), to bound memory on large canvases.</summary>
    private const long MaxTokensPerPass = 1 << 15;

    private readonly Gpt model;
    private readonly int height, width, h, w, p, offset;
    private readonly long b;
    private readonly bool image;
    private readonly Tensor source;
    private readonly List<long[]> maps = new();
    private readonly Dictionary<(int Top, int Left), int> windows = new();
    private Action<long>? progress;
    private long drawn;

    public WindowWalk(Gpt model, int height, int width, Tensor? prefix, Tensor? condition, long batch)
    {
        var layout = model.Layout;
        (this.model, this.height, this.width, h, w, p, b) = (model, height, width, layout.GridHeight, layout.GridWidth, layout.PrefixLength, batch);
        if (height < h || width < w)
            throw new ArgumentOutOfRangeException(nameof(height), $"The canvas ({height}×{width} tokens) is smaller than the prior's window ({h}×{w}).");
        Tensor head;
        image = layout.Conditioning == Conditioning.Image;
        if (image)
        {
            if (condition is null) throw new ArgumentException("This prior is conditioned on images: give a condition canvas.");
            if (layout.ConditionHeight != h || layout.ConditionWidth != w)
                throw new ArgumentException($"Windowed sampling crops the condition with the image window, so the condition grid ({layout.ConditionHeight}×{layout.ConditionWidth}) must match it ({h}×{w}).");
            if (condition.shape[0] != b || condition.shape[1] != height || condition.shape[2] != width)
                throw new ArgumentException($"The condition canvas is {string.Join("×", condition.shape)}; expected {b}×{height}×{width} to match the output canvas.");
            head = condition.to(ScalarType.Int64).reshape(b, -1) + layout.CodebookSize;
        }
        else if (prefix is null || prefix.shape[0] != b || prefix.shape[1] != 1)
            throw new ArgumentException($"Give one start or class token per canvas ({b}×1).");
        else head = prefix.to(ScalarType.Int64);
        offset = (int)head.shape[1];
        source = cat(new[] { head, zeros(new[] { b, (long)height * width }, ScalarType.Int64, head.device) }, 1);
    }

    public Device Device => source.device;

    /// <summary>The canvases (b, H, W) as walked so far.</summary>
    public Tensor Canvas => source.narrow(1, offset, (long)height * width).view(b, height, width);

    /// <summary>
    /// Fills the canvas. <paramref name="choose"/> turns logits (n·b, K), rows feed-major, and the n target canvas
    /// indices into the n·b tokens to write; <paramref name="progress"/> hears the tokens drawn so far (all canvases)
    /// after every pass.
    /// </summary>
    public void Run(WindowMode mode, Func<Tensor, Tensor, Tensor> choose, Action<long>? progress = null)
    {
        (this.progress, drawn) = (progress, 0);
        using var _ = inference_mode(true); // no autograd bookkeeping in libtorch's dispatch: a step is bound by per-op cost
        using var weights = Modules.MixedPrecision.CastWeightsOnce();
        bool wasTraining = model.training;
        model.eval();
        try
        {
            switch (mode)
            {
                case WindowMode.Reference: Reference(choose); break;
                case WindowMode.Exact: Exact(choose); break;
                default: Strided(choose); break;
            }
        }
        finally
        {
            model.train(wasTraining);
        }
    }

    /// <summary>The reference: token by token in raster order, a full-window forward pass each.</summary>
    private void Reference(Func<Tensor, Tensor, Tensor> choose)
    {
        for (int i = 0; i < height; i++)
        for (int j = 0; j < width; j++)
        {
            var (top, left, li, lj) = SlidingWindow.Place(i, j, height, width, h, w);
            Feed(new[] { new WindowFeed(WindowAt(top, left), 0, p + h * w - 1, p + li * w + lj - 1, i * width + j) }, null, null, choose);
        }
    }

    /// <summary>
    /// The reference's windows and tokens, with less work and in fewer, larger passes. A token is drawn as soon as
    /// the tokens before it in its window are known (a wavefront: tokens of one level do not see each other), and
    /// only that prefix is fed; a window that serves several tokens (near the borders) keeps a key/value cache, so
    /// each later token feeds only what the window gained since. Each token keeps its own uniform, so neither the
    /// order nor the batching changes what is drawn.
    /// </summary>
    private void Exact(Func<Tensor, Tensor, Tensor> choose)
    {
        var level = new int[height, width];
        var filled = new Dictionary<int, int>();
        var steps = new List<List<WindowFeed>>();
        for (int i = 0; i < height; i++)
        for (int j = 0; j < width; j++)
        {
            var (top, left, li, lj) = SlidingWindow.Place(i, j, height, width, h, w);
            int ready = 0;
            for (int r = top; r <= i; r++)
            for (int c = left; c < (r < i ? left + w : j); c++)
                ready = Math.Max(ready, level[r, c] + 1);
            level[i, j] = ready;
            int window = WindowAt(top, left), to = p + li * w + lj;
            Add(steps, ready, new WindowFeed(window, filled.GetValueOrDefault(window), to, to - 1, i * width + j));
            filled[window] = to;
        }
        Execute(steps, choose);
    }

    /// <summary>
    /// Approximate: windows every half window (the last flush with the far edge), taken in raster order; each draws
    /// the tokens of its window that no earlier window drew, in raster order, with one key/value cache, reading the
    /// known ones as context. Every draw runs in the first pass after the tokens before it in its window are known,
    /// so windows further right and down follow close behind the ones they read from.
    /// </summary>
    private void Strided(Func<Tensor, Tensor, Tensor> choose)
    {
        var drawnAt = new int[height, width]; // pass that drew each token
        var known = new bool[height, width];
        var steps = new List<List<WindowFeed>>();
        foreach (int top in Starts(height, h))
        foreach (int left in Starts(width, w))
        {
            int window = WindowAt(top, left), fill = 0, ready = 0;
            for (int index = 0; index < h * w; index++)
            {
                int i = top + index / w, j = left + index % w;
                if (known[i, j])
                {
                    ready = Math.Max(ready, drawnAt[i, j] + 1); // context, fed with the next unknown token's chunk
                    continue;
                }
                Add(steps, ready, new WindowFeed(window, fill, p + index, p + index - 1, i * width + j));
                (drawnAt[i, j], known[i, j], fill) = (ready, true, p + index);
                ready++;
            }
        }
        Execute(steps, choose);
    }

    private static void Add(List<List<WindowFeed>> steps, int step, WindowFeed feed)
    {
        while (steps.Count <= step) steps.Add(new());
        steps[step].Add(feed);
    }

    /// <summary>
    /// Runs the passes of a schedule. Windows fed once go without a cache, in as few passes as memory allows; the
    /// others share a pool of cache slots, one per window from its first feed to its last.
    /// </summary>
    private void Execute(List<List<WindowFeed>> steps, Func<Tensor, Tensor, Tensor> choose)
    {
        var feeds = new Dictionary<int, int>();
        var lastStep = new Dictionary<int, int>();
        for (int s = 0; s < steps.Count; s++)
            foreach (var f in steps[s])
                (feeds[f.Window], lastStep[f.Window]) = (feeds.GetValueOrDefault(f.Window) + 1, s);

        // Slots within a memory budget (wide canvases keep many border windows alive at once); a window that finds no
        // slot feeds its whole prefix every time instead, which draws the same tokens with more work.
        int maxSlots = (int)Math.Max(1, model.CachedRowsPerCall / b);
        var slotOf = new Dictionary<int, int>();
        var slots = new List<int[]>();
        var free = new Stack<int>();
        int capacity = 0;
        int SlotFor(int window)
        {
            if (feeds[window] == 1) return -1;
            if (slotOf.TryGetValue(window, out int slot)) return slot;
            return slotOf[window] = free.Count > 0 ? free.Pop() : capacity < maxSlots ? capacity++ : -1;
        }
        for (int s = 0; s < steps.Count; s++)
        {
            slots.Add(steps[s].Select(f => SlotFor(f.Window)).ToArray());
            foreach (var f in steps[s].Where(f => lastStep[f.Window] == s && slotOf.GetValueOrDefault(f.Window, -1) >= 0)) free.Push(slotOf[f.Window]);
        }

        using var cache = capacity > 0 ? model.NewCache(capacity * b) : null;
        for (int s = 0; s < steps.Count; s++)
        {
            var once = Enumerable.Range(0, steps[s].Count).Where(k => slots[s][k] < 0).Select(k => steps[s][k] with { From = 0 }).ToList();
            foreach (var group in Passes(once)) Feed(group, null, null, choose);
            var shared = Enumerable.Range(0, steps[s].Count).Where(k => slots[s][k] >= 0).OrderByDescending(k => steps[s][k].To - steps[s][k].From).ToList();
            int from = 0;
            foreach (var group in Passes(shared.Select(k => steps[s][k]).ToList()))
            {
                Feed(group, cache, shared.Skip(from).Take(group.Count).Select(k => slots[s][k]).ToList(), choose);
                from += group.Count;
            }
        }
    }

    /// <summary>
    /// Splits feeds into passes: rows of one pass are padded to its longest feed, and each pass costs a fixed
    /// overhead, so long and short feeds go in separate passes when that is cheaper. Sorts longest first.
    /// </summary>
    private List<List<WindowFeed>> Passes(List<WindowFeed> feeds)
    {
        const long overhead = 256; // a pass's fixed cost, in fed tokens
        feeds.Sort((x, y) => (y.To - y.From).CompareTo(x.To - x.From));
        int n = feeds.Count;
        var cost = new long[n + 1];
        var cut = new int[n + 1];
        for (int j = 1; j <= n; j++)
        {
            cost[j] = long.MaxValue;
            for (int i = j - 1; i >= 0; i--)
            {
                long tokens = (j - i) * b * (feeds[i].To - feeds[i].From);
                if (tokens > MaxTokensPerPass && j - i > 1) break;
                if (cost[i] + overhead + tokens < cost[j]) (cost[j], cut[j]) = (cost[i] + overhead + tokens, i);
            }
        }
        var passes = new List<List<WindowFeed>>();
        for (int j = n; j > 0; j = cut[j]) passes.Insert(0, feeds.GetRange(cut[j], j - cut[j]));
        return passes;
    }

    /// <summary>Window starts every half window, the last one flush with the far edge.</summary>
    private static List<int> Starts(int canvas, int window)
    {
        int stride = Math.Max(1, window / 2);
        var starts = new List<int>();
        for (int s = 0; s < canvas - window; s += stride) starts.Add(s);
        starts.Add(canvas - window);
        return starts;
    }

    /// <summary>The id of the window at (top, left), with its map from sequence positions to source columns.</summary>
    private int WindowAt(int top, int left)
    {
        if (windows.TryGetValue((top, left), out int id)) return id;
        var map = new long[p + h * w - 1];
        for (int q = 0; q < map.Length; q++)
        {
            int k = q < p ? q : q - p;
            long cell = (long)(top + k / w) * width + left + k % w;
            map[q] = q < p ? (image ? cell : q) : offset + cell;
        }
        maps.Add(map);
        windows[(top, left)] = maps.Count - 1;
        return maps.Count - 1;
    }

    private Tensor Upload(long[] values) => Native.TorchRuntime.Upload(tensor(values), Device);

    /// <summary>
    /// One batched forward pass over the feeds (rows feed-major, canvas-minor), then the draws. With a cache, feed r
    /// uses cache slot <paramref name="slots"/>[r] (b rows from slot·b), or by default the rows of its own place.
    /// </summary>
    private void Feed(IReadOnlyList<WindowFeed> feeds, KvCache? cache, IReadOnlyList<int>? slots, Func<Tensor, Tensor, Tensor> choose)
    {
        using var scope = NewDisposeScope();
        int n = feeds.Count, t = feeds.Max(f => f.To - f.From);
        var columns = new long[n * t];
        var positions = cache is null ? null : new long[n * b * t];
        var at = new long[n * b];
        long keys = 0;
        for (int r = 0; r < n; r++)
        {
            var f = feeds[r];
            for (int k = 0; k < t; k++)
            {
                int s = Math.Min(f.From + k, f.To - 1); // shorter rows repeat their last token
                columns[r * t + k] = maps[f.Window][s];
                if (positions != null)
                    for (int c = 0; c < b; c++) positions[(r * b + c) * t + k] = s;
            }
            for (int c = 0; c < b; c++) at[r * b + c] = f.At - f.From;
            keys = Math.Max(keys, f.To);
        }
        // One upload per pass, without waiting for the device (pinned memory, non-blocking): the next pass's work
        // is queued while this one runs.
        var rows = slots is null ? Array.Empty<long>() : Enumerable.Range(0, n * (int)b).Select(row => (long)slots[row / (int)b] * b + row % b).ToArray();
        var all = Upload(columns.Concat(at).Concat(feeds.Select(f => (long)f.Target)).Concat(positions ?? Array.Empty<long>()).Concat(rows).ToArray());
        long o = 0;
        Tensor Next(long length) { var part = all.narrow(0, o, length); o += length; return part; }
        var ids = source.index_select(1, Next(columns.Length)).view(b, n, t).transpose(0, 1).reshape(n * b, t);
        var atRows = Next(at.Length);
        var targets = Next(n);
        var logits = cache is null
            ? model.LogitsAt(ids, atRows)
            : model.LogitsAt(ids, atRows, cache, Next(positions!.Length).view(n * b, t), keys, slots is null ? null : Next(rows.Length));
        source.index_copy_(1, targets + offset, choose(logits, targets).view(n, b).t());
        drawn += n * b;
        progress?.Invoke(drawn);
    }
}
