using System.Globalization;

namespace Taming.ML.Samples;

/// <summary>"--name value" and "--flag" command-line options, with typed getters that name the bad option.</summary>
internal sealed class Arguments
{
    private readonly Dictionary<string, string?> values = new(StringComparer.Ordinal);
    private readonly HashSet<string> read = new(StringComparer.Ordinal);

    public Arguments(IEnumerable<string> args)
    {
        string? pending = null;
        foreach (var a in args)
        {
            if (a.StartsWith("--", StringComparison.Ordinal))
            {
                if (pending != null) values[pending] = null;
                pending = a[2..];
            }
            else if (pending != null)
            {
                values[pending] = a;
                pending = null;
            }
            else throw new ArgumentException($"Unexpected argument '{a}'.");
        }
        if (pending != null) values[pending] = null;
    }

    public string? String(string name)
    {
        read.Add(name);
        return values.TryGetValue(name, out var v) ? v ?? throw new ArgumentException($"--{name} needs a value.") : null;
    }

    public string Required(string name) => String(name) ?? throw new ArgumentException($"--{name} is required.");

    /// <summary>A required output file whose folder is created now, so that a long training run cannot fail at its end on a missing folder.</summary>
    public string OutputFile(string name = "output")
    {
        string path = Required(name);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        return path;
    }

    public bool Flag(string name)
    {
        read.Add(name);
        return values.ContainsKey(name);
    }

    /// <summary>An integer option: a count or size, so at least 1, except seeds (any), and --skip and --top-k (0 or more).</summary>
    public int? Int(string name)
    {
        if (String(name) is not { } s) return null;
        if (!int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v)) throw new ArgumentException($"--{name}: '{s}' is not an integer.");
        int least = name.EndsWith("seed", StringComparison.Ordinal) ? int.MinValue : name is "skip" or "top-k" ? 0 : 1;
        if (v < least) throw new ArgumentException($"--{name} must be {(least == 0 ? "0 or more" : "at least 1")}; got {v}.");
        return v;
    }

    /// <summary>A list of integers, each at least 1: "1,2,2".</summary>
    public int[]? Ints(string name)
    {
        if (String(name) is not { } s) return null;
        var parts = s.Split(',', StringSplitOptions.TrimEntries);
        var values = parts.Select(p => int.TryParse(p, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v >= 1 ? v : 0).ToArray();
        return values.All(v => v >= 1) ? values : throw new ArgumentException($"--{name}: '{s}' is not a list of positive integers (e.g. 1,2,2).");
    }

    public double? Double(string name) => String(name) is { } s
        ? double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : throw new ArgumentException($"--{name}: '{s}' is not a number.")
        : null;

    /// <summary>A size option "WxH" (e.g. --image-size 256x160) as (width, height).</summary>
    public (int Width, int Height)? Size(string name)
    {
        if (String(name) is not { } size) return null;
        var parts = size.Split('x', 'X', '×');
        return parts.Length == 2 && int.TryParse(parts[0], out int w) && int.TryParse(parts[1], out int h) && w > 0 && h > 0
            ? (w, h)
            : throw new ArgumentException($"--{name}: '{size}' is not WIDTHxHEIGHT (e.g. 256x160).");
    }

    /// <summary>--precision float32|tf32|bf16 (also the enum's own names).</summary>
    public Models.Precision? Precision(string name = "precision") => String(name) is { } s ? ParsePrecision(s, name) : null;

    public static Models.Precision ParsePrecision(string value, string name) => value.ToLowerInvariant() switch
    {
        "float32" or "fp32" => Models.Precision.Float32,
        "tf32" or "tensorfloat32" => Models.Precision.TensorFloat32,
        "bf16" or "bfloat16" => Models.Precision.BFloat16,
        _ => throw new ArgumentException($"--{name}: '{value}' is not one of float32, tf32, bf16."),
    };

    /// <summary>Fails on options that no getter asked for (typos).</summary>
    public void RejectUnknown()
    {
        var unknown = values.Keys.Where(k => !read.Contains(k)).ToList();
        if (unknown.Count > 0) throw new ArgumentException("Unknown option(s): " + string.Join(", ", unknown.Select(u => "--" + u)));
    }
}
