using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.Runtime;
using TorchSharp;
using Taming.ML.Native;
using static TorchSharp.torch;

namespace Taming.ML.MLNet;

/// <summary>
/// How Taming.ML's transformers are stored inside an ML.NET model zip: a few header strings (column names,
/// options as JSON) in the transformer's own entry, and the TorchSharp weights as a binary entry beside it.
/// </summary>
internal static class ModelFile
{
    /// <summary>A Taming.ML model entry with the given 8-character signature: written at <paramref name="current"/>
    /// (default 1.1), read back from 1.1 on.</summary>
    public static VersionInfo Version(string modelSignature, string loaderSignature, uint current = 0x00010001) => new(
        modelSignature: modelSignature,
        verWrittenCur: current,
        verReadableCur: current,
        verWeCanReadBack: 0x00010001,
        loaderSignature: loaderSignature,
        loaderAssemblyName: typeof(ModelFile).Assembly.FullName);

    public static void Save(ModelSaveContext ctx, VersionInfo version, IEnumerable<string> header, string weightsEntry, nn.Module module)
    {
        ctx.SetVersionInfo(version);
        foreach (var s in header) ctx.Writer.Write(s);
        ctx.SaveBinaryStream(weightsEntry, w => module.save(w));
    }

    public static string Json<T>(T value) => JsonSerializer.Serialize(value);

    /// <summary>Reads <paramref name="count"/> header strings, failing with a clear message when they are cut short.</summary>
    public static string[] LoadHeader(ModelLoadContext ctx, VersionInfo version, int count)
    {
        ctx.CheckAtModel(version);
        try { return Enumerable.Range(0, count).Select(_ => ctx.Reader.ReadString()).ToArray(); }
        catch (EndOfStreamException e) { throw new InvalidDataException("The model file's settings are cut short: " + e.Message, e); }
    }

    /// <summary>Parses a JSON header, failing with a clear message when it is corrupt.</summary>
    public static T FromJson<T>(string json, string what)
    {
        try { return JsonSerializer.Deserialize<T>(json) ?? throw new JsonException("empty"); }
        catch (JsonException e) { throw new InvalidDataException($"The model file's {what} are corrupt: {e.Message}", e); }
    }

    /// <summary>Whether the (already parsed) settings JSON names <paramref name="property"/>: tells options added later from their defaults.</summary>
    public static bool HasProperty(string json, string property)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.TryGetProperty(property, out _);
    }

    /// <summary>Fills <paramref name="module"/> from the weights entry, in eval mode.</summary>
    public static void LoadWeights(ModelLoadContext ctx, string weightsEntry, nn.Module module, string what)
    {
        TorchRuntime.EnsureLoaded();
        bool found;
        try { found = ctx.TryLoadBinaryStream(weightsEntry, r => module.load(r)); }
        catch (Exception e) { throw new InvalidDataException($"The model file's {what} weights are corrupt or do not match its options: {e.Message}", e); }
        if (!found) throw new InvalidDataException($"The model file has no '{weightsEntry}' entry: it was not saved by Taming.ML or is damaged.");
        module.eval();
    }

    /// <summary>Moves the module to <paramref name="deviceName"/>, or keeps it on the CPU where that device is missing.</summary>
    public static Device Place(IHostEnvironment env, nn.Module module, string deviceName)
    {
        Device device;
        try { device = TorchRuntime.ResolveDevice(deviceName); }
        catch (InvalidOperationException e) when (deviceName != "cpu")
        {
            using var ch = env.Start("Load");
            ch.Warning($"The model was trained on '{deviceName}', which is not available here; using the CPU. ({e.Message})");
            device = CPU;
        }
        module.to(device);
        return device;
    }
}
