using TorchSharp;
using static TorchSharp.torch;

namespace Taming.ML.Modules;

/// <summary>
/// The memory layout the convolutional networks run in, chosen by device, network and task and set on their inputs
/// (libtorch carries an input's layout through convolutions, norms and sums). On a GPU, channels-last for inference
/// and the standard (contiguous NCHW) layout of the reference for training, unless asked otherwise: libtorch's CUDA
/// group norm returns the standard layout, so channels-last runs its group norms through
/// <see cref="Normalize.KeepingLayout"/>. On a CPU, channels-last where it pays: oneDNN's convolutions run it without
/// reordering every activation, but libtorch's CPU group norm in channels-last is slow with few channels per group
/// (10–25× slower than in the standard layout at one or two), and narrow networks gain nothing from it, so they stay
/// standard.
/// </summary>
internal static class MemoryLayout
{
    /// <summary><paramref name="images"/> (b, c, h, w) channels-last when <paramref name="channelsLast"/>, else
    /// contiguous; a view when it is in that layout already.</summary>
    public static Tensor Preferred(Tensor images, bool channelsLast) =>
        channelsLast
            ? images.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2) // TorchSharp has no memory_format argument
            : images.contiguous();

    /// <summary><paramref name="images"/> in the layout for its device when no option says otherwise: channels-last
    /// on a CPU, standard on a GPU.</summary>
    public static Tensor Preferred(Tensor images) => Preferred(images, images.device_type == DeviceType.CPU);

    /// <summary>
    /// Whether a network runs channels-last on <paramref name="device"/>: as <paramref name="requested"/> when given.
    /// Otherwise on a GPU for inference (no <paramref name="gradients"/>): the f16 VQGAN on an H200 encoded 1.29× and
    /// decoded 1.22× faster than in the standard layout in bf16, 1.25× and 1.21× in float32, but trained 1.6× slower
    /// in bf16 and 1.28× slower in float32 (the backward of <see cref="Normalize.KeepingLayout"/> is autograd's, not
    /// libtorch's fused one). On a CPU, when its group norms are at least 128 channels wide everywhere (so at least 4
    /// in each of at most 32 groups): measured on the VQGAN (64², channel multipliers 1, 2, 2, 4) with one-channel
    /// groups, at base width 32 the standard layout trains 1.3× faster, at 64 the two are even, at 128 channels-last
    /// decodes 1.3× faster; with four-channel groups at base width 32 (the sample's tokenizer) the standard layout
    /// still trains as fast or faster.
    /// </summary>
    public static bool ChannelsLast(bool? requested, DeviceType device, IEnumerable<long> groupNormWidths, bool gradients) =>
        requested ?? (device == DeviceType.CPU ? groupNormWidths.Min() >= 128 : !gradients);

    /// <summary>Whether <paramref name="x"/> (b, c, h, w) is laid out channels-last: channels vary fastest, then
    /// width, height and batch, with no gaps.</summary>
    public static bool IsChannelsLast(Tensor x)
    {
        if (x.dim() != 4) return false;
        long c = x.shape[1], h = x.shape[2], w = x.shape[3];
        return (c == 1 || x.stride(1) == 1) && (w == 1 || x.stride(3) == c) && (h == 1 || x.stride(2) == w * c)
               && (x.shape[0] == 1 || x.stride(0) == h * w * c);
    }
}
