using TorchSharp;
using static TorchSharp.torch;

namespace Taming.ML.Modules;

/// <summary>
/// A CPU convolution computed so that oneDNN sees only whole channel blocks, for machines where its kernels get partial
/// blocks wrong (<see cref="Native.OneDnnCheck"/>): input channels are padded with zero channels (to a multiple of 16,
/// of 32 at strides above 1) and output channels with zero filters (to a multiple of 16), which are dropped again; a
/// 1×1 convolution becomes a matrix product over channels (oneDNN's channels-last 1×1 kernels were wrong even with
/// whole blocks). In bfloat16 fewer than 16 input channels are padded to 16 too (float32 gets them right, bfloat16
/// did not: 10–25 % off, and different from run to run). The result and its gradients are the convolution's: on the machine
/// described there, none wrong of the 24,000 float32 and 2,000 bfloat16 shapes and layouts tried against float64,
/// where oneDNN alone got up to 23 % of them wrong.
/// </summary>
internal static class BlockAlignedConvolution
{
    /// <summary>Whether a convolution of <paramref name="x"/> with <paramref name="weight"/> is rerouted: on a CPU where the
    /// check asked for it, when some channel block would be partial.</summary>
    public static bool Applies(Tensor x, Tensor weight, long[] stride, long groups)
    {
        if (!Native.OneDnnCheck.AlignsChannelBlocks || x.device_type != DeviceType.CPU || groups != 1) return false;
        long outChannels = weight.shape[0], inChannels = weight.shape[1];
        bool strided = stride.Any(s => s > 1);
        return IsPointwise(weight) || outChannels % 16 != 0 || PaddedInputChannels(inChannels, strided, x.dtype) != inChannels;
    }

    /// <summary>The convolution, computed as the class summary says.</summary>
    public static Tensor Conv2d(Tensor x, Tensor weight, Tensor? bias, long[] stride, long[]? padding, long[]? dilation)
    {
        long outChannels = weight.shape[0], inChannels = weight.shape[1];
        if (IsPointwise(weight) && (padding is null || padding.All(p => p == 0)))
        {
            long sy = stride[0], sx = stride.Length > 1 ? stride[1] : sy;
            var sampled = sy == 1 && sx == 1 ? x : x[.., .., TensorIndex.Slice(null, null, sy), TensorIndex.Slice(null, null, sx)];
            var product = nn.functional.linear(sampled.permute(0, 2, 3, 1), weight.view(outChannels, inChannels), bias).permute(0, 3, 1, 2);
            return MemoryLayout.IsChannelsLast(x) ? product : product.contiguous(); // the layout the input came in
        }
        long alignedIn = PaddedInputChannels(inChannels, stride.Any(s => s > 1), x.dtype);
        if (alignedIn != inChannels)
        {
            x = cat(new[] { x, zeros(new[] { x.shape[0], alignedIn - inChannels, x.shape[2], x.shape[3] }, x.dtype, x.device) }, 1);
            weight = cat(new[] { weight, zeros(new[] { outChannels, alignedIn - inChannels, weight.shape[2], weight.shape[3] }, weight.dtype, weight.device) }, 1);
        }
        long extra = (outChannels + 15) / 16 * 16 - outChannels;
        if (extra == 0) return nn.functional.conv2d(x, weight, bias, stride, padding, dilation);
        weight = cat(new[] { weight, zeros(new[] { extra, weight.shape[1], weight.shape[2], weight.shape[3] }, weight.dtype, weight.device) });
        bias = bias is null ? null : cat(new[] { bias, zeros(new[] { extra }, bias.dtype, bias.device) });
        // Without the extra channels, in the layout the convolution would have returned.
        return MemoryLayout.Preferred(nn.functional.conv2d(x, weight, bias, stride, padding, dilation).narrow(1, 0, outChannels), MemoryLayout.IsChannelsLast(x));
    }

    private static bool IsPointwise(Tensor weight) => weight.shape[2] == 1 && weight.shape[3] == 1;

    /// <summary>Input channels oneDNN gets right: up to 16 as they are in float32 and as 16 in bfloat16; more as a
    /// multiple of 16, of 32 with a stride.</summary>
    private static long PaddedInputChannels(long channels, bool strided, ScalarType dtype)
    {
        if (channels <= 16) return dtype == ScalarType.BFloat16 ? 16 : channels;
        long block = strided ? 32 : 16;
        return (channels + block - 1) / block * block;
    }
}
