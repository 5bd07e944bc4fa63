using System.Diagnostics;
using TorchSharp;
using Microsoft.ML;
using Microsoft.ML.Data;
using Taming.ML.Data;
using Taming.ML.Evaluation;
using Taming.ML.MLNet;
using Taming.ML.Models;
using Taming.ML.Sampling;

namespace Taming.ML.Samples;

/// <summary>The prior's commands: train-prior, generate and benchmark-sampling.</summary>
internal static class PriorCommands
{
    /// <summary>
    /// train-prior --tokenizer &lt;zip&gt; --images &lt;...&gt; [--labels] --output &lt;zip&gt; [...]; with --image-size WxH the
    /// images are resized to that size and tokenized whole, and --window N fits the prior on N×N windows of
    /// their token grids (high-resolution generation).
    /// </summary>
    public static int Train(Arguments args)
    {
        string tokenizerPath = args.Required("tokenizer");
        string images = args.Required("images");
        string? labels = args.String("labels");
        string output = args.OutputFile();
        bool unconditional = args.Flag("unconditional");
        string? resume = args.String("resume");
        var curves = new TrainingCurves();
        var options = new GptOptions { Progress = p => { Console.WriteLine("  " + p); curves.Add(p); }, StopToken = TrainingRun.StopOnCtrlC() };
        options.Layers = args.Int("layers") ?? options.Layers;
        options.Heads = args.Int("heads") ?? options.Heads;
        options.Width = args.Int("width") ?? options.Width;
        options.Steps = args.Int("steps") ?? options.Steps;
        options.BatchSize = args.Int("batch-size") ?? options.BatchSize;
        options.LearningRate = args.Double("learning-rate") ?? options.LearningRate;
        options.RestartLearningRate = args.Flag("restart-learning-rate");
        options.Dropout = args.Double("dropout") ?? options.Dropout;
        options.PKeep = args.Double("pkeep") ?? options.PKeep;
        options.Seed = args.Int("seed");
        options.Device = args.String("device") ?? options.Device;
        options.Precision = args.Precision() ?? options.Precision;
        options.Window = args.Int("window") ?? options.Window;
        options.CudaGraphs = !args.Flag("eager-training");
        if (args.Double("minutes") is { } minutes) options.TimeBudget = TimeSpan.FromMinutes(minutes);
        if (args.Double("checkpoint-minutes") is { } every) options.CheckpointInterval = TimeSpan.FromMinutes(every);
        var imageSize = args.Size("image-size");

        var ml = new MLContext(seed: options.Seed ?? 1).ShowTrainingSetup();
        // --resume: continue a saved prior (its shape, conditioning and weights) on these images' tokens.
        var initial = resume is null ? null : TamingCatalog.FindPrior(ml.Taming().LoadModel(resume, out _));
        if (initial != null)
        {
            var shape = initial.Model.Options;
            TrainingRun.RequireSame("layers", args.Int("layers"), shape.Layers);
            TrainingRun.RequireSame("heads", args.Int("heads"), shape.Heads);
            TrainingRun.RequireSame("width", args.Int("width"), shape.Width);
            TrainingRun.RequireSame("window", args.Int("window"), shape.Window);
            (options.Layers, options.Heads, options.Width, options.Window) = (shape.Layers, shape.Heads, shape.Width, shape.Window);
            unconditional = initial.Layout.Conditioning == Conditioning.None;
            Console.WriteLine($"  Continuing {resume}: a {initial.Layout.Conditioning.ToString().ToLowerInvariant()}-conditioned prior, " +
                              $"{shape.Layers} layers × {shape.Width} wide, {initial.TrainedSteps:N0} steps trained{TrainingRun.EndRate(initial.FinalLearningRate, options.RestartLearningRate)}.");
        }
        var tokenizerModel = ml.Taming().LoadModel(tokenizerPath, out _);
        var tokenizer = TamingCatalog.FindTokenizer(tokenizerModel);
        // --holdout: the rows left out, whose loss every progress report gives (and early stopping follows).
        var (data, heldOut) = DataSources.LoadSplit(ml, args, images, labels, tokenizer.Resolution, cover: imageSize);
        args.RejectUnknown();
        var tokenize = imageSize is var (width, height)
            ? ml.Transforms.CropAndResizeImages("Image", width, height, "Image")
                .Append(ml.Transforms.TokenizeWholeImages(tokenizer.OutputColumnName, "Image", tokenizer)).Fit(data)
            : tokenizerModel;
        var tokens = tokenize.Transform(data);
        options.ValidationSet = heldOut is null ? null : tokenize.Transform(heldOut);
        // Class-conditional when the data has labels of at least two classes.
        bool classes = !unconditional && tokens.Schema.GetColumnOrNull("Label") is { Type: KeyDataViewType { Count: > 1 } };
        int? total = TrainingRun.TotalSteps(options.Steps, options.TimeBudget, initial?.TrainedSteps ?? 0);
        options.Checkpoint = p => TrainingRun.SaveCheckpoint(ml, p, tokens.Schema, output, p.TrainedSteps, total);
        var estimator = ml.Transforms.FitPrior(tokenizer.OutputColumnName, classes ? "Label" : null, options: options);
        var prior = initial is null ? estimator.Fit(tokens) : estimator.Fit(tokens, initial);
        TrainingRun.Save(ml, prior, tokens.Schema, output);
        var kind = prior.Layout.Conditioning == Conditioning.None ? "unconditional" : prior.Layout.Conditioning.ToString().ToLowerInvariant() + "-conditioned";
        Console.WriteLine($"Saved the {kind} prior to {output}" + (prior.Layout.ClassNames is { } classNames ? $" (classes {string.Join(", ", classNames)})." : "."));
        TrainingRun.SaveCurves(curves, output);
        return 0;
    }

