using Taming.ML.Samples;

// Taming.ML sample program. With no arguments it runs the MNIST tokenizer demo.
try
{
    string command = args.Length > 0 && !args[0].StartsWith("--", StringComparison.Ordinal) ? args[0] : "demo";
    var options = new Arguments(command == "demo" && (args.Length == 0 || args[0] != "demo") ? args : args.Skip(1));
    return command switch
    {
        "demo" => Demo.Run(options),
        "photos" => PhotosDemo.Run(options),
        "train-tokenizer" => TokenizerCommands.Train(options),
        "evaluate-tokenizer" => TokenizerCommands.Evaluate(options),
        "benchmark-tokenizer" => Benchmarks.Tokenizer(options),
        "train-prior" => PriorCommands.Train(options),
        "generate" => PriorCommands.Generate(options),
        "benchmark-sampling" => PriorCommands.Benchmark(options),
        "evaluate-generation" => PriorCommands.EvaluateGeneration(options),
        "benchmark-windowed" => PriorCommands.BenchmarkWindowed(options),
        "classify-tokens" => DownstreamCommands.ClassifyTokens(options),
        "bench" => Bench.Run(options),
        "help" or "--help" => Usage(0),
        _ => Usage(2, $"Unknown command '{command}'."),
    };
}
catch (OperationCanceledException)
{
    // The first Ctrl+C came before training began: there is nothing to save, and the output is left as it was.
    Console.Error.WriteLine("Stopped by Ctrl+C before training began; nothing was saved.");
    return 130;
}
catch (Taming.ML.Training.TrainingDivergedException e)
{
    Console.Error.WriteLine($"error: {e.Message} (train-tokenizer and train-prior take it as --learning-rate.)");
    return 1;
}
catch (Exception e) when (e is ArgumentException or FileNotFoundException or DirectoryNotFoundException
                               or InvalidDataException or InvalidOperationException)
{
    // An ArgumentException's "(Parameter 'Resolution')" names the option in the library's terms, which the message
    // already does, and means nothing on a command line.
    Console.Error.WriteLine("error: " + (e is ArgumentException { ParamName: { } name } ? e.Message.Replace($" (Parameter '{name}')", "") : e.Message));
    return 1;
}

static int Usage(int code, string? problem = null)
{
    if (problem != null) Console.Error.WriteLine(problem);
    Console.WriteLine("""
        Usage: Taming.ML.Samples [command] [options]
          (no command)         MNIST demo: tokenizer, class-conditional prior, generated digits, class consistency
                               [--output-dir out] [--tokenizer-minutes M] [--prior-minutes M] [--steps N] [--prior-steps N] [--device cpu|cuda] [--precision float32|tf32|bf16]
          photos               photo-sized and 5×-wide generation from random crops of the shipped photos (9–15 min)
                               [--output-dir out/photos] [--minutes M per model] [--window-mode exact|strided|reference] [--top-k k]
                               [--temperature t] [--reuse: sample again with the saved models] [--device cpu|cuda] [--precision p]
          train-tokenizer      --images <idx file | image folder> [--labels <idx>] --output <zip>
                               [--resolution N (64, or less for smaller images)] [--codebook-size K] [--steps N] [--batch-size B] [--shuffle-pool N] [--learning-rate r] [--seed S] [--minutes M]
                               [--perceptual-weight w] [--disc-weight w] [--disc-start step] [--disc-layers L] [--device cpu|cuda] [--precision p] [--eager-training]
                               [--ch C (32)] [--ch-mult 1,2,2 (a level each; each after the first halves the side)] [--res-blocks N (1)]
                               [--z-channels Z (64)] [--embed-dim E (8)]: the network (256×256 photos: e.g. --ch 128 --ch-mult 1,1,2,2,4, 16×16 tokens)
                               [--resume <zip> [--restart-learning-rate]]: continue a saved tokenizer (also train-prior, with a
                               saved prior), from the learning rate its last fit ended at, or from --learning-rate;
                               Ctrl+C: stop after the current step and save; [--checkpoint-minutes M]: save the output
                               every M minutes of training (30), which --resume continues after a crash (both commands)
          evaluate-tokenizer   --model <zip> --images <idx file | image folder> [--labels <idx>] [--grid <png>] [--json]
                               [--image-size WxH: the images at that size, reconstructed whole]
                               both: [--skip N] [--take N] [--holdout F] rows, or [--random-crops N [--downscale F] [--crop-seed S]] from a folder;
                               [--upright]: a folder's photos turned as their EXIF orientation says
          train-prior          --tokenizer <zip> --images <idx file | image folder> [--labels <idx>] --output <zip>
                               [--layers L] [--heads H] [--width W] [--steps N] [--batch-size B (32)] [--learning-rate r] [--minutes M] [--seed S] [--unconditional] [--device cpu|cuda] [--precision p] [--eager-training]
                               [--image-size WxH --window N]: images tokenized whole at that size, the prior fitted on N×N windows of their grids
                               (generate then makes whole grids); [--skip N] [--take N] rows
          generate             --tokenizer <zip> --prior <zip> [--label class|k | --all-labels] [--count N] [--temperature t]
                               [--top-k k] [--top-p p] [--seed s] [--height-tokens H --width-tokens W] [--window-mode exact|strided|reference] --output <png>
                               image-conditioned priors: --condition <image> --condition-tokenizer <zip> (canvas = the condition's token grid)
          evaluate-generation  --tokenizer <zip> --prior <zip> [--images <idx> --labels <idx>] [--count N] [sampling options] [--json] [--device d]
          classify-tokens      [--tokenizer <zip>] [--prior <zip>] [--images <idx> --labels <idx>]: tokens as features of an ML.NET
                               classifier (vs. raw pixels), and the prior's bits per token as an anomaly score
          bench                [--config reference|demo] [--device cpu|cuda] [--precision float32,tf32,bf16] [--steps N]
                               [--only train,encode,decode,prior,sample,windowed] [--resolution R] [--vqgan-width C] [--gpt-layers L] [--gpt-width C] [--canvas N] [--eager-sampling] [--eager-training]
                               [--layout auto|standard|channels-last]:
                               the reference's timed workloads (VQGAN f16, 24-layer GPT), or the sample's own MNIST models (--config demo)
          benchmark-tokenizer  [--model <zip>] [--images <idx>] [--repeats N]: ML.NET transformer vs. the raw TorchSharp encoder
          benchmark-sampling   [--prior <zip>] [--count N]: uncached, key/value-cached and (on a GPU) CUDA-graph sampling
          benchmark-windowed   [--prior <zip> | --window N [--layers L] [--width C]] [--height-tokens H] [--width-tokens W] [--count N]: windowed modes vs. the reference loop
        """);
    return code;
}
