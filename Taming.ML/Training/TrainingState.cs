using Taming.ML.Modules;

namespace Taming.ML.Training;

/// <summary>
/// What a tokenizer's training leaves for a later fit to continue from: the steps it made, how many of them trained the
/// GAN, the learning rate of its last step (0: unknown), and, once the GAN has trained, its discriminator (a continued GAN
/// phase then goes on against the same critic rather than an untrained one). Adam's moments are not kept: a continued
/// fit warms its learning rate up again, to where it ended (<see cref="LearningRateSchedule.For"/>).
/// </summary>
internal sealed record VqganTrainingState(int Steps, int GanSteps, double LearningRate, NLayerDiscriminator? Discriminator)
{
    /// <summary>The state of a model saved before training states were (or never trained here).</summary>
    public static readonly VqganTrainingState Unknown = new(0, 0, 0, null);
}

/// <summary>What a prior's training leaves for a later fit to continue from: the steps it made and the learning rate of
/// its last step (0: unknown).</summary>
internal sealed record PriorTrainingState(int Steps, double LearningRate)
{
    /// <summary>The state of a prior saved before training states were.</summary>
    public static readonly PriorTrainingState Unknown = new(0, 0);
}