    /// <summary>--label: one of the prior's class names (an image folder's sub-folder), or a class index.</summary>
    private static int ClassIndex(PriorLayout layout, string label)
    {
        if (layout.ClassNames is { } names && names.ToList().IndexOf(label) is >= 0 and var named) return named;
        if (int.TryParse(label, out int k) && k >= 0 && k < layout.ClassCount) return k;
        throw new ArgumentException($"--label {label} is not one of the prior's classes: " + (layout.ClassNames is { } all
            ? string.Join(", ", all) + $" (or an index 0 … {layout.ClassCount - 1})."
            : $"0 … {layout.ClassCount - 1}."));
    }

    /// <summary>generate --tokenizer &lt;zip&gt; --prior &lt;zip&gt; [--label k | --all-labels] [--count N] [...] --output &lt;png&gt;.</summary>
    public static int Generate(Arguments args)
    {
        string tokenizerPath = args.Required("tokenizer");
        string priorPath = args.Required("prior");
        string output = args.OutputFile();
        string? labelOption = args.String("label");
        bool allLabels = args.Flag("all-labels");
        int count = args.Int("count") ?? 10;
        var sampling = SamplingFrom(args);
        string? conditionPath = args.String("condition"), conditionTokenizerPath = args.String("condition-tokenizer");
        args.RejectUnknown();

        var ml = new MLContext(seed: 1);
        var tokenizer = TamingCatalog.FindTokenizer(ml.Taming().LoadModel(tokenizerPath, out _));
        var prior = TamingCatalog.FindPrior(ml.Taming().LoadModel(priorPath, out _));
        var layout = prior.Layout;
        if (layout.Conditioning == Conditioning.Image)
            return GenerateFromCondition(ml, tokenizer, prior, conditionPath ?? throw new ArgumentException("This prior is conditioned on images: give --condition <image> and --condition-tokenizer <zip>."),
                conditionTokenizerPath ?? throw new ArgumentException("--condition needs --condition-tokenizer <zip>, the tokenizer the prior's conditions came from."),
                count, sampling, output);
        if (conditionPath != null) throw new ArgumentException("--condition needs an image-conditioned prior; this one is " + layout.Conditioning.ToString().ToLowerInvariant() + ".");
        bool classes = layout.Conditioning == Conditioning.Class;
        if (!classes && (labelOption != null || allLabels)) throw new ArgumentException("--label/--all-labels need a class-conditional prior; this one is unconditional.");
        if (classes && labelOption == null && !allLabels) allLabels = true;
        int? label = labelOption is null ? null : ClassIndex(layout, labelOption);
        var wanted = !classes ? Enumerable.Repeat(0, count)
            : allLabels ? Enumerable.Range(0, layout.ClassCount).SelectMany(c => Enumerable.Repeat(c, count))
            : Enumerable.Repeat(label!.Value, count);
        var rows = ml.Data.LoadFromEnumerable(wanted.Select(c => new LabelRow { Label = c }).ToList());

        // Labels in, images out: two pipeline stages.
        var clock = Stopwatch.StartNew();
        var pipeline = ml.Transforms.GenerateTokens("Generated", prior, labelColumnName: classes ? "Label" : null, options: sampling)
            .Append(ml.Transforms.DecodeTokens("GeneratedImage", "Generated", tokenizer));
        var generated = pipeline.Fit(rows).Transform(rows);
        var images = ImagePixels.ReadColumns(generated, tokenizer.Channels, "GeneratedImage").Select(r => r[0]).ToList();
        var column = generated.Schema["GeneratedImage"];
        int perRow = classes ? count : (int)Math.Ceiling(Math.Sqrt(images.Count));
        var grid = images.Chunk(perRow).Select(r => (IReadOnlyList<byte[]>)r).ToList();
        var size = (Microsoft.ML.Transforms.Image.ImageDataViewType)column.Type;
        ImageGrid.SavePng(output, grid, tokenizer.Channels, size.Height, size.Width, scale: Math.Max(1, 64 / Math.Min(size.Height, size.Width)));
        string rowsAre = !classes ? "" : allLabels ? " (one row per class" + (layout.ClassNames is { } names ? ": " + string.Join(", ", names) : "") + ")"
            : layout.ClassNames is { } all ? $" (class {all[label!.Value]})" : "";
        Console.WriteLine($"{images.Count} samples in {clock.Elapsed.TotalSeconds:F1} s → {output}{rowsAre}");
        return 0;
    }

