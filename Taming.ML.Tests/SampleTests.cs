namespace Taming.ML.Tests;

/// <summary>
/// The sample program's commands, run as a user runs them (one process each, from the sample's build output), on a few
/// of its embedded MNIST digits: what they save is loaded and checked here.
/// </summary>
[TestClass]
public sealed class SampleTests
{
    private static readonly string Temp = Path.Combine(Path.GetTempPath(), "taming-sample-" + Environment.ProcessId);

    [ClassCleanup]
    public static void Cleanup()
    {
        if (Directory.Exists(Temp)) Directory.Delete(Temp, recursive: true);
    }

    /// <summary>The sample's folder in its build output, built as this project is (a project reference builds it).</summary>
    private static string SampleOutput()
    {
        string root = Dotnet.RepositoryRoot();
        // bin/<configuration>/<framework>/<runtime>: the same below both projects.
        string build = Path.GetRelativePath(Path.Combine(root, "Taming.ML.Tests"), AppContext.BaseDirectory);
        return Path.Combine(root, "Taming.ML.Samples", build);
    }

    private static string Sample(params string[] arguments)
    {
        string output = SampleOutput();
        return Dotnet.Run(Temp, new[] { Path.Combine(output, "Taming.ML.Samples.dll") }.Concat(arguments).ToArray());
    }

    [TestMethod]
    public void TrainTokenizerTrainPriorAndGenerateRunOnTheEmbeddedDigits()
    {
        Directory.CreateDirectory(Temp);
        string mnist = Path.Combine(SampleOutput(), "data", "mnist");
        string images = Path.Combine(mnist, "mnist10k-images-idx3-ubyte.gz"), labels = Path.Combine(mnist, "mnist10k-labels-idx1-ubyte.gz");

        string trained = Sample("train-tokenizer", "--images", images, "--take", "64", "--steps", "3", "--disc-start", "2",
            "--perceptual-weight", "0", "--checkpoint-minutes", "0.0001", "--output", "tokenizer.zip");
        StringAssert.Contains(trained, "Checkpoint at step 1: saved tokenizer.zip (after a crash, the same command with --resume tokenizer.zip --steps 2 goes on).");
        StringAssert.Contains(trained, "Saved the tokenizer to tokenizer.zip (3 steps trained, 1 with the GAN)");
        var tokenizer = TamingCatalog.FindTokenizer(new MLContext().Model.Load(Path.Combine(Temp, "tokenizer.zip"), out _));
        Assert.AreEqual((32, 1, 3, 1), (tokenizer.Resolution, tokenizer.Channels, tokenizer.TrainedSteps, tokenizer.GanSteps),
            "digits padded to 32×32, with room for the discriminator: the GAN trains from step 2");

        string prior = Sample("train-prior", "--tokenizer", "tokenizer.zip", "--images", images, "--labels", labels, "--take", "64",
            "--holdout", "0.25", "--steps", "3", "--layers", "1", "--heads", "2", "--width", "32", "--output", "prior.zip");
        StringAssert.Contains(prior, "held-out token grids (GptOptions.ValidationSet)");
        StringAssert.Contains(prior, "Saved the class-conditioned prior to prior.zip");

        string generated = Sample("generate", "--tokenizer", "tokenizer.zip", "--prior", "prior.zip", "--all-labels", "--count", "2", "--output", "samples.png");
        using var grid = SixLabors.ImageSharp.Image.Load(Path.Combine(Temp, "samples.png"));
        Assert.IsTrue(grid.Width >= 2 * 32 && grid.Height >= 10 * 32, $"{grid.Width}×{grid.Height}: two samples of each of the ten digits\n{generated}");
    }
}
