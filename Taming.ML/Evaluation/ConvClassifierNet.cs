using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace Taming.ML.Evaluation;

/// <summary>A small CNN for judging images: two conv–ReLU–pool stages, then two linear layers.</summary>
internal sealed class ConvClassifierNet : Module<Tensor, Tensor>
{
    private readonly TorchSharp.Modules.Sequential features, classifier;

    public ConvClassifierNet(int channels, int resolution, int classes) : base(nameof(ConvClassifierNet))
    {
        features = Sequential(
            ("conv1", Conv2d(channels, 32, 3, padding: 1)), ("relu1", ReLU()), ("pool1", MaxPool2d(2)),
            ("conv2", Conv2d(32, 64, 3, padding: 1)), ("relu2", ReLU()), ("pool2", MaxPool2d(2)));
        int side = resolution / 4;
        classifier = Sequential(
            ("flatten", Flatten()), ("fc1", Linear(64L * side * side, 128)), ("relu", ReLU()),
            ("drop", Dropout(0.3)), ("fc2", Linear(128, classes)));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => classifier.forward(features.forward(x));
}
