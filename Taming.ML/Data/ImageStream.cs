using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.ExceptionServices;

namespace Taming.ML.Data;

/// <summary>
/// Training images streamed from their source rather than held in memory, for sets larger than memory: a thread reads
/// pass after pass over the input (decoding each image again every pass) while training runs, and each draw takes a
/// random image out of a shuffle pool and puts the next streamed one in its place, as ML.NET's <c>ShuffleRows</c> and
/// the reference's data loaders over large folders do. Memory is the pool's: <c>poolSize</c> images. Where the whole
/// input fits in the pool it is held there and drawn as an <see cref="ImageSet"/> is (every image once per epoch).
/// The draws depend only on the random generator and the input's order, not on the reading thread's timing.
/// </summary>
internal sealed class ImageStream : ITrainingImages
{
    private static readonly byte[] EndOfPass = Array.Empty<byte>();
    private readonly BlockingCollection<byte[]> queue = new(boundedCapacity: 64);
    private readonly CancellationTokenSource stop = new();
    private readonly Thread reader;
    private readonly int poolSize;
    private readonly long? knownCount;
    private readonly Action<string>? log;
    private readonly List<byte[]> pool = new();
    private ImageSet? whole;
    private byte[]? pending; // an image read ahead to see whether a pass had ended
    private ExceptionDispatchInfo? failure;
    private long taken, passLength, passes;
    private bool stopped;

    /// <param name="readPass">The images of one pass over the input, in its order (fresh arrays of c·h·w bytes); called
    /// again for every pass, on the reading thread, with a token that cancels once the stream is disposed.</param>
    /// <param name="channels">Channels per image.</param>
    /// <param name="height">Image height.</param>
    /// <param name="width">Image width.</param>
    /// <param name="poolSize">Images in the shuffle pool.</param>
    /// <param name="knownCount">The input's row count where known.</param>
    /// <param name="log">Where the end of each pass is reported.</param>
    public ImageStream(Func<CancellationToken, IEnumerable<byte[]>> readPass, int channels, int height, int width, int poolSize,
        long? knownCount = null, Action<string>? log = null)
    {
        if (poolSize < 1) throw new ArgumentOutOfRangeException(nameof(poolSize), "The shuffle pool must hold at least one image.");
        (Channels, Height, Width, this.poolSize, this.knownCount, this.log) = (channels, height, width, poolSize, knownCount, log);
        reader = new Thread(() => Read(readPass)) { IsBackground = true, Name = "Taming.ML image stream" };
        reader.Start();
    }

    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }
    public long Count => whole?.Count ?? knownCount ?? Math.Max(passLength, pool.Count);

    /// <summary>Whether the whole input fitted in the pool (and the reading thread has stopped).</summary>
    public bool HeldWhole => whole is not null;

    public string Description => whole is not null
        ? $"{whole.Count:N0} images of {Width}×{Height}"
        : $"images of {Width}×{Height} streamed from the input ({(knownCount is { } n ? n.ToString("N0", CultureInfo.InvariantCulture) : "an unknown number")}, " +
          $"decoded again every pass) through a shuffle pool of {pool.Count:N0}";

    private void Read(Func<CancellationToken, IEnumerable<byte[]>> readPass)
    {
        try
        {
            while (true)
            {
                long count = 0;
                foreach (var image in readPass(stop.Token))
                {
                    if (image.Length != Channels * Height * Width)
                        throw new ArgumentException($"Expected {Channels * Height * Width} values per image, got {image.Length}.");
                    queue.Add(image, stop.Token);
                    count++;
                }
                if (count == 0) throw new InvalidOperationException(TrainingImages.EmptyMessage);
                queue.Add(EndOfPass, stop.Token);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            failure = ExceptionDispatchInfo.Capture(e);
        }
        finally
        {
            queue.CompleteAdding();
        }
    }

    /// <summary>The next streamed image, or null at the end of a pass; rethrows what stopped the reading thread.</summary>
    private byte[]? Next()
    {
        if (pending is { } peeked)
        {
            pending = null;
            return peeked;
        }
        if (!queue.TryTake(out var image, Timeout.Infinite))
        {
            failure?.Throw();
            throw new ObjectDisposedException(nameof(ImageStream));
        }
        if (ReferenceEquals(image, EndOfPass))
        {
            if (passLength == 0) passLength = taken;
            return null;
        }
        taken++;
        return image;
    }

    /// <summary>
    /// Fills the shuffle pool (the first draw does it otherwise), calling <paramref name="added"/> after each image, which
    /// may throw to abandon the fit. Where the input ends first, its images are held whole and the reading stops.
    /// </summary>
    public void Fill(Action? added = null)
    {
        if (pool.Count > 0 || whole is not null) return;
        while (pool.Count < poolSize)
        {
            var image = Next();
            if (image is null)
            {
                HoldWhole();
                return;
            }
            pool.Add(image);
            added?.Invoke();
        }
        // An input of exactly the pool's size: its end comes next, and then it is held whole too.
        if (knownCount == poolSize && (pending = Next()) is null) HoldWhole();
    }

    /// <summary>Keeps the pool, which holds the whole input, as an in-memory set, and stops reading.</summary>
    private void HoldWhole()
    {
        whole = new ImageSet(Channels, Height, Width, memoryLimit: long.MaxValue);
        foreach (var held in pool) whole.Add(held);
        pool.Clear();
        StopReading();
    }

    public byte[] Draw(Random rng)
    {
        Fill();
        if (whole is not null) return whole.Draw(rng);
        int i = rng.Next(pool.Count);
        var drawn = pool[i];
        byte[]? next;
        while ((next = Next()) is null) // a pass has ended: the reading thread starts the next
        {
            passes++;
            log?.Invoke($"Streamed pass {passes:N0} over the training images; reading them again.");
        }
        pool[i] = next;
        return drawn;
    }

    private void StopReading()
    {
        if (stopped) return;
        stopped = true;
        stop.Cancel();
        while (queue.TryTake(out _)) { } // unblocks a reader waiting to add
        reader.Join();
    }

    public void Dispose()
    {
        StopReading();
        queue.Dispose();
        stop.Dispose();
    }
}
