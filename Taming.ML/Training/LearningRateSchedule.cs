namespace Taming.ML.Training;

/// <summary>
/// The learning rate of both trainers: a linear warm-up over <paramref name="warmupSteps"/>, then a cosine from the peak to
/// a tenth of it by the end of the fit (of its steps, or of its time budget when that runs out first).
/// </summary>
internal sealed class LearningRateSchedule(double peak, int warmupSteps)
{
    public double Peak => peak;

    /// <summary>The rate of step <paramref name="step"/> (0-based) at <paramref name="progress"/> (0–1) through the fit.</summary>
    public double At(double progress, int step) => step < warmupSteps
        ? peak * (step + 1) / warmupSteps
        : peak * (0.1 + 0.9 * 0.5 * (1 + Math.Cos(Math.PI * Math.Min(1, progress))));

    /// <summary>
    /// The peak of a fit that continues a model: the rate its last fit ended at, where that is known and lower than
    /// <paramref name="rate"/>, unless <paramref name="restart"/>. Going back to the first fit's peak, with Adam's moments
    /// starting afresh, undoes much of what the decay had gained (MNIST tokenizer of 1,300 steps, 300 more with its GAN:
    /// held-out 24.07 dB and rFID 10.16 before, 23.96 and 11.12 restarted at the peak, 26.29 and 8.56 continued from the
    /// rate it ended at; going on down the cosine of a 1,600-step fit instead, from 8.9e-5, gave 24.42 and 8.99). A model
    /// whose first fit was short gains from the restart (an MNIST prior of 150 steps, 150 more: validation 3.56 nats
    /// restarted, as 300 steps in one fit, 4.06 continued).
    /// </summary>
    public static double ContinuedPeak(double rate, double ended, bool restart) => restart || ended <= 0 ? rate : Math.Min(rate, ended);
}
