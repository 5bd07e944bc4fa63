using System.Buffers.Binary;
using System.IO.Compression;

namespace Taming.ML.Data;

/// <summary>
/// Reads the IDX format of MNIST-style data sets (plain or gzip-compressed): magic 2051 for images
/// (count, rows, columns, then bytes), 2049 for labels (count, then bytes).
/// </summary>
public static class IdxFile
{
    /// <summary>Images as one byte array per image (rows·columns, row-major).</summary>
    public static (byte[][] Images, int Rows, int Columns) ReadImages(string path)
    {
        var bytes = ReadAll(path);
        var header = Header(bytes, path, magic: 2051, dims: 3);
        int n = header[0], rows = header[1], cols = header[2];
        long needed = 16L + (long)n * rows * cols;
        if (bytes.Length < needed)
            throw new InvalidDataException($"IDX image file '{path}' is truncated: the header promises {n} images of {rows}×{cols}, the file has {bytes.Length} bytes.");
        var images = new byte[n][];
        for (int i = 0; i < n; i++) images[i] = bytes.AsSpan(16 + i * rows * cols, rows * cols).ToArray();
        return (images, rows, cols);
    }

    /// <summary>Labels, one byte each.</summary>
    public static byte[] ReadLabels(string path)
    {
        var bytes = ReadAll(path);
        int n = Header(bytes, path, magic: 2049, dims: 1)[0];
        if (bytes.Length < 8L + n)
            throw new InvalidDataException($"IDX label file '{path}' is truncated: the header promises {n} labels, the file has {bytes.Length} bytes.");
        return bytes.AsSpan(8, n).ToArray();
    }

    private static int[] Header(byte[] bytes, string path, int magic, int dims)
    {
        if (bytes.Length < 4) throw new InvalidDataException($"'{path}' is too short to be an IDX file.");
        int found = BinaryPrimitives.ReadInt32BigEndian(bytes);
        if (found != magic)
        {
            string kind = magic == 2051 ? "images" : "labels";
            throw new InvalidDataException($"'{path}' is not an IDX {kind} file: magic number {found}, expected {magic}.");
        }
        if (bytes.Length < 4 + 4 * dims) throw new InvalidDataException($"'{path}' is too short for its IDX header.");
        var header = new int[dims];
        for (int d = 0; d < dims; d++)
        {
            header[d] = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(4 + 4 * d));
            if (header[d] < 0) throw new InvalidDataException($"'{path}': negative dimension in the IDX header.");
        }
        return header;
    }

    private static byte[] ReadAll(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"IDX file not found: '{path}'.", path);
        using var file = File.OpenRead(path);
        bool gzip = file.Length >= 2 && file.ReadByte() == 0x1f && file.ReadByte() == 0x8b;
        file.Position = 0;
        using var stream = gzip ? new GZipStream(file, CompressionMode.Decompress) : (Stream)file;
        using var memory = new MemoryStream();
        try { stream.CopyTo(memory); }
        catch (InvalidDataException e) { throw new InvalidDataException($"'{path}' is a damaged gzip file: {e.Message}", e); }
        return memory.ToArray();
    }
}
