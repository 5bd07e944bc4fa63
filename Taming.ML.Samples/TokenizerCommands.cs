using System.Diagnostics;
using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using Taming.ML.Data;
using Taming.ML.Evaluation;
using Taming.ML.MLNet;
using Taming.ML.Models;

namespace Taming.ML.Samples;

/// <summary>The tokenizer's commands: train-tokenizer and evaluate-tokenizer.</summary>
internal static class TokenizerCommands
{
    /// <summary>train-tokenizer --images &lt;idx|folder&gt; [--labels] --output &lt;zip&gt; [...].</summary>
    public static int Train(Arguments args)
    {
        string images = args.Required("images");
        string? labels = args.String("labels");
        string output = args.OutputFile();
        string? resume = args.String("resume");
        var curves = new TrainingCurves();
        var options = new VqganOptions
        {
            Resolution = args.Int("resolution") ?? 0,
            Channels = args.Int("channels") ?? 0, // 0: RGB for image folders; 1 reads them as luminance
            CodebookSize = args.Int("codebook-size") ?? 512,
            Steps = args.Int("steps") ?? 3000,
            BatchSize = args.Int("batch-size") ?? 0, // automatic: 32 up to 128×128, fewer for larger images
            ShufflePoolSize = args.Int("shuffle-pool") ?? 0, // 0: in memory where the images fit, else streamed
            Seed = args.Int("seed"),
            Device = args.String("device") ?? "cpu",
            Precision = args.Precision() ?? Precision.Float32,
            CudaGraphs = !args.Flag("eager-training"),
            Progress = p => { Console.WriteLine("  " + p); curves.Add(p); },
            StopToken = TrainingRun.StopOnCtrlC(),
        };
        options.DiscStart = args.Int("disc-start"); // default: at 60 % of the steps, once 1,000 are made
        // The network's shape (the defaults suit images of 32 to 64 pixels: 8×8 to 16×16 tokens).
        options.Ch = args.Int("ch") ?? options.Ch;
        options.ChMult = args.Ints("ch-mult") ?? options.ChMult;
        options.NumResBlocks = args.Int("res-blocks") ?? options.NumResBlocks;
        options.ZChannels = args.Int("z-channels") ?? options.ZChannels;
        options.EmbedDim = args.Int("embed-dim") ?? options.EmbedDim;
        var shape = new[] { "ch", "ch-mult", "res-blocks", "z-channels", "embed-dim" }.Where(o => args.String(o) != null).ToList();
        double? discWeight = args.Double("disc-weight");
        options.DiscWeight = discWeight ?? options.DiscWeight;
        int? discLayers = args.Int("disc-layers");
        options.LearningRate = args.Double("learning-rate") ?? options.LearningRate;
        options.RestartLearningRate = args.Flag("restart-learning-rate");
        options.PerceptualWeight = args.Double("perceptual-weight") ?? options.PerceptualWeight;
        if (args.Double("minutes") is { } minutes) options.TimeBudget = TimeSpan.FromMinutes(minutes);
        if (args.Double("checkpoint-minutes") is { } every) options.CheckpointInterval = TimeSpan.FromMinutes(every);
        bool crops = args.Int("random-crops") is not null;
        if (crops) options.MidAttention = args.Flag("mid-attention"); // fully convolutional by default, so that whole images decode as crops do

        var ml = new MLContext(seed: options.Seed ?? 1).ShowTrainingSetup();
        // --resume: continue a saved tokenizer (its shape, codebook and weights) on these images.
        var resumed = resume is null ? null : ml.Taming().LoadModel(resume, out _);
        var initial = resumed is null ? null : TamingCatalog.FindTokenizer(resumed);
        if (initial != null)
        {
            if (shape.Count > 0)
                throw new ArgumentException($"--{shape[0]} shapes a new network; --resume continues the saved one's: leave it out.");
            TrainingRun.RequireSame("resolution", args.Int("resolution"), initial.Resolution);
            TrainingRun.RequireSame("channels", args.Int("channels"), initial.Channels);
            TrainingRun.RequireSame("codebook-size", args.Int("codebook-size"), initial.CodebookSize);
            (options.Resolution, options.Channels, options.CodebookSize) = (initial.Resolution, initial.Channels, initial.CodebookSize);
            Console.WriteLine($"  Continuing {resume}: {initial.Resolution}×{initial.Resolution}, {initial.CodebookSize} codes, " +
                              $"{initial.TrainedSteps:N0} steps trained ({initial.GanSteps:N0} with the GAN){TrainingRun.EndRate(initial.FinalLearningRate, options.RestartLearningRate)}.");
        }
        bool idx = DataSources.IsIdx(images);
        if (idx) options.Channels = 1;
        // Folders of images of any size: resize to the resolution (64, or less for smaller images, unless given) as an ML.NET stage.
        int side = options.Resolution > 0 ? options.Resolution : idx ? 32 : crops ? 32 : 64;
        // --holdout: the rows left out, which every progress report reconstructs (the validation loss and curve).
        var (data, heldOut) = DataSources.LoadSplit(ml, args, images, labels, side);
        args.RejectUnknown();
        if (options.Resolution == 0)
        {
            // IDX digits come padded to the side, crops are cut at it; a folder's images are resized to what suits them.
            options.Resolution = idx || crops ? side : DataSources.FolderResolution(data, images);
            if (!idx && !crops && options.Resolution < 64)
                Console.WriteLine($"  Resolution {options.Resolution}: the images' median shorter side, below the default 64 (--resolution sets it).");
        }
        // Small images leave a two-layer discriminator no patch: fewer layers, unless --disc-layers says otherwise, and
        // under 6 pixels no GAN at all, unless --disc-weight asks for one.
        int fitting = VqganOptions.MaxDiscLayers(options.Resolution);
        options.DiscLayers = discLayers ?? Math.Clamp(fitting, 1, options.DiscLayers);
        if (fitting == 0 && discWeight is null)
        {
            options.DiscWeight = 0;
            Console.WriteLine($"  No GAN: {options.Resolution}-pixel images are too small for its discriminator.");
        }
        // The stages before the tokenizer prepare the images: a resumed model's own, else a resize to the resolution.
        var resize = idx || crops ? null : ml.Transforms.CropAndResizeImages("Image", options.Resolution, options.Resolution, "Image");
        var before = resumed != null ? TrainingRun.StagesBefore<VqganTokenizerTransformer>(resumed)
            : resize is null ? Array.Empty<ITransformer>() : new ITransformer[] { resize.Fit(data) };
        var prepare = new TransformerChain<ITransformer>(before);
        options.ValidationSet = heldOut is null ? null : prepare.Transform(heldOut); // as the tokenizer sees its images
        // ML.NET cannot store an input schema of image columns only.
        var schema = data.Schema.Any(c => c.Type is not ImageDataViewType) ? data.Schema : null;
        ITransformer Model(VqganTokenizerTransformer tokenizer) => new TransformerChain<ITransformer>(before.Append(tokenizer).ToArray());
        int? total = TrainingRun.TotalSteps(options.Steps, options.TimeBudget, initial?.TrainedSteps ?? 0);
        options.Checkpoint = t => TrainingRun.SaveCheckpoint(ml, Model(t), schema, output, t.TrainedSteps, total);
        var estimator = ml.Transforms.TokenizeImages("Tokens", "Image", options);
        var prepared = prepare.Transform(data);
        var trained = initial is null ? estimator.Fit(prepared) : estimator.Fit(prepared, initial);
        TrainingRun.Save(ml, Model(trained), schema, output);
        Console.WriteLine($"Saved the tokenizer to {output} ({trained.TrainedSteps:N0} steps trained, {trained.GanSteps:N0} with the GAN).");
        TrainingRun.SaveCurves(curves, output);
        return 0;
    }

