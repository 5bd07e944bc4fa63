using Taming.ML.Data;

namespace Taming.ML.Tests;

/// <summary>Small synthetic images and a tiny model configuration that trains in seconds.</summary>
internal static class TinyData
{
    public const int Side = 8;

    public static VqganOptions Options(int steps = 30) => new()
    {
        Resolution = Side, Channels = 1, Ch = 8, ChMult = new[] { 1, 2 }, NumResBlocks = 1, ZChannels = 8,
        EmbedDim = 4, CodebookSize = 16, DiscLayers = 1, DiscChannels = 8, Steps = steps, BatchSize = 8,
        LearningRate = 2e-3, ProgressInterval = 5, InferenceBatchSize = 7, Seed = 3, PerceptualWeight = 0,
    };

    /// <summary>Images of soft diagonal stripes with varying phase and contrast, side × side.</summary>
    public static byte[][] Images(int count, int side = Side, int seed = 0)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ =>
        {
            double phase = rng.NextDouble() * 6.28, contrast = 60 + rng.NextDouble() * 60, slope = rng.Next(1, 3);
            var image = new byte[side * side];
            for (int y = 0; y < side; y++)
            for (int x = 0; x < side; x++)
                image[y * side + x] = (byte)Math.Clamp(128 + contrast * Math.Sin(phase + (x + slope * y) * 0.8), 0, 255);
            return image;
        }).ToArray();
    }

    /// <summary>An "Image" column (MLImage) and a "Label" key column.</summary>
    public static IDataView ImageView(int count, int side = Side, int seed = 0) =>
        new InMemoryImageDataView(Images(count, side, seed), side, side,
            Enumerable.Range(0, count).Select(i => (byte)(i % 3)).ToArray(), 3);

    /// <summary>A "Pixels" column: float vectors [1, side, side] of 0–255, as ExtractPixels makes.</summary>
    public static IDataView PixelView(MLContext ml, int count, int side = Side, Func<int, float[], float[]>? edit = null)
    {
        var rows = Images(count, side).Select((img, i) =>
        {
            var pixels = img.Select(b => (float)b).ToArray();
            return new PixelRow { Pixels = edit?.Invoke(i, pixels) ?? pixels };
        }).ToList();
        var schema = SchemaDefinition.Create(typeof(PixelRow));
        schema[nameof(PixelRow.Pixels)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, 1, side, side);
        return ml.Data.LoadFromEnumerable(rows, schema);
    }

    public sealed class PixelRow
    {
        public float[] Pixels { get; set; } = Array.Empty<float>();
    }

    /// <summary>All key values of a token column, row after row.</summary>
    public static uint[] Tokens(IDataView data, string column = "Tokens")
    {
        var col = data.Schema[column];
        using var cursor = data.GetRowCursor(new[] { col });
        var getter = cursor.GetGetter<VBuffer<uint>>(col);
        var buffer = default(VBuffer<uint>);
        var all = new List<uint>();
        while (cursor.MoveNext())
        {
            getter(ref buffer);
            all.AddRange(buffer.DenseValues());
        }
        return all.ToArray();
    }

    /// <summary>The warnings that <paramref name="ml"/>'s log hears from now on.</summary>
    public static List<string> Warnings(MLContext ml)
    {
        var warnings = new List<string>();
        ml.Log += (_, e) => { if (e.Kind == Microsoft.ML.Runtime.ChannelMessageKind.Warning) lock (warnings) warnings.Add(e.Message); };
        return warnings;
    }
}

/// <summary>A fit's <c>Checkpoint</c> callback for tests: it keeps every copy, fails at the <paramref name="failAt"/>th (as a
/// full disk would) and hands the <paramref name="saveAt"/>th to <paramref name="save"/>.</summary>
internal sealed class CheckpointRecorder<T>(int failAt, Exception failure, int saveAt, Action<T> save)
{
    public List<T> Copies { get; } = new();

    public void Take(T copy)
    {
        Copies.Add(copy);
        if (Copies.Count == failAt) throw failure;
        if (Copies.Count == saveAt) save(copy);
    }
}
