using System.Runtime.ExceptionServices;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

namespace Taming.ML.MLNet;

/// <summary>
/// A cursor whose rows are computed on several threads and served in the order of a single cursor. LoadImages,
/// ResizeImages and ExtractPixels decode and resize in their getters, which one cursor calls on one thread, so a pass
/// over a text file of image paths decodes one image at a time. ML.NET's loaders and row-to-row transforms split a pass
/// into a cursor set instead (TextLoader: batches of 64 lines, handed to its cursors as they ask), whose rows the batch
/// ids put back in order. Here each cursor of the set runs on its own thread, calling the getters, and the rows are
/// served by batch id: the same rows, order, row ids and positions as one cursor. A getter that fails on a worker
/// throws when that row's value is read, so errors name the row as they would on one cursor.
/// </summary>
internal sealed class ParallelCursor : DataViewRowCursor
{
    /// <summary>Rows a worker may hold ahead of the consumer: two of TextLoader's batches, so that the other workers
    /// fill their batches while the consumer drains one.</summary>
    private const int RowsAhead = 128;

    /// <summary>Bytes a worker may hold ahead (at least one row): decoded whole photos are large (10 MB at 2048×1280), and
    /// a few in each queue keep the threads busy. All workers together hold at most 1 GB, or 32 MB each.</summary>
    private static long BytesAhead(int workers) => Math.Clamp((1L << 30) / workers, 32L << 20, 128L << 20);

    private readonly DataViewRowCursor[] inputs;
    private readonly Worker[] workers;
    private readonly int[] slotOf;
    private readonly CancellationTokenSource stop = new();
    private Worker? currentWorker;
    private RowValues? current;
    private long position = -1, currentBatch;
    private bool disposed;

    /// <summary>
    /// A cursor over <paramref name="columns"/> of <paramref name="input"/>: parallel where some column holds images or
    /// [channels, height, width] pixels (decoding them is the work worth spreading) and the input splits its rows into a
    /// cursor set, else the input's own cursor.
    /// </summary>
    public static DataViewRowCursor Create(IDataView input, IEnumerable<DataViewSchema.Column> columns)
    {
        var needed = columns.ToArray();
        int threads = Environment.ProcessorCount;
        if (threads < 2 || !needed.Any(c => c.Type is ImageDataViewType || c.Type is VectorDataViewType { Dimensions.Length: 3 }))
            return input.GetRowCursor(needed);
        var set = input.GetRowCursorSet(needed, threads);
        return set.Length == 1 ? set[0] : new ParallelCursor(set, needed);
    }

    private ParallelCursor(DataViewRowCursor[] inputs, DataViewSchema.Column[] columns)
    {
        this.inputs = inputs;
        Schema = inputs[0].Schema;
        slotOf = Enumerable.Repeat(-1, Schema.Count).ToArray();
        for (int k = 0; k < columns.Length; k++) slotOf[columns[k].Index] = k;
        workers = inputs.Select(cursor => new Worker(cursor, columns, BytesAhead(inputs.Length), stop.Token)).ToArray();
        foreach (var worker in workers) worker.Start();
    }

    public override DataViewSchema Schema { get; }
    public override long Position => position;
    public override long Batch => 0;

    public override bool MoveNext()
    {
        current?.Dispose();
        current = null;
        // A batch's rows come from one worker, in order; the next batch is the smallest at the head of any worker.
        var next = currentWorker?.Peek() is { } head && head.Batch == currentBatch ? currentWorker : null;
        if (next == null)
        {
            RowValues? smallest = null;
            foreach (var worker in workers)
                if (worker.Peek() is { } candidate && (smallest == null || candidate.Batch < smallest.Batch))
                    (smallest, next) = (candidate, worker);
            if (next == null) return false;
        }
        current = next.Take();
        (currentWorker, currentBatch) = (next, current.Batch);
        position++;
        return true;
    }

