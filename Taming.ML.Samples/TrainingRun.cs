using Microsoft.ML;
using Microsoft.ML.Data;
using Taming.ML.Evaluation;

namespace Taming.ML.Samples;

/// <summary>What train-tokenizer and train-prior share around a fit: Ctrl+C that keeps the model trained so far, and
/// a save that never leaves a half-written zip in place of the one it replaces.</summary>
internal static class TrainingRun
{
    /// <summary>
    /// A token that the first Ctrl+C cancels (set it as the options' StopToken: the fit then ends after its current step
    /// and returns the model trained so far, which the command saves; one that comes during a checkpoint's save does
    /// the same). A second Ctrl+C ends the program at once, except while a model is being written, which it lets finish
    /// (rather than leave a half-written file beside the output).
    /// </summary>
    public static CancellationToken StopOnCtrlC()
    {
        var stop = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            if (!stop.IsCancellationRequested)
            {
                e.Cancel = true;
                stop.Cancel();
                Console.WriteLine("  Ctrl+C: stopping after this training step and saving the model trained so far (before training begins: without saving; Ctrl+C again quits without saving).");
                return;
            }
            if (!saving) return; // the second press: the default, which ends the process
            e.Cancel = true;
            Console.WriteLine("  Ctrl+C: the model is being written; the program ends once it is.");
            quitAfterSave = true;
        };
        return stop.Token;
    }

    /// <summary><c>mlContext.Model.Save</c> to a file beside <paramref name="path"/>, then moved over it, so that a save that
    /// fails half-way (a full disk) leaves the previous model at <paramref name="path"/> whole (--resume may read it).</summary>
    public static void Save(MLContext ml, ITransformer model, DataViewSchema? schema, string path)
    {
        string partial = path + ".partial";
        saving = true;
        try
        {
            ml.Model.Save(model, schema, partial);
            File.Move(partial, path, overwrite: true);
        }
        finally
        {
            File.Delete(partial);
            saving = false;
        }
        if (quitAfterSave)
        {
            Console.WriteLine($"  Saved {path}; ending on Ctrl+C.");
            Environment.Exit(130); // the status of a process ended by SIGINT
        }
    }

    /// <summary>Saves a fit's checkpoint over its output (as <see cref="Save"/> does), every --checkpoint-minutes of training
    /// (30 by default), so that a fit that a crash or a killed job ends is not lost: --resume continues it, for the
    /// steps that were left where the fit counts steps (<paramref name="total"/>: the steps it was to reach; null: it has a
    /// time budget).</summary>
    public static void SaveCheckpoint(MLContext ml, ITransformer model, DataViewSchema? schema, string path, int steps, int? total)
    {
        Save(ml, model, schema, path);
        string resume = total is { } end ? $"--resume {path} --steps {end - steps}" : $"--resume {path}";
        Console.WriteLine($"  Checkpoint at step {steps:N0}: saved {path} (after a crash, the same command with {resume} goes on).");
    }

    /// <summary>The steps a fit is to reach, counting those of the model it continues; null where a time budget ends it.</summary>
    public static int? TotalSteps(int steps, TimeSpan? budget, int continued) => budget is null ? continued + steps : null;

    private static volatile bool saving, quitAfterSave;

    /// <summary>Writes a fit's loss curves beside its model: tokenizer.zip → tokenizer-curves.png.</summary>
    public static void SaveCurves(TrainingCurves curves, string modelPath, string indent = "")
    {
        if (curves.Count == 0) return; // a fit stopped before its first report
        // Beside the model, named as the model was (relative or absolute).
        string path = Path.Combine(Path.GetDirectoryName(modelPath) ?? "", Path.GetFileNameWithoutExtension(modelPath) + "-curves.png");
        curves.SavePng(path);
        Console.WriteLine($"{indent}Loss curves: {path}");
    }

    /// <summary>The stages of a saved model before <typeparamref name="T"/> (say, the CropAndResizeImages before a
    /// tokenizer), which prepare its input.</summary>
    public static ITransformer[] StagesBefore<T>(ITransformer model) where T : ITransformer =>
        model is TransformerChain<ITransformer> chain ? chain.TakeWhile(t => t is not T).ToArray() : Array.Empty<ITransformer>();

    /// <summary>", ending at learning rate r, ..." for the model that --resume continues, where its rate is known: where
    /// this fit's learning rate goes (the options' rate where lower), unless --restart-learning-rate.</summary>
    public static string EndRate(double rate, bool restart) => rate <= 0 ? "" :
        $", its last fit ending at learning rate {rate:0.0e+0}" + (restart ? " (this one starts again at --learning-rate)" : ", where this one goes on");

    /// <summary>Fails where a command-line option would change the shape of the model that --resume continues.</summary>
    public static void RequireSame(string option, int? given, int model)
    {
        if (given is { } value && value != model)
            throw new ArgumentException($"--{option} {value}: the model that --resume continues has {model}; leave the option out.");
    }
}
