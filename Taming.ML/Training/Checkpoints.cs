using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace Taming.ML.Training;

/// <summary>
/// When a fit hands a copy of its model so far to its options' <c>Checkpoint</c>: once every interval of training time,
/// between steps, so that a fit of hours loses at most an interval's work to a crash, a killed job or a lost machine.
/// </summary>
internal sealed class Checkpoints(TimeSpan interval)
{
    private TimeSpan last;

    /// <summary>Whether a checkpoint is due after the step that ended at <paramref name="elapsed"/>.</summary>
    public bool Due(TimeSpan elapsed) => elapsed - last >= interval;

    /// <summary>After a checkpoint that ended at <paramref name="elapsed"/>: the next interval starts here, so that a slow
    /// save does not make the next one due at once.</summary>
    public void Taken(TimeSpan elapsed) => last = elapsed;

    /// <summary>
    /// A copy of <paramref name="source"/> on the CPU, in inference mode, which training does not touch. On the CPU, so
    /// that a GPU whose memory the fit fills needs none for it, and none stays held until the collector finalises a copy
    /// the callback let go (saving reads the weights on the CPU anyway). A new module draws its initial weights from
    /// libtorch's generator, so its state is put back: a fit with checkpoints trains the very model that one without them does.
    /// </summary>
    public static T Copy<T>(Func<T> create, nn.Module source) where T : nn.Module
    {
        using var state = random.get_rng_state();
        try
        {
            var copy = create(); // made on the CPU
            copy.CopyWeightsFrom(source);
            copy.eval();
            return copy;
        }
        finally
        {
            random.set_rng_state(state);
        }
    }

    /// <summary>
    /// A trainer's checkpoint callback that makes the fitted transformer of each copy (<paramref name="transformer"/>) and
    /// hands it to the options' <paramref name="callback"/> (null: none). A callback that throws is logged as a warning
    /// and training goes on: a failed save (a full disk) should not cost the fit in progress.
    /// </summary>
    public static Action<TModel, TState>? Calling<TModel, TState, T>(Action<T>? callback, Func<TModel, TState, T> transformer,
        Func<T, int> steps, string optionsName, Action<string> info, Action<string> warn)
    {
        if (callback is null) return null;
        return (model, state) =>
        {
            var fitted = transformer(model, state);
            var clock = Stopwatch.StartNew();
            try
            {
                callback(fitted);
                info($"Checkpoint at step {steps(fitted):N0} ({optionsName}.Checkpoint took {clock.Elapsed.TotalSeconds:F1} s).");
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                warn($"{optionsName}.Checkpoint failed at step {steps(fitted):N0}; training goes on. {e.GetType().Name}: {e.Message}");
            }
        };
    }
}
