using Onnx;
using TorchSharp;
using static TorchSharp.torch;

namespace Taming.ML.Perceptual;

/// <summary>
/// The ImageNet-pretrained ResNet18 of the <c>Microsoft.ML.DnnImageFeaturizer.ResNet18</c> package (ONNX, exported
/// from CNTK: layer4 has three blocks, and stride-2 layers pad asymmetrically), run in TorchSharp so that it is
/// differentiable: the perceptual loss and the FID-style metrics stand on it. Frozen and always in eval mode. Inputs are
/// images in [−1, 1], (b, 1 or 3, h, w) of any size, RGB; gray is replicated to three channels, and images under 32 pixels are
/// enlarged to 32 (the network halves its input five times). The network's own preprocessing is
/// applied: 0–255 BGR minus the mean colour of its mean image (per channel, so that any input size works).
/// </summary>
public sealed class ResNet18Features : nn.Module<Tensor, Tensor>
{
    /// <summary>The package's network file, relative to the package folder.</summary>
    private const string PackageFile = "microsoft.ml.dnnimagefeaturizer.resnet18/0.23.1/tools/DnnImageModels/ResNet18Onnx/ResNet18.onnx";

    private abstract record Op(string Output);
    private sealed record Conv(string Input, string Output, int Index, long Stride, long[] Pads) : Op(Output);
    private sealed record Relu(string Input, string Output) : Op(Output);
    private sealed record MaxPool(string Input, string Output, long Kernel, long Stride, long[] Pads) : Op(Output);
    private sealed record Add(string A, string B, string Output) : Op(Output);
    private sealed record Pool(string Input, string Output) : Op(Output);

    private readonly List<Op> ops = new();
    private readonly HashSet<string> stageEnds = new();
    private readonly string input;
    private readonly Tensor bgrMean;

    private ResNet18Features(ModelProto model) : base(nameof(ResNet18Features))
    {
        var graph = model.Graph;
        var weights = graph.Initializer.ToDictionary(t => t.Name);
        var batchNorms = graph.Node.Where(n => n.OpType == "BatchNormalization").ToDictionary(n => n.Input[0]);
        var convs = new List<(Tensor Weight, Tensor Bias)>(); // registered as buffers below
        var renamed = new Dictionary<string, string>(); // a BatchNormalization's output is its folded Conv's
        string Name(string tensorName) => renamed.TryGetValue(tensorName, out var r) ? r : tensorName;
        input = graph.Input.Single(i => !weights.ContainsKey(i.Name)).Name;
        foreach (var node in graph.Node)
        {
            long[] Ints(string name) => node.Attribute.FirstOrDefault(a => a.Name == name)?.Ints.ToArray() ?? Array.Empty<long>();
            switch (node.OpType)
            {
                case "Conv":
                    var bn = batchNorms[node.Output[0]];
                    convs.Add(Fold(weights[node.Input[1]], bn.Input.Skip(1).Select(n => weights[n]).ToArray(),
                        bn.Attribute.FirstOrDefault(a => a.Name == "epsilon")?.F ?? 1e-5f));
                    ops.Add(new Conv(Name(node.Input[0]), node.Output[0], convs.Count - 1, Ints("strides")[0], Ints("pads")));
                    renamed[bn.Output[0]] = node.Output[0];
                    break;
                case "BatchNormalization": break; // folded into its Conv
                case "Relu": ops.Add(new Relu(Name(node.Input[0]), node.Output[0])); break;
                case "Add": ops.Add(new Add(Name(node.Input[0]), Name(node.Input[1]), node.Output[0])); break;
                case "MaxPool": ops.Add(new MaxPool(Name(node.Input[0]), node.Output[0], Ints("kernel_shape")[0], Ints("strides")[0], Ints("pads"))); break;
                case "AveragePool" or "GlobalAveragePool": ops.Add(new Pool(Name(node.Input[0]), node.Output[0])); break; // global: any input size
                default: throw new InvalidDataException($"Unexpected ONNX operator '{node.OpType}' in the ResNet18 file.");
            }
        }
        if (convs.Count != 22 || ops[^1] is not Pool)
            throw new InvalidDataException($"The ONNX file is not the featurizer's ResNet18 ({convs.Count} convolutions, expected 22, then a pooling).");
        // Stage outputs for the perceptual distance: what the max-pool, each stride-2 stage and the final pooling read.
        foreach (var op in ops.Skip(1))
            if (op is MaxPool or Pool || op is Conv { Stride: 2 }) stageEnds.Add(op switch { MaxPool m => m.Input, Pool p => p.Input, Conv c => c.Input, _ => "" });
        for (int i = 0; i < convs.Count; i++)
        {
            register_buffer($"conv{i}_weight", convs[i].Weight);
            register_buffer($"conv{i}_bias", convs[i].Bias);
        }
        bgrMean = tensor(new[] { 103.1f, 115.9f, 123.2f }).view(1, 3, 1, 1); // replaced by the shipped mean image's, when found
        register_buffer("bgr_mean", bgrMean);
        eval();
    }

