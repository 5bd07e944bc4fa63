using TorchSharp;
using Taming.ML.Modules;
using static TorchSharp.torch;

namespace Taming.ML.Native;

/// <summary>
/// libtorch runs CPU convolutions through oneDNN, whose kernels compute wrong results on some machines. On an AMD EPYC
/// (Zen 5) virtual machine, with AVX-512 and AVX2 kernels alike, convolutions whose channel counts leave part of one of
/// its channel blocks came back 10–60 % off (in float32 and bfloat16, forward and backward), strided 1×1 ones in
/// channels-last too, input gradients also held blocks of NaN now and then (a VQGAN fit diverged within 30 steps), and
/// some shapes corrupted the heap; libtorch's own convolutions were right in all 4,056 shapes tried, but trained the
/// sample's tokenizer 3–4× slower. So when libtorch loads, a few of those convolutions are compared with libtorch's
/// own. Where they disagree, convolutions with partial blocks are computed block-aligned from then on
/// (<see cref="BlockAlignedConvolution"/>), which keeps oneDNN's speed; should the aligned ones disagree too, oneDNN is
/// turned off for the process. The environment variable <c>TAMING_ONEDNN</c> overrides the check: <c>on</c> trusts
/// oneDNN as it is, <c>aligned</c> aligns blocks, <c>off</c> turns oneDNN off.
/// </summary>
internal static class OneDnnCheck
{
    /// <summary>Whether CPU convolutions with partial channel blocks are computed block-aligned.</summary>
    public static bool AlignsChannelBlocks { get; private set; }

    /// <summary>What the check found and did, for logs; null where oneDNN is used as it is.</summary>
    public static string? Finding { get; private set; }

    /// <summary>Whether libtorch uses oneDNN now (null where it cannot be read).</summary>
    public static bool? Enabled => Flag.Value?.Value;

    /// <summary>at::Context's flag for oneDNN (PyTorch's <c>torch.backends.mkldnn.enabled</c>).</summary>
    private static readonly Lazy<ContextFlag?> Flag = new(() => ContextFlag.Find("userEnabledMkldnn", "setUserEnabledMkldnn"));

    /// <summary>Runs the check once libtorch is loaded (see the class summary).</summary>
    public static void Run()
    {
        if (Flag.Value is not { } flag || !flag.Value) return; // no oneDNN to check
        void UseOneDnn(bool on) => flag.Value = on;
        switch (Environment.GetEnvironmentVariable("TAMING_ONEDNN")?.Trim().ToLowerInvariant())
        {
            case "on": return;
            case "aligned":
                AlignsChannelBlocks = true;
                Finding = "channel blocks aligned (TAMING_ONEDNN=aligned)";
                return;
            case "off":
                UseOneDnn(false);
                Finding = "oneDNN is off (TAMING_ONEDNN=off)";
                return;
        }
        double plain = Disagreement(UseOneDnn);
        if (plain <= 1) return;
        AlignsChannelBlocks = true;
        double aligned = Disagreement(UseOneDnn);
        if (aligned <= 1)
        {
            Finding = "oneDNN's convolutions with partial channel blocks computed wrong results on this CPU (a check at load), so they run block-aligned";
            return;
        }
        AlignsChannelBlocks = false;
        UseOneDnn(false);
        Finding = "oneDNN's convolutions computed wrong results on this CPU even block-aligned (a check at load), so oneDNN is off: libtorch's own convolutions are slower";
    }

    /// <summary>The largest relative difference, in units of its dtype's tolerance (rounding differs between the two
    /// implementations: 10⁻³ in float32, 2·10⁻² in bfloat16, where the wrong results were 4–60 % off), between oneDNN's results (block-aligned where
    /// <see cref="AlignsChannelBlocks"/>) and libtorch's own, over convolutions that were wrong on the machine described
    /// above: partial channel blocks in float32 and bfloat16 (of outputs, and in bfloat16 of few inputs), forward and backward,
    /// and a channels-last strided 1×1.</summary>
    private static double Disagreement(Action<bool> useOneDnn)
    {
        using var scope = NewDisposeScope();
        using var gradients = enable_grad(); // whatever scope the first call to Taming.ML came from
        var generator = new Generator(7);
        var cases = new[]
        {
            (In: 24L, Out: 24L, Kernel: 3L, Stride: 1L, Side: 16L, ChannelsLast: false, Dtype: ScalarType.Float32),
            (12, 1, 3, 1, 19, false, ScalarType.Float32),
            (48, 64, 3, 2, 17, false, ScalarType.Float32),
            (256, 512, 1, 2, 14, true, ScalarType.Float32),
            (32, 3, 3, 1, 32, false, ScalarType.BFloat16),
            (12, 16, 3, 1, 13, false, ScalarType.BFloat16),
        };
        double worst = 0;
        foreach (var c in cases)
        {
            var x = MemoryLayout.Preferred(randn(new[] { 2, c.In, c.Side, c.Side }, generator: generator).to(c.Dtype), c.ChannelsLast);
            var w = (randn(new[] { c.Out, c.In, c.Kernel, c.Kernel }, generator: generator) / Math.Sqrt(c.In * c.Kernel * c.Kernel)).to(c.Dtype);
            long[] stride = { c.Stride, c.Stride }, padding = { c.Kernel / 2, c.Kernel / 2 };
            (Tensor Output, Tensor InputGradient) Run(bool oneDnn)
            {
                useOneDnn(oneDnn);
                var input = x.detach().requires_grad_();
                var y = MixedPrecision.Conv2d(input, w, null, stride, padding);
                y.backward(new[] { ones_like(y) });
                return (y.detach().to(ScalarType.Float32), input.grad!.to(ScalarType.Float32));
            }
            var (ownOutput, ownGradient) = Run(false);
            var (output, gradient) = Run(true);
            foreach (var (ours, own) in new[] { (output, ownOutput), (gradient, ownGradient) })
            {
                double difference = ((ours - own).norm() / own.norm()).item<float>();
                double tolerance = c.Dtype == ScalarType.BFloat16 ? 2e-2 : 1e-3;
                worst = Math.Max(worst, double.IsFinite(difference) ? difference / tolerance : double.PositiveInfinity);
            }
        }
        return worst;
    }
}