    public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
    {
        int slot = slotOf[column.Index];
        if (slot < 0) throw new InvalidOperationException($"Column '{column.Name}' is not active in this cursor.");
        return (ref TValue value) =>
        {
            var row = current ?? throw new InvalidOperationException("The cursor is not on a row; call MoveNext first.");
            row.Throw(slot);
            // Vectors are copied into the caller's buffer, as a getter does; images stay owned by this cursor until it
            // moves on, as a LoadImages cursor's do.
            if (row.Values[slot] is IVectorCopy vector) vector.CopyTo(ref value);
            else value = (TValue)row.Values[slot]!;
        };
    }

    public override ValueGetter<DataViewRowId> GetIdGetter() => (ref DataViewRowId id) =>
        id = (current ?? throw new InvalidOperationException("The cursor is not on a row; call MoveNext first.")).Id;

    public override bool IsColumnActive(DataViewSchema.Column column) => slotOf[column.Index] >= 0;

    protected override void Dispose(bool disposing)
    {
        if (disposing && !disposed)
        {
            disposed = true;
            stop.Cancel();
            foreach (var worker in workers) worker.Dispose();
            foreach (var input in inputs) input.Dispose();
            current?.Dispose();
            stop.Dispose();
        }
        base.Dispose(disposing);
    }

    private interface IVectorCopy
    {
        long Bytes { get; }

        void CopyTo<TValue>(ref TValue destination);
    }

    private sealed class Vector<T>(VBuffer<T> value) : IVectorCopy
    {
        public long Bytes => (long)value.Length * System.Runtime.CompilerServices.Unsafe.SizeOf<T>();

        public void CopyTo<TValue>(ref TValue destination)
        {
            var buffer = destination is VBuffer<T> existing ? existing : default;
            value.CopyTo(ref buffer);
            destination = (TValue)(object)buffer;
        }
    }

    /// <summary>One row's values (or the errors their getters threw), row id and batch id.</summary>
    private sealed class RowValues(long batch, DataViewRowId id, object?[] values, Exception?[]? errors, long bytes) : IDisposable
    {
        public long Batch => batch;
        public DataViewRowId Id => id;
        public object?[] Values => values;
        public long Bytes => bytes;

        public void Throw(int slot)
        {
            if (errors?[slot] is { } e) ExceptionDispatchInfo.Throw(e);
        }

        public void Dispose()
        {
            foreach (var v in values) (v as IDisposable)?.Dispose();
        }
    }

    /// <summary>Reads one cursor of the set on its own thread into a queue bounded by rows and bytes.</summary>
    private sealed class Worker : IDisposable
    {
        private readonly DataViewRowCursor cursor;
        private readonly Func<object?>[] fetch;
        private readonly long maxBytes;
        private readonly CancellationToken token;
        private readonly Queue<RowValues> queue = new();
        private readonly Thread thread;
        private long bytes;
        private bool done;
        private ExceptionDispatchInfo? fault;

        public Worker(DataViewRowCursor cursor, DataViewSchema.Column[] columns, long maxBytes, CancellationToken token)
        {
            this.cursor = cursor;
            this.maxBytes = maxBytes;
            this.token = token;
            fetch = columns.Select(c => Fetcher(cursor, c)).ToArray();
            thread = new Thread(Run) { IsBackground = true, Name = "Taming.ML row reader" };
        }

        public void Start() => thread.Start();

        /// <summary>The next row, waiting for it; null once the cursor has no more rows.</summary>
        public RowValues? Peek()
        {
            lock (queue)
            {
                while (queue.Count == 0 && !done) Monitor.Wait(queue);
                if (queue.Count > 0) return queue.Peek();
                fault?.Throw();
                return null;
            }
        }

        public RowValues Take()
        {
            lock (queue)
            {
                var row = queue.Dequeue();
                bytes -= row.Bytes;
                Monitor.PulseAll(queue);
                return row;
            }
        }

