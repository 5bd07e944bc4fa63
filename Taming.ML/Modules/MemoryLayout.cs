using TorchSharp;
using static TorchSharp.torch;

namespace Taming.ML.Modules;

/// <summary>
/// The memory layout the convolutional networks run in, chosen by device and network and set on their inputs
/// (libtorch carries an input's layout through convolutions, norms and sums). On a GPU, the standard (contiguous
/// NCHW) layout of the reference: libtorch's CUDA group norm returns that layout, so channels-last would be converted
/// back and forth at every block. On a CPU, channels-last where it pays: oneDNN's convolutions run it without
/// reordering every activation, but libtorch's CPU group norm in channels-last is slow with few channels per group
/// (10–25× slower than in the standard layout at one or two), and narrow networks gain nothing from it, so they stay standard.
/// </summary>
internal static class MemoryLayout
{
    /// <summary><paramref name="images"/> (b, c, h, w) in the layout for its device: channels-last on a CPU unless
    /// <paramref name="channelsLastOnCpu"/> is false; a view when it is in it already.</summary>
    public static Tensor Preferred(Tensor images, bool channelsLastOnCpu = true) =>
        images.device_type == DeviceType.CPU && channelsLastOnCpu
            ? images.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2) // TorchSharp has no memory_format argument
            : images.contiguous();

    /// <summary>
    /// Whether a network whose group norms have these widths runs faster channels-last on a CPU: with at least 128
    /// channels everywhere (so at least 4 in each of at most 32 groups). Measured on the VQGAN (64², channel
    /// multipliers 1, 2, 2, 4) with one-channel groups: at base width 32 the standard layout trains 1.3× faster, at 64
    /// the two are even, at 128 channels-last decodes 1.3× faster; with four-channel groups at base width 32 (the
    /// sample's tokenizer) the standard layout still trains as fast or faster.
    /// </summary>
    public static bool ChannelsLastOnCpu(IEnumerable<long> groupNormWidths) => groupNormWidths.Min() >= 128;
}