    /// <summary>
    /// Image-conditioned generation, as one pipeline: the condition image (sides rounded down to whole tokens) is
    /// tokenized whole by the condition tokenizer; the output canvas has the same token grid, sampled with the sliding
    /// window, and decoded by the image tokenizer.
    /// </summary>
    private static int GenerateFromCondition(MLContext ml, VqganTokenizerTransformer tokenizer, PriorTransformer prior,
        string conditionPath, string conditionTokenizerPath, int count, SamplingOptions sampling, string output)
    {
        var conditionTokenizer = TamingCatalog.FindTokenizer(ml.Taming().LoadModel(conditionTokenizerPath, out _));
        int f = conditionTokenizer.DownsamplingFactor;
        if (tokenizer.DownsamplingFactor != f)
            throw new ArgumentException("The image and condition tokenizers must shrink images by the same factor, so that their token grids align.");
        int h, w;
        using (var original = MLImage.CreateFromFile(conditionPath))
            (h, w) = (original.Height / f * f, original.Width / f * f);
        (sampling.HeightTokens, sampling.WidthTokens) = (h / f, w / f);
        var rows = ml.Data.LoadFromEnumerable(Enumerable.Repeat(new PathRow { Path = Path.GetFullPath(conditionPath) }, count).ToList());
        var clock = Stopwatch.StartNew();
        var pipeline = ml.Transforms.LoadImages("Condition", null, "Path")
            .Append(ml.Transforms.CropAndResizeImages("Condition", w, h, "Condition"))
            .Append(ml.Transforms.TokenizeWholeImages("ConditionTokens", "Condition", conditionTokenizer))
            .Append(ml.Transforms.GenerateTokens("Generated", prior, conditionColumnName: "ConditionTokens", options: sampling))
            .Append(ml.Transforms.DecodeTokens("GeneratedImage", "Generated", tokenizer));
        var pictures = ImagePixels.ReadColumns(pipeline.Fit(rows).Transform(rows), tokenizer.Channels, "Condition", "GeneratedImage");
        ImageGrid.SavePng(output, pictures.Select(p => (IReadOnlyList<byte[]>)p).ToList(), tokenizer.Channels, h, w);
        Console.WriteLine($"{count} canvases of {h / f}×{w / f} tokens in {clock.Elapsed.TotalSeconds:F1} s → {output} (condition | generated)");
        return 0;
    }

    private sealed class PathRow
    {
        public string Path { get; set; } = "";
    }

