using static TorchSharp.torch;

namespace Taming.ML.Sampling;

/// <summary>
/// Keys and values of every attention layer for the positions generated so far, preallocated for the
/// whole sequence so that a sampling step writes one slice and allocates nothing new.
/// </summary>
internal sealed class KvCache : IDisposable
{
    private readonly Tensor[] keys, values;

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

    /// <summary>Stores k, v (b, h, t, d) of layer <paramref name="layer"/> at positions start … start+t−1 and
    /// returns views of all keys and values up to there.</summary>
    public (Tensor Keys, Tensor Values) Append(int layer, Tensor k, Tensor v, long start)
    {
        long t = k.shape[2];
        keys[layer].narrow(2, start, t).copy_(k);
        values[layer].narrow(2, start, t).copy_(v);
        return (keys[layer].narrow(2, 0, start + t), values[layer].narrow(2, 0, start + t));
    }

    public void Dispose()
    {
        foreach (var t in keys.Concat(values)) t.Dispose();
    }
}
