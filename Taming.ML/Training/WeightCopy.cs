using static TorchSharp.torch;

namespace Taming.ML.Training;

internal static class WeightCopy
{
    /// <summary>Copies every parameter and buffer of <paramref name="source"/> (the same architecture, on any device) into
    /// <paramref name="target"/>'s own tensors, so that training the target leaves the source as it was.</summary>
    public static void CopyWeightsFrom(this nn.Module target, nn.Module source)
    {
        var from = source.state_dict();
        using var _ = no_grad();
        foreach (var (name, tensor) in target.state_dict()) tensor.copy_(from[name]);
    }
}
