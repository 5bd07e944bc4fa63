using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Microsoft.ML.Transforms.Image;
using Taming.ML.Data;
using Taming.ML.Losses;
using Taming.ML.Models;
using Taming.ML.Native;
using Taming.ML.Training;

namespace Taming.ML.MLNet;

/// <summary>
/// Fits a VQGAN tokenizer on an image column. <see cref="Fit(IDataView)"/> reads the images once into memory (or, where
/// they would not fit, streams them through a shuffle pool: <see cref="VqganOptions.ShufflePoolSize"/>), trains
/// the autoencoder, codebook and discriminator, and returns a <see cref="VqganTokenizerTransformer"/>;
/// <see cref="Fit(IDataView, VqganTokenizerTransformer)"/> continues training a fitted one.
/// </summary>
public sealed class VqganTokenizerEstimator : IEstimator<VqganTokenizerTransformer>
{
    private readonly IHost host;
    private readonly IHostEnvironment env;
    private readonly string outputColumnName, inputColumnName;
    private readonly VqganOptions options;
    private readonly bool resizeToResolution;
    private readonly IPerceptualDistance? perceptual;

    internal VqganTokenizerEstimator(IHostEnvironment env, string outputColumnName, string inputColumnName,
        VqganOptions? options, bool resizeToResolution, IPerceptualDistance? perceptual)
    {
        this.env = env;
        host = env.Register(nameof(VqganTokenizerEstimator));
        this.outputColumnName = outputColumnName;
        this.inputColumnName = inputColumnName;
        this.options = (options ?? new VqganOptions()).Clone();
        this.resizeToResolution = resizeToResolution;
        this.perceptual = perceptual;
    }