    /// <summary>evaluate-tokenizer --model &lt;zip&gt; --images &lt;...&gt; [--labels] [--json] [--grid png] [--image-size WxH].</summary>
    public static int Evaluate(Arguments args)
    {
        string modelPath = args.Required("model");
        string images = args.Required("images");
        string? labels = args.String("labels");
        bool json = args.Flag("json");
        string grid = args.String("grid") ?? Path.Combine("out", "reconstructions.png");

        var imageSize = args.Size("image-size");

        var ml = new MLContext(seed: 1);
        var model = ml.Taming().LoadModel(modelPath, out _);
        var tokenizer = TamingCatalog.FindTokenizer(model);
        var data = DataSources.Load(ml, args, images, labels, tokenizer.Resolution, heldOut: true, cover: imageSize);
        args.RejectUnknown();
        ReconstructionMetrics metrics;
        if (imageSize is var (width, height))
        {
            // --image-size: the images resized to that size and reconstructed whole, as a crop-trained tokenizer reads photos.
            var whole = ml.Transforms.CropAndResizeImages("Image", width, height)
                .Append(ml.Transforms.TokenizeWholeImages(tokenizer.OutputColumnName, "Image", tokenizer)).Fit(data);
            metrics = ml.Taming().EvaluateReconstruction(whole.Transform(data), whole.LastTransformer, "Image", grid, gridImages: 16);
        }
        else
        {
            // Everything in the saved chain before the tokenizer (e.g. CropAndResizeImages) applies to the evaluation images too.
            var prepared = new TransformerChain<ITransformer>(TrainingRun.StagesBefore<VqganTokenizerTransformer>(model)).Transform(data);
            metrics = ml.Taming().EvaluateReconstruction(prepared, tokenizer, tokenizer.InputColumnName, grid, gridImages: 64);
        }
        Console.WriteLine(metrics);
        Console.WriteLine($"Reconstruction grid: {grid}");
        if (json) Console.WriteLine(JsonSerializer.Serialize(metrics));
        return 0;
    }

}
