using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;
using Taming.ML.MLNet;
using Taming.ML.Models;
using Taming.ML.Sampling;
using TorchSharp;
using static TorchSharp.torch;

namespace Taming.ML.Samples;

/// <summary>
/// bench: the workloads the reference implementation is timed on — a VQGAN ImageNet-f16 training iteration, its
/// encode and decode throughput, cached sampling and windowed generation with a 24-layer GPT — on the CPU or a GPU,
/// with each workload's FLOPs per item and the share of the device's measured fp32 matmul rate it reaches.
/// </summary>
internal static class Bench
{
    /// <summary>
    /// bench [--config reference|demo] [--device cpu|cuda] [--precision float32,tf32,bf16] [--only train,encode,decode,prior,sample,windowed]
    /// [--steps N] [--resolution R] [--vqgan-width C] [--gpt-layers L] [--gpt-width C] [--canvas N] [--eager-sampling] [--eager-training] [--layout auto|standard|channels-last].
    /// The reference configuration is the one the
    /// reference implementation was timed with; on a CPU, smaller --resolution / --vqgan-width / --gpt-layers / --canvas
    /// give a quick run (--vqgan-width scales all the VQGAN's widths in the reference's proportions).
    /// The demo configuration is the sample's own: the MNIST tokenizer (without its perceptual term) and prior.
    /// </summary>
    public static int Run(Arguments args)
    {
        string deviceName = args.String("device") ?? "cpu";
        bool demo = (args.String("config") ?? "reference") switch
        {
            "reference" => false,
            "demo" => true,
            var c => throw new ArgumentException($"--config: '{c}' is not one of reference, demo."),
        };
        var only = List(args.String("only") ?? "train,encode,decode,prior,sample,windowed");
        var precisions = List(args.String("precision") ?? "float32").Select(p => Arguments.ParsePrecision(p, "precision")).ToList();
        int steps = args.Int("steps") ?? 5;
        // On a GPU, cached sampling and the training iteration are replayed as CUDA graphs unless told otherwise.
        bool graphs = !args.Flag("eager-sampling"), trainingGraphs = !args.Flag("eager-training");
        string memoryLayout = args.String("layout") ?? "auto";
        bool? channelsLast = memoryLayout switch
        {
            "auto" => null,
            "standard" => false,
            "channels-last" => true,
            var l => throw new ArgumentException($"--layout: '{l}' is not one of auto, standard, channels-last."),
        };
        var sizes = (Resolution: args.Int("resolution") ?? 256, VqganWidth: args.Int("vqgan-width") ?? 128, GptLayers: args.Int("gpt-layers") ?? 24,
            GptWidth: args.Int("gpt-width") ?? 1024, Canvas: args.Int("canvas") ?? 32);
        var config = demo ? Config.Demo() : Config.Reference(sizes.Resolution, sizes.VqganWidth, sizes.GptLayers, sizes.GptWidth, sizes.Canvas);
        args.RejectUnknown();
        var device = Native.TorchRuntime.ResolveDevice(deviceName);
        // The reference's own figures (fp32 eager, timed on the lent cards) apply to its configuration on a GPU only.
        bool compare = !demo && sizes == (256, 128, 24, 1024, 32) && device.type == DeviceType.CUDA;
        string GraphLabel(bool on) => on && device.type == DeviceType.CUDA ? " (CUDA graph)" : "";
        var ml = new MLContext(seed: 1).ShowTrainingSetup();
        var images = demo
            ? ml.Data.TakeRows(ml.Data.LoadFromIdx(DataSources.EmbeddedMnistImages, padTo: 32), config.Vqgan.BatchSize * 8)
            : ml.Data.LoadRandomCrops(Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "data", "photos"), "*.jpg"),
                config.Vqgan.Resolution, count: config.Vqgan.BatchSize * 4, seed: 1);
        foreach (var precision in precisions)
        {
            double peak = MatmulRate(device, precision);
            Console.WriteLine($"Device {deviceName}, {precision}{(channelsLast is null ? "" : $", VQGAN layout {memoryLayout}")}, " +
                              $"{(demo ? "the sample's MNIST configuration" : "the reference's configuration")}: measured matmul rate " +
                              $"{peak / 1e12:F2} TFLOP/s (4096² × 4096 in this precision), the reference point for 'of peak'; convolutions can pass it (Winograd), " +
                              "and the windowed line counts the reference loop's FLOPs, which exact mode skips.");
            void Report(string name, double itemsPerSecond, string unit, double flopsPerItem, (double H100, double H200)? reference = null) =>
                Console.WriteLine($"  {name,-56} {itemsPerSecond,9:F1} {unit,-9} {flopsPerItem / 1e9,8:F3} GFLOP per {unit.Replace("s/s", "")}  {itemsPerSecond * flopsPerItem / peak,6:P1} of peak" +
                                  (compare && reference is { } r ? $"  {itemsPerSecond / r.H200:F2}× the reference on an H200, {itemsPerSecond / r.H100:F2}× on an H100" : ""));

            var vq = config.Vqgan.Clone();
            vq.Device = deviceName;
            vq.Precision = precision;
            vq.ChannelsLast = channelsLast;
            vq.CudaGraphs = trainingGraphs;
            string vqName = $"VQGAN {vq.Resolution}² → {vq.TokenGridSide}²";
            if (only.Contains("train")) Report($"{vqName} training iteration{GraphLabel(trainingGraphs)}, batch {vq.BatchSize}", TrainingRate(ml, images, vq.Clone(), steps), "images/s", VqganFlops.TrainingIteration(vq), (62.8, 72.6));
            if (only.Contains("encode") || only.Contains("decode"))
            {
                var (encode, decode) = CodecRates(vq, device, config.CodecBatch, batches: steps);
                if (only.Contains("encode")) Report($"{vqName} encode, batch {config.CodecBatch}", encode, "images/s", VqganFlops.Encoder(vq), (593, 693));
                if (only.Contains("decode")) Report($"{vqName} decode, batch {config.CodecBatch}", decode, "images/s", VqganFlops.Decoder(vq), (364, 423));
            }
            var g = config.Gpt.Clone();
            g.Device = deviceName;
            g.Precision = precision;
            g.CudaGraphs = trainingGraphs;
            var layout = config.Layout;
            string gptName = $"GPT {g.Layers}×{g.Width}";
            int prefix = layout.Vocabulary - 1; // the last prefix token: the start token or the last class
            if (only.Contains("prior"))
                Report($"{gptName} training step{GraphLabel(trainingGraphs)}, batch {g.BatchSize} × {layout.ImageLength} tokens", PriorTrainingRate(ml, g, layout, steps), "tokens/s",
                    3 * GptFlops(g.Layers, g.Width, layout.CodebookSize, (layout.BlockSize + 1) / 2));
            if (only.Contains("sample") || only.Contains("windowed"))
            {
                random.manual_seed(1);
                using var gpt = new Gpt(g, layout);
                gpt.to(device);
                var sampling = new SamplingOptions { TopK = 100, CudaGraphs = graphs };
                int n = layout.ImageLength, rows = config.SampleBatch;
                if (only.Contains("sample"))
                {
                    double rate = Rate(() => PriorSampler.Sample(gpt, full(new long[] { rows, 1 }, (long)prefix, device: device), Enumerable.Range(0, rows).ToArray(), sampling), rows * n, steps);
                    Report($"{gptName} cached sampling{GraphLabel(graphs)}, {n} tokens × {rows}", rate, "tokens/s", GptFlops(g.Layers, g.Width, layout.CodebookSize, 1 + n / 2), (1534, 1766));
                }
                if (only.Contains("windowed"))
                {
                    int canvas = config.Canvas, windowRows = 4;
                    double rate = Rate(() => WindowedSampler.Sample(gpt, canvas, canvas, full(new long[] { windowRows, 1 }, (long)prefix, device: device), null,
                        Enumerable.Range(0, windowRows).ToArray(), sampling, WindowMode.Exact), windowRows * canvas * canvas, Math.Min(steps, 2));
                    // Counted as the reference loop's work: a full window per token (exact mode does less).
                    Report($"windowed {canvas}×{canvas}, window {layout.GridHeight}×{layout.GridWidth}, × {windowRows}, exact (ref. FLOPs)", rate, "tokens/s",
                        n * GptFlops(g.Layers, g.Width, layout.CodebookSize, n / 2), (198, 200));
                }
            }
        }
        return 0;
    }

    /// <summary>A workload set: the tokenizer and prior configurations and their batch sizes.</summary>
    private sealed record Config(VqganOptions Vqgan, int CodecBatch, GptOptions Gpt, PriorLayout Layout, int SampleBatch, int Canvas)
    {
        /// <summary>The reference's: VQGAN ImageNet f16, GPT 24 × 1024 over 16×16 grids of 1024 codes.</summary>
        public static Config Reference(int resolution, int vqganWidth, int layers, int width, int canvas)
        {
            var vq = VqganOptions.ImageNetF16();
            (vq.Resolution, vq.PerceptualWeight) = (resolution, 0); // the reference was timed without the perceptual term
            if (vqganWidth != vq.Ch) // every width in the reference's proportions: z and codes 2×, discriminator ½×
                (vq.Ch, vq.ZChannels, vq.EmbedDim, vq.DiscChannels) = (vqganWidth, 2 * vqganWidth, 2 * vqganWidth, Math.Max(1, vqganWidth / 2));
            return new(vq, 32, new GptOptions { Layers = layers, Heads = 16, Width = width, BatchSize = 8 },
                new PriorLayout(Conditioning.None, 1024, 16, 16), 16, canvas);
        }

        /// <summary>
        /// The sample's MNIST demo: default VqganOptions on 32×32 digits (without the perceptual term, whose ResNet18
        /// the FLOP count leaves out), default GptOptions over 8×8 grids of 512 codes.
        /// </summary>
        public static Config Demo() =>
            new(new VqganOptions { Resolution = 32, Channels = 1, CodebookSize = 512, DiscWeight = 0.1, PerceptualWeight = 0, BatchSize = 32 }, 64,
                new GptOptions(), new PriorLayout(Conditioning.Class, 512, 8, 8, ClassCount: 10), 64, 16);
    }

    private static string[] List(string s) => s.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);

    /// <summary>Items per second of <paramref name="work"/> (which returns a tensor), best of <paramref name="repeats"/> timings after a warm-up; each timing runs it
    /// <paramref name="calls"/> times back to back and waits for the device once, at the end, as a stream of batches
    /// would (the host queues the next batch while the device computes).</summary>
    private static double Rate(Func<Tensor> work, double items, int repeats, int calls = 1)
    {
        work().Dispose();
        double best = 0;
        for (int r = 0; r < Math.Max(1, repeats); r++)
        {
            var clock = Stopwatch.StartNew();
            using (NewDisposeScope())
            {
                for (int c = 1; c < calls; c++) work().Dispose();
                // Reading one element waits for the device; copying the whole output (25 MB of decoded images) would time the copy too.
                work().flatten().narrow(0, 0, 1).cpu();
            }
            best = Math.Max(best, calls * items / clock.Elapsed.TotalSeconds);
        }
        return best;
    }

    private static double MatmulRate(Device device, Precision precision)
    {
        using var scope = NewDisposeScope();
        bool tf32 = backends.cuda.matmul.allow_tf32;
        backends.cuda.matmul.allow_tf32 = precision == Precision.TensorFloat32;
        var dtype = precision == Precision.BFloat16 ? ScalarType.BFloat16 : ScalarType.Float32;
        var a = randn(new long[] { 4096, 4096 }, dtype, device: device);
        var b = randn(new long[] { 4096, 4096 }, dtype, device: device);
        int reps = device.type == DeviceType.CPU ? 2 : 20;
        try { return Rate(() => { Tensor c = a; for (int i = 0; i < reps; i++) c = a.matmul(b); return c.sum(); }, 2.0 * reps * 4096 * 4096 * 4096, 3); }
        finally { backends.cuda.matmul.allow_tf32 = tf32; }
    }

    /// <summary>Training images per second through the ML.NET estimator: the time between the progress reports after
    /// <paramref name="steps"/> warm-up steps and after as many more (a report reads the device, so reporting every
    /// step would stall the queue of work that a GPU runs ahead on).</summary>
    private static double TrainingRate(MLContext ml, IDataView data, VqganOptions options, int steps)
    {
        var elapsed = new List<TimeSpan>();
        options.Steps = 2 * steps;
        options.DiscStart = 0; // both the autoencoder and the discriminator step, adaptive λ included
        options.ProgressInterval = steps;
        options.Progress = p => elapsed.Add(p.Elapsed);
        ml.Transforms.TokenizeImages("Tokens", "Image", options).Fit(data);
        return options.BatchSize * steps / (elapsed[^1] - elapsed[0]).TotalSeconds;
    }

    /// <summary>Prior training tokens per second through the ML.NET estimator on random token grids.</summary>
    private static double PriorTrainingRate(MLContext ml, GptOptions options, PriorLayout layout, int steps)
    {
        var rng = new Random(1);
        var rows = Enumerable.Range(0, options.BatchSize * 4).Select(i => new TokenRow
        {
            Label = (uint)(i % Math.Max(1, layout.ClassCount)),
            Tokens = Enumerable.Range(0, layout.ImageLength).Select(_ => (uint)rng.Next(1, layout.CodebookSize + 1)).ToArray(),
        }).ToList();
        var schema = SchemaDefinition.Create(typeof(TokenRow));
        schema[nameof(TokenRow.Tokens)].ColumnType = new VectorDataViewType(new KeyDataViewType(typeof(uint), layout.CodebookSize), layout.GridHeight, layout.GridWidth);
        schema[nameof(TokenRow.Label)].ColumnType = new KeyDataViewType(typeof(uint), Math.Max(2, layout.ClassCount));
        var data = ml.Data.LoadFromEnumerable(rows, schema);
        var elapsed = new List<(TimeSpan Time, int Step)>();
        options.Steps = 2 * steps; // timed between the reports after warm-up and at the end, as above
        options.ProgressInterval = steps;
        options.ValidationFraction = 0;
        options.EarlyStoppingPatience = 0;
        options.Progress = p => elapsed.Add((p.Elapsed, p.Step));
        ml.Transforms.FitPrior("Tokens", layout.Conditioning == Conditioning.Class ? "Label" : null, options: options).Fit(data);
        return (double)options.BatchSize * layout.ImageLength * (elapsed[^1].Step - elapsed[0].Step) / (elapsed[^1].Time - elapsed[0].Time).TotalSeconds;
    }

    /// <summary>A token grid and a label; the key types are set per configuration.</summary>
    private sealed class TokenRow
    {
        public uint Label { get; set; }
        public uint[] Tokens { get; set; } = Array.Empty<uint>();
    }

    private static (double Encode, double Decode) CodecRates(VqganOptions options, Device device, int batch, int batches)
    {
        random.manual_seed(1);
        using var model = new Vqgan(options);
        model.to(device).eval();
        using var _ = no_grad();
        using var x = rand(new long[] { batch, options.Channels, options.Resolution, options.Resolution }, device: device) * 2 - 1;
        double encode = Rate(() => model.Tokenize(x), batch, repeats: 3, calls: batches);
        using var ids = model.Tokenize(x);
        double decode = Rate(() => model.DecodeTokens(ids), batch, repeats: 3, calls: batches);
        return (encode, decode);
    }

    /// <summary>Forward FLOPs of one token with <paramref name="context"/> keys: the blocks' matmuls, attention, the head.</summary>
    private static double GptFlops(int layers, int width, int codes, int context) =>
        2.0 * 12 * layers * width * (double)width + 4.0 * layers * context * width + 2.0 * width * codes;

    /// <summary>Multiply-add counts (× 2) of the reference VQGAN's convolutions and attention, by resolution.</summary>
    private static class VqganFlops
    {
        private static double Conv(long cin, long cout, int k, long side) => 2.0 * cin * cout * k * k * side * side;
        private static double Resnet(long cin, long cout, long r) => Conv(cin, cout, 3, r) + Conv(cout, cout, 3, r) + (cin != cout ? Conv(cin, cout, 1, r) : 0);
        private static double Attention(long c, long r) => 4 * Conv(c, c, 1, r) + 4.0 * r * r * r * r * c;

        public static double Encoder(VqganOptions o)
        {
            long r = o.Resolution, blockIn = o.Ch;
            double f = Conv(o.Channels, o.Ch, 3, r);
            for (int i = 0; i < o.ChMult.Length; i++)
            {
                long blockOut = (long)o.Ch * o.ChMult[i];
                for (int b = 0; b < o.NumResBlocks; b++, blockIn = blockOut)
                    f += Resnet(blockIn, blockOut, r) + (o.AttnResolutions.Contains((int)r) ? Attention(blockOut, r) : 0);
                if (i < o.ChMult.Length - 1) { f += Conv(blockIn, blockIn, 3, r / 2); r /= 2; }
            }
            f += 2 * Resnet(blockIn, blockIn, r) + (o.MidAttention ? Attention(blockIn, r) : 0) + Conv(blockIn, o.ZChannels, 3, r);
            // quant_conv and the nearest-code search
            return f + Conv(o.ZChannels, o.EmbedDim, 1, r) + 2.0 * r * r * o.CodebookSize * o.EmbedDim;
        }

        public static double Decoder(VqganOptions o)
        {
            long r = o.TokenGridSide, blockIn = (long)o.Ch * o.ChMult[^1];
            double f = Conv(o.EmbedDim, o.ZChannels, 1, r) + Conv(o.ZChannels, blockIn, 3, r);
            f += 2 * Resnet(blockIn, blockIn, r) + (o.MidAttention ? Attention(blockIn, r) : 0);
            for (int i = o.ChMult.Length - 1; i >= 0; i--)
            {
                long blockOut = (long)o.Ch * o.ChMult[i];
                for (int b = 0; b <= o.NumResBlocks; b++, blockIn = blockOut)
                    f += Resnet(blockIn, blockOut, r) + (o.AttnResolutions.Contains((int)r) ? Attention(blockOut, r) : 0);
                if (i > 0) { r *= 2; f += Conv(blockIn, blockIn, 3, r); }
            }
            return f + Conv(blockIn, o.Channels, 3, r);
        }

        public static double Discriminator(VqganOptions o)
        {
            long r = o.Resolution / 2, mult = 1;
            double f = Conv(o.Channels, o.DiscChannels, 4, r);
            for (int n = 1; n <= o.DiscLayers; n++)
            {
                long previous = mult;
                mult = Math.Min(1L << n, 8);
                r = n < o.DiscLayers ? r / 2 : r - 1;
                f += Conv(o.DiscChannels * previous, o.DiscChannels * mult, 4, r);
            }
            return f + Conv(o.DiscChannels * mult, 1, 4, r - 1);
        }

        /// <summary>
        /// Per image, approximately: generator forward + backward (3×), the discriminator on the reconstruction with its
        /// backward into the generator, once for both λ and the step (2×, no weight gradients), and the discriminator
        /// step on real and reconstructed images with its backward (6×). The reference differentiates the discriminator
        /// three times in the autoencoder step (11× in all).
        /// </summary>
        public static double TrainingIteration(VqganOptions o) => 3 * (Encoder(o) + Decoder(o)) + 8 * Discriminator(o);
    }
}
