using Microsoft.ML;
using Microsoft.ML.Runtime;
using Taming.ML.Models;
using static TorchSharp.torch;

namespace Taming.ML.MLNet;

/// <summary>A transformer holding a VQGAN in a model zip: column names, the VQGAN's options, its weights.</summary>
internal static class VqganModelFile
{
    private const string WeightsEntry = "VqganWeights";

    public static void Save(ModelSaveContext ctx, VersionInfo version, Vqgan model, params string[] columns) =>
        ModelFile.Save(ctx, version, columns.Append(ModelFile.Json(model.Options)), WeightsEntry, model);

    public static (Vqgan Model, Device Device, string[] Columns) Load(IHostEnvironment env, ModelLoadContext ctx,
        VersionInfo version, int columnCount)
    {
        var header = ModelFile.LoadHeader(ctx, version, columnCount + 1);
        var model = new Vqgan(ReadOptions(header[^1]));
        ModelFile.LoadWeights(ctx, WeightsEntry, model, "VQGAN");
        return (model, ModelFile.Place(env, model, model.Options.Device), header[..^1]);
    }

    /// <summary>The saved options; settings added since a model was saved take the values it was trained with.</summary>
    public static VqganOptions ReadOptions(string json)
    {
        var options = ModelFile.FromJson<VqganOptions>(json, "VQGAN settings");
        if (!ModelFile.HasProperty(json, nameof(VqganOptions.GroupNormMinChannels))) options.GroupNormMinChannels = 1;
        return options;
    }
}