        private void Run()
        {
            try
            {
                var idGetter = cursor.GetIdGetter();
                while (!token.IsCancellationRequested && cursor.MoveNext())
                {
                    DataViewRowId id = default;
                    idGetter(ref id);
                    var values = new object?[fetch.Length];
                    Exception?[]? errors = null;
                    long size = 0;
                    for (int k = 0; k < fetch.Length; k++)
                    {
                        try
                        {
                            values[k] = fetch[k]();
                            size += SizeOf(values[k]);
                        }
                        catch (Exception e)
                        {
                            (errors ??= new Exception?[fetch.Length])[k] = e;
                        }
                    }
                    if (!Add(new RowValues(cursor.Batch, id, values, errors, size))) return;
                }
            }
            catch (Exception e)
            {
                lock (queue) fault = ExceptionDispatchInfo.Capture(e);
            }
            finally
            {
                lock (queue)
                {
                    done = true;
                    Monitor.PulseAll(queue);
                }
            }
        }

        private bool Add(RowValues row)
        {
            lock (queue)
            {
                while (queue.Count > 0 && (queue.Count >= RowsAhead || bytes + row.Bytes > maxBytes) && !token.IsCancellationRequested)
                    Monitor.Wait(queue, 100); // wakes to see a cancellation
                if (token.IsCancellationRequested)
                {
                    row.Dispose();
                    return false;
                }
                queue.Enqueue(row);
                bytes += row.Bytes;
                Monitor.PulseAll(queue);
                return true;
            }
        }

        public void Dispose()
        {
            lock (queue) Monitor.PulseAll(queue);
            thread.Join();
            foreach (var row in queue) row.Dispose();
            queue.Clear();
        }

        private static long SizeOf(object? value) => value switch
        {
            MLImage image => (long)image.Width * image.Height * 4,
            IVectorCopy vector => vector.Bytes,
            _ => 16,
        };

        /// <summary>A fetch of the column's value at the cursor's row, copied so that the next row cannot change it.</summary>
        private static Func<object?> Fetcher(DataViewRowCursor cursor, DataViewSchema.Column column)
        {
            var type = column.Type.RawType;
            var method = type.IsGenericType && type.GetGenericTypeDefinition() == typeof(VBuffer<>)
                ? typeof(Worker).GetMethod(nameof(VectorFetcher), System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!
                    .MakeGenericMethod(type.GetGenericArguments()[0])
                : typeof(Worker).GetMethod(nameof(ValueFetcher), System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!
                    .MakeGenericMethod(type);
            return (Func<object?>)method.Invoke(null, new object[] { cursor, column })!;
        }

        private static Func<object?> VectorFetcher<T>(DataViewRowCursor cursor, DataViewSchema.Column column)
        {
            var getter = cursor.GetGetter<VBuffer<T>>(column);
            return () =>
            {
                VBuffer<T> value = default; // a fresh buffer per row: the queue holds several rows
                getter(ref value);
                return new Vector<T>(Own(value));
            };
        }

        private static Func<object?> ValueFetcher<T>(DataViewRowCursor cursor, DataViewSchema.Column column)
        {
            var getter = cursor.GetGetter<T>(column);
            T value = default!;
            return () =>
            {
                getter(ref value);
                // Values stay valid until the cursor moves on only, and images may be disposed then (ResizeImages
                // hands on an image of the right size as it is, which LoadImages disposes at the next row): copy them.
                return value switch
                {
                    MLImage image => Copy(image),
                    ReadOnlyMemory<char> text => text.ToString().AsMemory(),
                    _ => value,
                };
            };
        }

        private static MLImage Copy(MLImage image)
        {
            var copy = MLImage.CreateFromPixels(image.Width, image.Height, image.PixelFormat, image.Pixels);
            copy.Tag = image.Tag;
            return copy;
        }

        /// <summary>Text in vectors may point into the loader's buffers; other items are values.</summary>
        private static VBuffer<T> Own<T>(VBuffer<T> value)
        {
            if (typeof(T) != typeof(ReadOnlyMemory<char>)) return value;
            var copy = default(VBuffer<T>);
            value.CopyTo(ref copy);
            var items = VBufferEditor.CreateFromBuffer(ref copy).Values;
            for (int i = 0; i < items.Length; i++) items[i] = (T)(object)((ReadOnlyMemory<char>)(object)items[i]!).ToString().AsMemory();
            return copy;
        }
    }
}
