using Microsoft.ML;
using Microsoft.ML.Runtime;
using Taming.ML.Models;
using static TorchSharp.torch;

namespace Taming.ML.MLNet;

/// <summary>A transformer holding a prior in a model zip: column names, the GPT's options and layout, its weights.</summary>
internal static class PriorModelFile
{
    private const string WeightsEntry = "GptWeights";

    /// <summary>Column names may be null (stored as empty strings).</summary>
    public static void Save(ModelSaveContext ctx, VersionInfo version, Gpt model, IEnumerable<string?> columns, IEnumerable<string> extra) =>
        ModelFile.Save(ctx, version,
            columns.Select(c => c ?? "").Concat(extra).Append(ModelFile.Json(model.Options)).Append(ModelFile.Json(model.Layout)),
            WeightsEntry, model);

    public static (Gpt Model, Device Device, string?[] Columns, string[] Extra) Load(IHostEnvironment env, ModelLoadContext ctx,
        VersionInfo version, int columnCount, int extraCount)
    {
        var header = ModelFile.LoadHeader(ctx, version, columnCount + extraCount + 2);
        var options = ModelFile.FromJson<GptOptions>(header[^2], "prior settings");
        var layout = ModelFile.FromJson<PriorLayout>(header[^1], "prior layout");
        var model = new Gpt(options, layout);
        ModelFile.LoadWeights(ctx, WeightsEntry, model, "prior");
        var columns = header[..columnCount].Select(c => c.Length == 0 ? null : c).ToArray();
        return (model, ModelFile.Place(env, model, options.Device), columns, header[columnCount..^2]);
    }
}
