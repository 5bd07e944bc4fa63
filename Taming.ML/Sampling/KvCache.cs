using static TorchSharp.torch;

namespace Taming.ML.Sampling;

/// <summary>
/// Keys and values of every attention layer for the positions generated so far, preallocated for the whole
/// sequence so that a sampling step writes one slice and allocates nothing new. Per layer one tensor (2, batch,
/// heads, length, head size) holds keys and values, so that a step writes both with one copy. Rows either share one
/// position (<see cref="Append"/>) or each stand at their own (<see cref="Ragged"/>), which lets windowed sampling
/// batch windows that are at different points of their sequences.
/// </summary>
internal sealed class KvCache : IDisposable
{
    private readonly Tensor[] kv;
    private readonly long batch, heads, maxLength, headDim;
    private Tensor? writeIndex, rows, mask;
    private long length;

    public KvCache(int layers, long batch, long heads, long maxLength, long headDim, Device device, ScalarType dtype)
    {
        (this.batch, this.heads, this.maxLength, this.headDim) = (batch, heads, maxLength, headDim);
        kv = new Tensor[layers];
        // Owned by the cache, whatever dispose scope it is made in.
        for (int l = 0; l < layers; l++) kv[l] = zeros(new[] { 2, batch, heads, maxLength, headDim }, dtype, device).DetachFromDisposeScope();
    }

    /// <summary>Whether the next forward pass writes at per-row positions (set by <see cref="Ragged"/>).</summary>
    public bool IsRagged => writeIndex is not null;

    /// <summary>
    /// Makes the next forward pass store its tokens at per-row <paramref name="at"/> positions (n, t) and attend
    /// from each to the keys at or before its own position among the first <paramref name="keys"/>. The pass's rows
    /// are the cache's rows, or, given <paramref name="cacheRows"/> (n), those rows of the cache. Undone on dispose.
    /// Where to write is worked out here once for all layers.
    /// </summary>
    public IDisposable Ragged(Tensor at, long keys, Tensor? cacheRows = null)
    {
        long n = at.shape[0], t = at.shape[1];
        // Keys then values of the selected rows, as rows of the cache viewed as (2·batch, …): one select along the
        // first dimension, which libtorch does much faster than along an inner one.
        rows = cacheRows is null ? null : cat(new[] { cacheRows, cacheRows + batch });
        length = keys;
        mask = arange(keys, device: at.device).view(1, 1, 1, keys) <= at.view(n, 1, t, 1);
        var device = at.device;
        writeIndex = cacheRows is null
            ? at.view(1, n, 1, t, 1).expand(2, n, heads, t, headDim)
            // Selected rows: a flat (key/value, row, head, position) index into the cache viewed as (·, head size).
            : (((arange(2, device: device).view(2, 1, 1, 1) * batch + cacheRows.view(1, n, 1, 1)) * heads
                + arange(heads, device: device).view(1, 1, heads, 1)) * maxLength + at.view(1, n, 1, t)).reshape(-1);
        return new Reset(this);
    }

    /// <summary>Stores keys and values (2, b, h, t, d) of layer <paramref name="layer"/> at positions start … start+t−1
    /// and returns a view of all keys and values up to there.</summary>
    public Tensor Append(int layer, Tensor keysAndValues, long start)
    {
        long t = keysAndValues.shape[3];
        kv[layer].narrow(3, start, t).copy_(keysAndValues);
        return kv[layer].narrow(3, 0, start + t);
    }

    /// <summary>Stores keys and values (2, n, h, t, d) at the ragged positions and returns the keys and values of the
    /// pass's rows (2, n, h, keys, d) and the attention mask.</summary>
    public (Tensor KeysAndValues, Tensor Mask) AppendRagged(int layer, Tensor keysAndValues)
    {
        if (rows is null)
        {
            kv[layer].scatter_(3, writeIndex!, keysAndValues);
            return (kv[layer].narrow(3, 0, length), mask!);
        }
        kv[layer].view(-1, headDim).index_copy_(0, writeIndex!, keysAndValues.reshape(-1, headDim));
        long n = rows.shape[0] / 2;
        var selected = kv[layer].narrow(3, 0, length).view(2 * batch, heads, length, headDim).index_select(0, rows);
        return (selected.view(2, n, heads, length, headDim), mask!);
    }

    public void Dispose()
    {
        foreach (var t in kv) t.Dispose();
    }

    private sealed class Reset(KvCache cache) : IDisposable
    {
        public void Dispose() => (cache.writeIndex, cache.rows, cache.mask) = (null, null, null);
    }
}