    /// <summary>
    /// evaluate-generation --tokenizer &lt;zip&gt; --prior &lt;zip&gt; [--images idx --labels idx] [--count N per class]
    /// [sampling options] [--json]: class consistency of class-conditional samples, judged by a CNN trained on the
    /// real labelled images (the embedded MNIST by default).
    /// </summary>
    public static int EvaluateGeneration(Arguments args)
    {
        string tokenizerPath = args.Required("tokenizer");
        string priorPath = args.Required("prior");
        string images = args.String("images") ?? DataSources.EmbeddedMnistImages;
        string labels = args.String("labels") ?? DataSources.EmbeddedMnistLabels;
        int count = args.Int("count") ?? 50;
        bool json = args.Flag("json");
        string device = args.String("device") ?? "cpu";
        var sampling = SamplingFrom(args);
        args.RejectUnknown();

        var ml = new MLContext(seed: 1);
        var tokenizer = TamingCatalog.FindTokenizer(ml.Taming().LoadModel(tokenizerPath, out _));
        var prior = TamingCatalog.FindPrior(ml.Taming().LoadModel(priorPath, out _));
        if (prior.Layout.Conditioning != Conditioning.Class) throw new ArgumentException("Class consistency needs a class-conditional prior.");
        var real = DataSources.Load(ml, images, labels, tokenizer.Resolution, (tokenizer.Resolution, tokenizer.Resolution));
        IDataView training, heldOut;
        if (DataSources.IsIdx(images))
        {
            // The last tenth, which the sample's MNIST commands hold out of the tokenizer's and the prior's training (--take 9000).
            int rows = (int)(real.GetRowCount() ?? 0);
            (training, heldOut) = (ml.Data.TakeRows(real, rows * 9 / 10), ml.Data.SkipRows(real, rows * 9 / 10));
        }
        else
        {
            // A folder is sorted by class: a random tenth of it, resized as the tokenizer's images were.
            real = ml.Transforms.CropAndResizeImages("Image", tokenizer.Resolution, tokenizer.Resolution).Fit(real).Transform(real);
            (training, heldOut) = DataSources.Split(ml, real, 0.1);
        }
        var classifier = ml.Taming().TrainImageClassifier(training, channels: tokenizer.Channels, epochs: 6, device: device);
        var accuracy = ml.Taming().EvaluateClassification(heldOut, classifier);
        var wanted = ml.Data.LoadFromEnumerable(Enumerable.Range(0, prior.Layout.ClassCount * count)
            .Select(i => new LabelRow { Label = i % prior.Layout.ClassCount }).ToList());
        // Sampled once (ML.NET caches the token column, not image columns), decoded for each judge.
        var tokens = ml.Data.Cache(ml.Transforms.GenerateTokens("Generated", prior, labelColumnName: "Label", options: sampling).Fit(wanted).Transform(wanted));
        var generated = ml.Transforms.DecodeTokens("GeneratedImage", "Generated", tokenizer).Fit(tokens).Transform(tokens);
        var metrics = ml.Taming().EvaluateGeneration(generated, heldOut, "GeneratedImage", classifier: classifier, device: device);
        // The same distance between as many real training images and the held-out ones: the floor at this sample size.
        var floor = ml.Taming().EvaluateGeneration(ml.Data.TakeRows(training, metrics.Count), heldOut, device: device);
        Console.WriteLine($"Classifier on held-out real images: {accuracy}");
        Console.WriteLine($"Generated (top-k {sampling.TopK}, top-p {sampling.TopP}, temperature {sampling.Temperature}): {metrics}");
        Console.WriteLine($"Real training images against the same held-out set: FID {floor.Fid:F2}  KID {floor.Kid:F4} ({floor.Count} vs {floor.RealCount})");
        if (json)
            Console.WriteLine(System.Text.Json.JsonSerializer.Serialize(new
            {
                ClassifierAccuracy = accuracy.Accuracy, metrics.Fid, RealFid = floor.Fid, metrics.Kid, RealKid = floor.Kid, ClassConsistency = metrics.ClassConsistency!.Accuracy,
                metrics.ClassConsistency.PerClass,
            }));
        return 0;
    }

