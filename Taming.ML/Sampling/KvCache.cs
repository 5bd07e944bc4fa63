using static TorchSharp.torch;

namespace Taming.ML.Sampling;

/// <summary>
/// Keys and values of every attention layer for the positions generated so far, preallocated for the
/// whole sequence so that a sampling step writes one slice and allocates nothing new. Rows either share one
/// position (<see cref="Append"/>) or each stand at their own (<see cref="Ragged"/>), which lets windowed sampling
/// batch windows that are at different points of their sequences.
/// </summary>
internal sealed class KvCache : IDisposable
{
    private readonly Tensor[] keys, values;
    private Tensor? positions, rows, mask;
    private long length;

    public KvCache(int layers, long batch, long heads, long maxLength, long headDim, Device device, ScalarType dtype)
    {
        keys = new Tensor[layers];
        values = new Tensor[layers];
        for (int l = 0; l < layers; l++)
        {
            // Owned by the cache, whatever dispose scope it is made in.
            keys[l] = zeros(new[] { batch, heads, maxLength, headDim }, dtype, device).DetachFromDisposeScope();
            values[l] = zeros(new[] { batch, heads, maxLength, headDim }, dtype, device).DetachFromDisposeScope();
        }
    }

    /// <summary>Whether the next forward pass writes at per-row positions (set by <see cref="Ragged"/>).</summary>
    public bool IsRagged => positions is not null;

    /// <summary>
    /// Makes the next forward pass store its tokens at per-row <paramref name="at"/> positions (n, t) and attend
    /// from each to the keys at or before its own position among the first <paramref name="keys"/>. The pass's rows
    /// are the cache's rows, or, given <paramref name="cacheRows"/> (n), those rows of the cache. Undone on dispose.
    /// </summary>
    public IDisposable Ragged(Tensor at, long keys, Tensor? cacheRows = null)
    {
        positions = at;
        rows = cacheRows;
        length = keys;
        mask = arange(keys, device: at.device).view(1, 1, 1, keys) <= at.view(at.shape[0], 1, at.shape[1], 1);
        return new Reset(this);
    }

    /// <summary>Stores k, v (b, h, t, d) of layer <paramref name="layer"/> at positions start … start+t−1 and
    /// returns views of all keys and values up to there.</summary>
    public (Tensor Keys, Tensor Values) Append(int layer, Tensor k, Tensor v, long start)
    {
        long t = k.shape[2];
        keys[layer].narrow(2, start, t).copy_(k);
        values[layer].narrow(2, start, t).copy_(v);
        return (keys[layer].narrow(2, 0, start + t), values[layer].narrow(2, 0, start + t));
    }

    /// <summary>Stores k, v (n, h, t, d) at the ragged positions and returns the keys, values and attention mask.</summary>
    public (Tensor Keys, Tensor Values, Tensor Mask) AppendRagged(int layer, Tensor k, Tensor v)
    {
        long n = k.shape[0], h = k.shape[1], t = k.shape[2], d = k.shape[3];
        if (rows is null)
        {
            var index = positions!.view(n, 1, t, 1).expand(n, h, t, d);
            keys[layer].scatter_(2, index, k);
            values[layer].scatter_(2, index, v);
            return (keys[layer].narrow(2, 0, length), values[layer].narrow(2, 0, length), mask!);
        }
        // Selected rows: write through a flat (row, head, position) index, read those rows back.
        long max = keys[layer].shape[2];
        var flat = ((rows.view(n, 1, 1) * h + arange(h, device: k.device).view(1, h, 1)) * max + positions!.view(n, 1, t)).reshape(-1);
        keys[layer].view(-1, d).index_copy_(0, flat, k.reshape(-1, d));
        values[layer].view(-1, d).index_copy_(0, flat, v.reshape(-1, d));
        return (keys[layer].narrow(2, 0, length).index_select(0, rows), values[layer].narrow(2, 0, length).index_select(0, rows), mask!);
    }

    public void Dispose()
    {
        foreach (var t in keys.Concat(values)) t.Dispose();
    }

    private sealed class Reset(KvCache cache) : IDisposable
    {
        public void Dispose() => (cache.positions, cache.rows, cache.mask) = (null, null, null);
    }
}
