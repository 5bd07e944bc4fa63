using System.Text.Json;
using Microsoft.ML;
using TorchSharp;
using Taming.ML.Models;
using Taming.ML.Native;

namespace Taming.ML.MLNet;

/// <summary>How a VQGAN is stored inside an ML.NET model zip: its options as JSON, its weights as a binary entry.</summary>
internal static class VqganModelFile
{
    private const string WeightsEntry = "VqganWeights";

    public static void Save(ModelSaveContext ctx, Vqgan model)
    {
        ctx.Writer.Write(JsonSerializer.Serialize(model.Options));
        ctx.SaveBinaryStream(WeightsEntry, w => model.save(w));
    }

    public static Vqgan Load(ModelLoadContext ctx)
    {
        VqganOptions options;
        try
        {
            options = JsonSerializer.Deserialize<VqganOptions>(ctx.Reader.ReadString())
                      ?? throw new InvalidDataException("empty options");
        }
        catch (Exception e) when (e is JsonException or EndOfStreamException or InvalidDataException)
        {
            throw new InvalidDataException("The model file's VQGAN options are corrupt: " + e.Message, e);
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
        return model;
    }

    /// <summary>Moves the model to its saved device, or keeps it on the CPU where that device is missing.</summary>
    public static TorchSharp.torch.Device PlaceOnSavedDevice(Vqgan model, Action<string> warn)
    {
        TorchSharp.torch.Device device;
        try { device = TorchRuntime.ResolveDevice(model.Options.Device); }
        catch (InvalidOperationException e) when (model.Options.Device != "cpu")
        {
            warn($"The model was trained on '{model.Options.Device}', which is not available here; using the CPU. ({e.Message})");
            device = TorchSharp.torch.CPU;
        }
        model.to(device);
        return device;
    }
}