    private static SamplingOptions SamplingFrom(Arguments args)
    {
        var sampling = new SamplingOptions();
        sampling.Temperature = args.Double("temperature") ?? sampling.Temperature;
        sampling.TopK = args.Int("top-k") ?? sampling.TopK;
        sampling.TopP = args.Double("top-p") ?? sampling.TopP;
        sampling.Seed = args.Int("seed") ?? sampling.Seed;
        sampling.HeightTokens = args.Int("height-tokens") ?? 0;
        sampling.WidthTokens = args.Int("width-tokens") ?? 0;
        if (args.String("window-mode") is { } mode) sampling.WindowMode = Enum.Parse<WindowMode>(mode, ignoreCase: true);
        sampling.Progress = p => Console.WriteLine("  " + p); // large canvases take minutes
        return sampling;
    }

    /// <summary>
    /// benchmark-windowed [--prior zip | --window N [--layers L] [--width C] [--heads H] [--codes K]] [--height-tokens H]
    /// [--width-tokens W] [--count N] [--repeats R] [--device D]: the reference's per-token full-window loop against
    /// the exact and strided modes on the same canvases and draws. --window times an untrained prior of that window
    /// (speed does not depend on the weights), e.g. the reference's 16×16.
    /// </summary>
    public static int BenchmarkWindowed(Arguments args)
    {
        int count = args.Int("count") ?? 4, repeats = args.Int("repeats") ?? 3;
        Gpt model;
        if (args.Int("window") is { } window)
        {
            var options = new GptOptions { Layers = args.Int("layers") ?? 4, Width = args.Int("width") ?? 128, Heads = args.Int("heads") ?? 4 };
            TorchSharp.torch.random.manual_seed(1);
            model = new Gpt(options, new PriorLayout(Conditioning.None, args.Int("codes") ?? 512, window, window));
        }
        else
        {
            string priorPath = args.String("prior") ?? Path.Combine("out", "mnist-prior.zip");
            model = TamingCatalog.FindPrior(new MLContext(seed: 1).Taming().LoadModel(priorPath, out _)).Model;
        }
        string device = args.String("device") ?? "cpu";
        var layout = model.Layout;
        int height = args.Int("height-tokens") ?? 2 * layout.GridHeight, width = args.Int("width-tokens") ?? 2 * layout.GridWidth;
        args.RejectUnknown();
        var torchDevice = Native.TorchRuntime.ResolveDevice(device);
        model.to(torchDevice);
        using var prefix = layout.Conditioning == Conditioning.Image ? null
            : TorchSharp.torch.tensor(Enumerable.Range(0, count).Select(i => (long)layout.CodebookSize + (layout.Conditioning == Conditioning.Class ? i % layout.ClassCount : 0)).ToArray(),
                new long[] { count, 1 }).to(torchDevice);
        using var condition = layout.Conditioning == Conditioning.Image ? TorchSharp.torch.zeros(new long[] { count, height, width }, TorchSharp.torch.ScalarType.Int64).to(torchDevice) : null;
        var seeds = Enumerable.Range(0, count).ToArray();
        var sampling = new SamplingOptions { TopK = 100 };
        (double Rate, long[] Tokens) Run(WindowMode mode)
        {
            double best = 0;
            long[] tokens = Array.Empty<long>();
            for (int r = 0; r < repeats; r++)
            {
                var clock = Stopwatch.StartNew();
                using var canvas = WindowedSampler.Sample(model, height, width, prefix, condition, seeds, sampling, mode);
                tokens = canvas.cpu().data<long>().ToArray();
                best = Math.Max(best, (double)count * height * width / clock.Elapsed.TotalSeconds);
            }
            return (best, tokens);
        }
        double Bits(long[] tokens)
        {
            using var canvas = TorchSharp.torch.tensor(tokens, new long[] { count, height, width }).to(torchDevice);
            return WindowedSampler.BitsPerToken(model, canvas, prefix, condition).Average();
        }
        WindowedSampler.Sample(model, layout.GridHeight, layout.GridWidth, prefix, condition is null ? null : condition.narrow(1, 0, layout.GridHeight).narrow(2, 0, layout.GridWidth),
            seeds, sampling).Dispose(); // warm-up
        var reference = Run(WindowMode.Reference);
        var exact = Run(WindowMode.Exact);
        var strided = Run(WindowMode.Strided);
        Console.WriteLine($"{count} canvases of {height}×{width} tokens, window {layout.GridHeight}×{layout.GridWidth}, {model.Options.Layers} layers × {model.Options.Width}, " +
                          $"top-k 100, {device}, best of {repeats} (quality: the prior's bits per token of the canvases under the sliding window):");
        Console.WriteLine($"  reference (full window per token): {reference.Rate,8:F0} tokens/s                {Bits(reference.Tokens):F3} bits/token");
        Console.WriteLine($"  exact mode                       : {exact.Rate,8:F0} tokens/s  ({exact.Rate / reference.Rate,4:F1}×)  {Bits(exact.Tokens):F3} bits/token  " +
                          Agreement(reference.Tokens, exact.Tokens, count));
        Console.WriteLine($"  strided mode (approximate)       : {strided.Rate,8:F0} tokens/s  ({strided.Rate / reference.Rate,4:F1}×)  {Bits(strided.Tokens):F3} bits/token");
        return 0;
    }