    /// <summary>Images whose shorter side is below this are enlarged (bilinear) to it first.</summary>
    public const int MinimumSide = 32;

    /// <summary>Number of stage outputs <see cref="Stages"/> returns (after the stem, and after each of the four layers).</summary>
    public int StageCount => stageEnds.Count;

    /// <summary>
    /// Loads the network. <paramref name="path"/>: the ONNX file; by default models/ResNet18.onnx next to the app (the
    /// Taming.ML build copies it there), else the NuGet package cache.
    /// </summary>
    public static ResNet18Features Load(string? path = null, Device? device = null)
    {
        path ??= DefaultPath() ?? throw new FileNotFoundException(
            $"The ResNet18 network was not found in {Path.Combine(AppContext.BaseDirectory, "models", "ResNet18.onnx")} nor in the NuGet cache " +
            "(package Microsoft.ML.DnnImageFeaturizer.ResNet18 0.23.1), which the perceptual loss (VqganOptions.PerceptualWeight; 0 " +
            "leaves it out) and the FID-style metrics need. An app that references the Taming.ML package adds <PackageDownload " +
            "Include=\"Microsoft.ML.DnnImageFeaturizer.ResNet18\" Version=\"[0.23.1]\" /> to its project and builds again.");
        if (!File.Exists(path)) throw new FileNotFoundException($"The ResNet18 ONNX file '{path}' does not exist.", path);
        Native.TorchRuntime.EnsureLoaded();
        ModelProto model;
        try
        {
            model = ModelProto.Parser.ParseFromFile(path);
        }
        catch (Exception e) when (e is Google.Protobuf.InvalidProtocolBufferException or IOException)
        {
            throw new InvalidDataException($"'{path}' is not a readable ONNX file: {e.Message}", e);
        }
        var features = new ResNet18Features(model);
        var meanImage = Path.Combine(Path.GetDirectoryName(path)!, "..", "ResNetPrepOnnx", "ResNetPreprocess.onnx");
        if (File.Exists(meanImage)) features.UseMeanImage(ModelProto.Parser.ParseFromFile(meanImage));
        if (device != null) features.to(device);
        return features;
    }

    /// <summary>models/ResNet18.onnx next to the app, else the package in the NuGet cache, else null.</summary>
    public static string? DefaultPath()
    {
        var local = Path.Combine(AppContext.BaseDirectory, "models", "ResNet18.onnx");
        if (File.Exists(local)) return local;
        var root = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var cached = Path.Combine(root, PackageFile);
        return File.Exists(cached) ? cached : null;
    }

    /// <summary>The 512-d pooled features (b, 512) of images in [−1, 1].</summary>
    public override Tensor forward(Tensor images) => Run(images, null).flatten(1);

    /// <summary>The activations after the stem and after each of the four layers, for images in [−1, 1].</summary>
    public IReadOnlyList<Tensor> Stages(Tensor images)
    {
        var stages = new List<Tensor>();
        Run(images, stages);
        return stages;
    }

    /// <summary>Keeps eval mode whatever a parent asks: its batch norms are folded and carry no batch statistics.</summary>
    public override void train(bool on = true) => base.train(false);

