using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.Runtime;
using TorchSharp;
using Taming.ML.Models;
using Taming.ML.Native;

namespace Taming.ML.MLNet;

/// <summary>
/// How a transformer holding a VQGAN is stored inside an ML.NET model zip: its column names, the VQGAN's
/// options as JSON, and its weights as a binary entry.
/// </summary>
internal static class VqganModelFile
{
    private const string WeightsEntry = "VqganWeights";

    /// <summary>Version 1.1 of a Taming.ML model entry with the given 8-character signature.</summary>
    public static VersionInfo Version(string modelSignature, string loaderSignature) => new(
        modelSignature: modelSignature,
        verWrittenCur: 0x00010001,
        verReadableCur: 0x00010001,
        verWeCanReadBack: 0x00010001,
        loaderSignature: loaderSignature,
        loaderAssemblyName: typeof(VqganModelFile).Assembly.FullName);

    public static void Save(ModelSaveContext ctx, VersionInfo version, Vqgan model, params string[] columns)
    {
        ctx.SetVersionInfo(version);
        foreach (var c in columns) ctx.Writer.Write(c);
        ctx.Writer.Write(JsonSerializer.Serialize(model.Options));
        ctx.SaveBinaryStream(WeightsEntry, w => model.save(w));
    }

    /// <summary>Reads what <see cref="Save"/> wrote and places the model on its saved device (the CPU where that is missing).</summary>
    public static (Vqgan Model, torch.Device Device, string[] Columns) Load(IHostEnvironment env, ModelLoadContext ctx,
        VersionInfo version, int columnCount)
    {
        ctx.CheckAtModel(version);
        var columns = new string[columnCount];
        VqganOptions options;
        try
        {
            for (int i = 0; i < columnCount; i++) columns[i] = ctx.Reader.ReadString();
            options = JsonSerializer.Deserialize<VqganOptions>(ctx.Reader.ReadString())
                      ?? throw new InvalidDataException("empty options");
        }
        catch (Exception e) when (e is JsonException or EndOfStreamException or InvalidDataException)
        {
            throw new InvalidDataException("The model file's VQGAN settings are corrupt: " + e.Message, e);
        }
        TorchRuntime.EnsureLoaded();
        var model = new Vqgan(options);
        bool found;
        try { found = ctx.TryLoadBinaryStream(WeightsEntry, r => model.load(r)); }
        catch (Exception e)
        {
            throw new InvalidDataException("The model file's VQGAN weights are corrupt or do not match its options: " + e.Message, e);
        }
        if (!found) throw new InvalidDataException($"The model file has no '{WeightsEntry}' entry: it was not saved by Taming.ML or is damaged.");
        model.eval();
        return (model, PlaceOnSavedDevice(env, model), columns);
    }

    private static torch.Device PlaceOnSavedDevice(IHostEnvironment env, Vqgan model)
    {
        torch.Device device;
        try { device = TorchRuntime.ResolveDevice(model.Options.Device); }
        catch (InvalidOperationException e) when (model.Options.Device != "cpu")
        {
            using var ch = env.Start("Load");
            ch.Warning($"The model was trained on '{model.Options.Device}', which is not available here; using the CPU. ({e.Message})");
            device = torch.CPU;
        }
        model.to(device);
        return device;
    }
}