    /// <summary>Checks the input column and describes the token column that <see cref="Fit(IDataView)"/> will add.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        var col = SchemaColumns.Find(inputSchema, inputColumnName);
        bool image = col.Kind == SchemaShape.Column.VectorKind.Scalar && col.ItemType is ImageDataViewType;
        bool vector = col.Kind == SchemaShape.Column.VectorKind.Vector && ImageColumnReader.IsPixelType(col.ItemType);
        if (!image && !vector)
            throw new ArgumentOutOfRangeException(nameof(inputSchema),
                $"Column '{inputColumnName}' has type {col.GetTypeString()}; expected an image (LoadImages/ResizeImages) or a " +
                "vector of Single or Byte [channels, height, width] (ExtractPixels).");
        var result = inputSchema.ToDictionary(c => c.Name);
        result[outputColumnName] = TokenColumns.Shape(outputColumnName);
        return new SchemaShape(result.Values);
    }

    /// <summary>Trains the tokenizer on the images of the input column.</summary>
    public VqganTokenizerTransformer Fit(IDataView input) => Train(input, initial: null);

    /// <summary>
    /// Continues training <paramref name="initial"/>, a fitted or loaded tokenizer (which is left as it is), on the images
    /// of the input column, as ML.NET's trainers continue from given model parameters. The network's shape, its codebook
    /// and its weights come from <paramref name="initial"/> (options that would shape it otherwise are logged and not
    /// used), and so does its discriminator once its GAN has trained; this estimator's options give everything else: steps,
    /// learning rate, time budget, loss weights, device, precision, progress. Step numbers count on from its
    /// <see cref="VqganTokenizerTransformer.TrainedSteps"/> (<see cref="VqganOptions.DiscStart"/>, and the default GAN start
    /// at step 1,000, which a model that has trained its GAN has passed). Adam's moments are not saved with a model: the
    /// learning rate warms up again, to the rate at which the model's last fit ended (or the options' rate where that is
    /// lower), and decays to a tenth of it over this fit's steps, no lower than a hundredth of the options' rate
    /// (<c>RestartLearningRate</c>: to the options' rate, as a new fit).
    /// </summary>
    public VqganTokenizerTransformer Fit(IDataView input, VqganTokenizerTransformer initial) =>
        Train(input, initial ?? throw new ArgumentNullException(nameof(initial)));

    private VqganTokenizerTransformer Train(IDataView input, VqganTokenizerTransformer? initial)
    {
        ArgumentNullException.ThrowIfNull(input);
        var column = SchemaColumns.Find(input.Schema, inputColumnName, parameter: nameof(input));
        using var ch = host.Start("Fit");
        var resolved = Resolve(input, column, initial is null ? options : options.WithArchitectureOf(initial.Model.Options, m => ch.Info(m)));
        resolved.Validate();
        TimeBudget.Check(resolved.TimeBudget, nameof(VqganOptions));
        var device = TorchRuntime.ResolveDevice(resolved.Device);
        var validation = ReadValidation(resolved, m => ch.Info(m)); // before the training set, so that a wrong one fails at once
        using var data = ReadImages(input, column, resolved, m => ch.Info(m), m => ch.Warning(m));
        // LoadImages makes every image colour (BGRA), so grey data arrives as three equal channels.
        if (initial is null && options.Channels == 0 && data is ImageSet { Channels: 3 } set && set.AllGrey())
            ch.Info("The training images are grey (red = green = blue everywhere): VqganOptions.Channels = 1 would train on one " +
                    "channel, in a third of the memory.");
        string channels = resolved.Channels == 1 ? "1 channel" : $"{resolved.Channels} channels";
        ch.Info($"Training a VQGAN tokenizer on {data.Description} ({channels}; {resolved.TokenGridSide}×" +
                $"{resolved.TokenGridSide} tokens, {resolved.CodebookSize} codes) for {resolved.Steps} steps on {device}.");
        VqganTokenizerTransformer Fitted(Vqgan model, VqganTrainingState training, TorchSharp.torch.Device on) =>
            new(env, model, outputColumnName, inputColumnName, resizeToResolution, on, training: training);
        var checkpoint = Checkpoints.Calling<Vqgan, VqganTrainingState, VqganTokenizerTransformer>(resolved.Checkpoint,
            (m, s) => Fitted(m, s, TorchSharp.torch.CPU), t => t.TrainedSteps, nameof(VqganOptions), m => ch.Info(m), m => ch.Warning(m));
        var (model, training) = new VqganTrainer(resolved, device, perceptual, m => ch.Info(m))
            .Train(data, initial is null ? null : (initial.Model, initial.Training), validation, checkpoint);
        return Fitted(model, training, device);
    }

    /// <summary>Fills the options left at 0 (resolution, channels, seed) from the data and the MLContext.</summary>
    private VqganOptions Resolve(IDataView input, DataViewSchema.Column column, VqganOptions given)
    {
        var o = given.Clone();
        var (c, h, w) = ImageColumnReader.Inspect(column);
        if (column.Type is VectorDataViewType && c == 0 && (o.Channels == 0 || o.Resolution == 0))
            throw new ArgumentOutOfRangeException(nameof(input),
                $"Column '{column.Name}' is a pixel vector without [channels, height, width] dimensions: set " +
                "VqganOptions.Channels and Resolution, or give the column its shape (ExtractPixels does).");
        if (o.Channels == 0) o.Channels = c == 0 ? 3 : c;
        if (o.Resolution == 0)
        {
            if (h == 0 || w == 0) (h, w) = ImageColumnReader.FirstImageSize(input, column);
            if (h != w)
                throw new ArgumentOutOfRangeException(nameof(input),
                    $"Column '{column.Name}' holds {w}×{h} images; the tokenizer needs square images. Resize them " +
                    "(mlContext.Transforms.CropAndResizeImages) or set VqganOptions.Resolution with ResizeToResolution.");
            o.Resolution = h;
        }
        o.Seed ??= (env as IHostEnvironmentInternal)?.Seed;
        return o;
    }

    /// <summary>
    /// The training images: read into memory where they fit (<see cref="VqganOptions.ShufflePoolSize"/> 0), else streamed
    /// through a shuffle pool, which is filled before training starts. Either way the first pass reports its progress. An
    /// input that does not know its row count (a text file of paths, a filter) is counted first, on no columns, which
    /// decodes no image: so a set too large for memory is streamed from the start, not found so after reading most of it.
    /// </summary>
    private ITrainingImages ReadImages(IDataView input, DataViewSchema.Column column, VqganOptions o, Action<string> log, Action<string> warn)
    {
        long rows = input.GetRowCount() ?? CountRows(input, o);
        if (rows == 0) throw new InvalidOperationException(TrainingImages.EmptyMessage);
        long bytesPerImage = (long)o.Channels * o.Resolution * o.Resolution;
        long memory = ImageSet.DefaultMemoryLimit;
        int poolSize = o.ShufflePoolSize;
        if (poolSize == 0)
        {
            if (rows * (double)bytesPerImage <= memory)
            {
                var progress = new ReadProgress(log, "images", rows);
                var set = new ImageSet(o.Channels, o.Resolution, o.Resolution);
                foreach (var image in ReadPass(input, column, o, CancellationToken.None))
                {
                    StopRequest.ThrowIfBeforeTraining(o.StopToken, nameof(VqganOptions));
                    set.Add(image); // refuses a set that outgrows its memory after all (an input whose passes differ)
                    progress.Add();
                }
                if (set.Count == 0) throw new InvalidOperationException(TrainingImages.EmptyMessage);
                progress.Done();
                return set;
            }
            poolSize = (int)Math.Clamp(memory / 4 / bytesPerImage, 1, 20_000);
            warn($"The {rows:N0} training images of {o.Resolution}×{o.Resolution}×{o.Channels} take more than three quarters of the " +
                $"memory available ({memory / (double)(1L << 30):F1} GB), so they are streamed from the input through a " +
                $"shuffle pool of {poolSize:N0} (VqganOptions.ShufflePoolSize), decoded again every pass.");
        }
        poolSize = Math.Max(poolSize, o.TrainingBatchSize);
        var filling = new ReadProgress(log, "images into the shuffle pool", Math.Min(poolSize, rows));
        var stream = new ImageStream(token => ReadPass(input, column, o, token), o.Channels, o.Resolution, o.Resolution, poolSize, rows, log);
        try
        {
            stream.Fill(() =>
            {
                StopRequest.ThrowIfBeforeTraining(o.StopToken, nameof(VqganOptions));
                filling.Add();
            });
        }
        catch
        {
            stream.Dispose();
            throw;
        }
        filling.Done();
        return stream;
    }

    /// <summary>The first <see cref="VqganOptions.ValidationImages"/> images of <see cref="VqganOptions.ValidationSet"/>, if
    /// any, read from its column of the training data's name.</summary>
    private ImageSet? ReadValidation(VqganOptions o, Action<string> log)
    {
        if (o.ValidationSet is not { } view) return null;
        var column = SchemaColumns.Find(view.Schema, inputColumnName, "Validation", "ValidationSet");
        var set = new ImageSet(o.Channels, o.Resolution, o.Resolution);
        try
        {
            foreach (var image in ReadPass(view, column, o, CancellationToken.None).Take(o.ValidationImages)) set.Add(image);
        }
        catch (Exception e) when (e is ArgumentException or InvalidDataException)
        {
            throw SchemaColumns.InOption("VqganOptions.ValidationSet", e);
        }
        if (set.Count == 0) throw new ArgumentException("VqganOptions.ValidationSet holds no images.", "ValidationSet");
        log($"Validation: {set.Count:N0} held-out images, reconstructed at every progress report.");
        return set;
    }

    /// <summary>The input's rows, counted on a cursor of no columns (which computes no image).</summary>
    private static long CountRows(IDataView input, VqganOptions o)
    {
        using var cursor = input.GetRowCursor(Array.Empty<DataViewSchema.Column>());
        long rows = 0;
        while (cursor.MoveNext())
        {
            if (rows % 4096 == 0)
            {
                o.CancellationToken.ThrowIfCancellationRequested();
                StopRequest.ThrowIfBeforeTraining(o.StopToken, nameof(VqganOptions));
            }
            rows++;
        }
        return rows;
    }

    /// <summary>One pass over the input's images, each as planar bytes at the trained resolution.</summary>
    private IEnumerable<byte[]> ReadPass(IDataView input, DataViewSchema.Column column, VqganOptions o, CancellationToken token)
    {
        using var cursor = ParallelCursor.Create(input, new[] { column });
        var reader = new ImageColumnReader(cursor, column, o.Channels, o.Resolution, o.Resolution, resizeToResolution);
        var pixels = new float[o.Channels * o.Resolution * o.Resolution];
        while (cursor.MoveNext())
        {
            o.CancellationToken.ThrowIfCancellationRequested();
            token.ThrowIfCancellationRequested();
            reader.Read(pixels);
            yield return PixelScale.ToBytes(pixels);
        }
    }
}