    private Tensor Run(Tensor images, List<Tensor>? stages)
    {
        if (images.dim() != 4 || images.shape[1] is not (1 or 3))
            throw new ArgumentException($"ResNet18 features need images (b, 1 or 3, h, w); got {string.Join("×", images.shape)}.");
        // Read through the registered buffers, so that the module's to(device) is followed.
        var buffers = named_buffers().ToDictionary(b => b.name, b => b.buffer);
        var rgb = images.shape[1] == 1 ? images.expand(-1, 3, -1, -1) : images;
        long side = Math.Min(rgb.shape[2], rgb.shape[3]);
        if (side < MinimumSide) // the network halves five times
            rgb = nn.functional.interpolate(rgb, scale_factor: new[] { (double)MinimumSide / side, (double)MinimumSide / side }, mode: InterpolationMode.Bilinear, align_corners: false);
        var bgr = (rgb.flip(1) + 1) * 127.5 - buffers["bgr_mean"];
        var values = new Dictionary<string, Tensor> { [input] = Modules.MemoryLayout.Preferred(bgr) };
        foreach (var op in ops)
        {
            // A stage's input, once for both of its stride-2 branches (the stage list already holds it as it was).
            if (op is Conv { Stride: 2 } s && s.Input != input) values[s.Input] = EvenSized(values[s.Input]);
            var y = op switch
            {
                Conv c => Modules.MixedPrecision.Conv2d(Pad(values[c.Input], c.Pads), buffers[$"conv{c.Index}_weight"], buffers[$"conv{c.Index}_bias"], new[] { c.Stride, c.Stride }),
                Relu r => nn.functional.relu(values[r.Input]),
                Add a => values[a.A] + values[a.B],
                // Zero padding is the ONNX max-pool's −∞ here: it follows a ReLU.
                MaxPool m => nn.functional.max_pool2d(Pad(values[m.Input], m.Pads), m.Kernel, m.Stride),
                Pool p => values[p.Input].mean(new long[] { 2, 3 }, keepdim: true),
                _ => throw new InvalidOperationException(),
            };
            values[op.Output] = y;
            if (stages != null && stageEnds.Contains(op.Output)) stages.Add(Modules.MixedPrecision.Float(y));
        }
        return Modules.MixedPrecision.Float(values[ops[^1].Output]);
    }

    /// <summary>
    /// A stage's input of odd height or width with one zero row or column appended (bottom, right). CNTK pads a stage's
    /// stride-2 3×3 convolution at the top and left only, so on an odd side it gives one row fewer than the stage's 1×1
    /// stride-2 shortcut, and their sum fails (inputs of 36–46, 52–62, 68–94… pixels a side); on the even side both halve
    /// it exactly. Zero is what the ReLU before it puts out where there is nothing, as the max-pool's padding assumes.
    /// </summary>
    private static Tensor EvenSized(Tensor x) =>
        (x.shape[2] | x.shape[3]) % 2 == 0 ? x : nn.functional.pad(x, new[] { 0L, x.shape[3] % 2, 0L, x.shape[2] % 2 });

    /// <summary>ONNX pads (top, left, bottom, right) as an explicit pad, so that CNTK's asymmetric padding is kept.</summary>
    private static Tensor Pad(Tensor x, long[] pads) =>
        pads.All(p => p == 0) ? x : nn.functional.pad(x, new[] { pads[1], pads[3], pads[0], pads[2] });

    /// <summary>A convolution followed by a batch norm (scale, bias, mean, var) as one convolution with a bias.</summary>
    private static (Tensor Weight, Tensor Bias) Fold(TensorProto weight, TensorProto[] norm, float epsilon)
    {
        var w = Read(weight).to(ScalarType.Float64);
        var (scale, bias, mean, variance) = (Read(norm[0]).to(ScalarType.Float64), Read(norm[1]).to(ScalarType.Float64), Read(norm[2]).to(ScalarType.Float64), Read(norm[3]).to(ScalarType.Float64));
        var factor = scale / (variance + epsilon).sqrt();
        return ((w * factor.view(-1, 1, 1, 1)).to(ScalarType.Float32), (bias - mean * factor).to(ScalarType.Float32));
    }

    private static Tensor Read(TensorProto t)
    {
        var shape = t.Dims.ToArray();
        if (t.FloatData.Count > 0) return tensor(t.FloatData.ToArray(), shape);
        var raw = t.RawData.ToByteArray();
        var values = new float[raw.Length / 4];
        Buffer.BlockCopy(raw, 0, values, 0, raw.Length);
        return tensor(values, shape);
    }

    private void UseMeanImage(ModelProto preprocess)
    {
        var mean = Read(preprocess.Graph.Initializer.Single(t => t.Dims.Count == 4)); // (1, 3, 224, 224), BGR
        bgrMean.copy_(mean.mean(new long[] { 0, 2, 3 }).view(1, 3, 1, 1));
    }
}
