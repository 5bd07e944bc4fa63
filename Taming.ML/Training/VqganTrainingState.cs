using Taming.ML.Modules;

namespace Taming.ML.Training;

/// <summary>
/// What a tokenizer's training leaves for a later fit to continue from: the steps it made, how many of them trained the
/// GAN, and, once the GAN has trained, its discriminator (a continued GAN phase then goes on against the same critic
/// rather than an untrained one). Adam's moments are not kept: a continued fit warms its learning rate up again.
/// </summary>
internal sealed record VqganTrainingState(int Steps, int GanSteps, NLayerDiscriminator? Discriminator)
{
    /// <summary>The state of a model saved before training states were (or never trained here).</summary>
    public static readonly VqganTrainingState Unknown = new(0, 0, null);
}