    /// <summary>benchmark-sampling [--prior zip] [--count N]: cached against uncached sampling of the same rows, and the
    /// cached step replayed as a CUDA graph (<see cref="SamplingOptions.CudaGraphs"/>) on a GPU.</summary>
    public static int Benchmark(Arguments args)
    {
        string priorPath = args.String("prior") ?? Path.Combine("out", "mnist-prior.zip");
        int count = args.Int("count") ?? 64; // the generator's default batch
        args.RejectUnknown();
        var ml = new MLContext(seed: 1);
        var prior = TamingCatalog.FindPrior(ml.Taming().LoadModel(priorPath, out _));
        var layout = prior.Layout;
        var conditions = Enumerable.Range(0, count).Select(i => layout.Conditioning switch
        {
            Conditioning.Class => new long[] { i % layout.ClassCount },
            Conditioning.Image => new long[layout.PrefixLength],
            _ => Array.Empty<long>(),
        }).ToList();
        var seeds = Enumerable.Range(0, count).ToArray();
        var modes = new List<(string, SamplingOptions)>
        {
            ("uncached (full forward per token)", new SamplingOptions { UseCache = false }),
            ("key/value cache                  ", new SamplingOptions { CudaGraphs = false }),
        };
        if (prior.Model.Options.Device.StartsWith("cuda") && TorchSharp.torch.cuda.is_available()) modes.Add(("key/value cache, CUDA graph      ", new SamplingOptions())); // the default there
        long[] Tokens(SamplingOptions o) => prior.Sample(conditions, seeds, o).SelectMany(t => t).ToArray();
        double Rate(SamplingOptions o)
        {
            var clock = Stopwatch.StartNew();
            prior.Sample(conditions, seeds, o);
            return (double)count * layout.ImageLength / clock.Elapsed.TotalSeconds;
        }
        Console.WriteLine($"{count} sequences of {layout.ImageLength} tokens, top-k 100, best of 3 ({prior.Model.Options.Layers} layers × {prior.Model.Options.Width}):");
        long[]? uncachedTokens = null;
        double baseline = 0;
        foreach (var (name, o) in modes)
        {
            var tokens = Tokens(o); // also the warm-up
            uncachedTokens ??= tokens;
            double rate = Enumerable.Range(0, 3).Max(_ => Rate(o));
            baseline = baseline == 0 ? rate : baseline;
            Console.WriteLine($"  {name}: {rate,9:F0} tokens/s  ({rate / baseline:F1}×)   {Agreement(uncachedTokens, tokens, count)}");
        }
        return 0;
    }

    /// <summary>
    /// Whether two samplings of the same rows (count rows, concatenated) drew the same tokens. Float rounding differs
    /// between batch shapes (on a GPU, other matrix-product kernels too); once one draw flips, the rest of its row
    /// follows another path, so the message gives each row's tokens up to its first flip.
    /// </summary>
    private static string Agreement(long[] a, long[] b, int count)
    {
        int n = a.Length / count;
        var agree = Enumerable.Range(0, count).Select(c => Enumerable.Range(0, n).TakeWhile(i => a[c * n + i] == b[c * n + i]).Count()).ToArray();
        return agree.All(x => x == n) ? "same tokens" : $"same tokens up to the first float-rounding flip: {string.Join(", ", agree)} of {n}";
    }

    private sealed class LabelRow
    {
        public int Label { get; set; }
    }
}
