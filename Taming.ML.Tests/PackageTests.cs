using System.Globalization;
using System.IO.Compression;

namespace Taming.ML.Tests;

/// <summary>
/// The NuGet package as an app gets it: packed from the library, referenced by a fresh project outside the repository
/// (restored from that package and the machine's NuGet cache, nothing downloaded), built and run. It guards what only a
/// package consumer sees: the buildTransitive targets (libstdc++ fix, ResNet18 copy) and the package's contents.
/// </summary>
[TestClass]
public sealed class PackageTests
{
    private const string Version = "0.0.0-packagetest";

    [TestMethod]
    [Timeout(600_000, CooperativeCancellation = true)]
    public void AnAppReferencingThePackageBuildsAndTrainsWithThePerceptualTerm()
    {
        string repo = Dotnet.RepositoryRoot();
        string work = Directory.CreateTempSubdirectory("taming-package-").FullName;
        string cache = GlobalPackagesFolder();
        try
        {
            string feed = Path.Combine(work, "feed");
            Dotnet.Run(repo, "pack", Path.Combine(repo, "Taming.ML", "Taming.ML.csproj"), "-c", "Release", "-o", feed,
                $"-p:PackageVersion={Version}", "-nologo");
            string package = Path.Combine(feed, $"Taming.ML.{Version}.nupkg");
            using (var zip = ZipFile.OpenRead(package))
            {
                var entries = zip.Entries.Select(e => e.FullName).ToHashSet();
                foreach (var expected in new[] { "lib/net10.0/Taming.ML.dll", "lib/net10.0/Taming.ML.xml",
                             "buildTransitive/Taming.ML.targets", "buildTransitive/WeakenMissingLibStdCxxVersions.cs", "README.md" })
                    Assert.IsTrue(entries.Contains(expected), $"the package lacks {expected}: {string.Join(", ", entries)}");
            }

            string app = Path.Combine(work, "app");
            Directory.CreateDirectory(app);
            File.WriteAllText(Path.Combine(app, "app.csproj"), AppProject(feed, cache));
            File.WriteAllText(Path.Combine(app, "Program.cs"), AppProgram);
            // An empty nuget.config of its own: the user's sources (nuget.org) are never asked.
            File.WriteAllText(Path.Combine(app, "nuget.config"),
                "<configuration><packageSources><clear /></packageSources></configuration>");
            string build = Dotnet.Run(app, "build", "-c", "Release", "-nologo");
            StringAssert.DoesNotMatch(build, new System.Text.RegularExpressions.Regex("NU1608"),
                "the package's ML.NET dependency does not allow the app's ML.NET 6.0.0");
            StringAssert.DoesNotMatch(build, new System.Text.RegularExpressions.Regex("TAMING001"),
                "the ResNet18 was reported missing although the app downloads it");

            string output = Path.Combine(app, "bin", "Release", "net10.0");
            Assert.IsTrue(File.Exists(Path.Combine(output, "models", "ResNet18.onnx")), "the ResNet18 was not copied to models/");
            string digits = Path.Combine(repo, "Taming.ML.Samples", "data", "mnist");
            string run = Dotnet.Run(app, Path.Combine(output, "app.dll"),
                Path.Combine(digits, "mnist10k-images-idx3-ubyte.gz"), Path.Combine(digits, "mnist10k-labels-idx1-ubyte.gz"));
            StringAssert.Contains(run, "tokens 16 of 16 rows, 64 per row, identical after reload: True");
            var shrunk = System.Text.RegularExpressions.Regex.Match(run, @"ML\.NET (\S+): speckles shrunk to (\S+) to (\S+)");
            Assert.IsTrue(shrunk.Success, run);
            Assert.AreEqual("6.0.0", shrunk.Groups[1].Value, "the app ran on another ML.NET than the newest the package allows");
            float low = float.Parse(shrunk.Groups[2].Value, CultureInfo.InvariantCulture), high = float.Parse(shrunk.Groups[3].Value, CultureInfo.InvariantCulture);
            Assert.IsTrue(low > 103.5f && high < 151.5f, $"on ML.NET 6 CropAndResizeImages shrank speckles to {low} to {high}, not an even grey");
        }
        finally
        {
            Directory.Delete(work, recursive: true);
            // The test's version must not stay in the cache, where a later run would find the stale copy.
            string cached = Path.Combine(cache, "taming.ml", Version);
            if (Directory.Exists(cached)) Directory.Delete(cached, recursive: true);
            string id = Path.GetDirectoryName(cached)!;
            if (Directory.Exists(id) && !Directory.EnumerateFileSystemEntries(id).Any()) Directory.Delete(id);
        }
    }

    private static string AppProject(string feed, string cache) => $"""
        <Project Sdk="Microsoft.NET.Sdk">
          <PropertyGroup>
            <OutputType>Exe</OutputType>
            <TargetFramework>net10.0</TargetFramework>
            <Nullable>enable</Nullable>
            <ImplicitUsings>enable</ImplicitUsings>
            <NoWarn>$(NoWarn);NU1603</NoWarn>
            <RestoreSources>{feed};{cache}</RestoreSources>
          </PropertyGroup>
          <ItemGroup>
            <PackageReference Include="Taming.ML" Version="[{Version}]" />
            <PackageReference Include="TorchSharp-cpu" Version="[0.107.0]" />
            <PackageReference Include="Microsoft.ML" Version="[6.0.0]" />
            <PackageReference Include="Microsoft.ML.ImageAnalytics" Version="[6.0.0]" />
            <PackageDownload Include="Microsoft.ML.DnnImageFeaturizer.ResNet18" Version="[0.23.1]" />
          </ItemGroup>
        </Project>
        """;

    // A user's program: digits from the shipped IDX files, a tokenizer fitted with the perceptual term (which needs
    // the ResNet18 that the package's targets copy), saved, reloaded and run.
    private const string AppProgram = """
        using Microsoft.ML;
        using Microsoft.ML.Data;
        using Microsoft.ML.Transforms.Image;
        using Taming.ML.MLNet;
        using Taming.ML.Models;

        var ml = new MLContext(seed: 1);
        var digits = ml.Data.TakeRows(ml.Data.LoadFromIdx(args[0], args[1], padTo: 32), 16);
        var options = new VqganOptions
        {
            Resolution = 32, Channels = 1, Ch = 8, ChMult = new[] { 1, 2, 2 }, NumResBlocks = 1, ZChannels = 8, EmbedDim = 4,
            CodebookSize = 16, DiscLayers = 1, DiscChannels = 8, Steps = 2, BatchSize = 8, PerceptualWeight = 0.1,
        };
        var tokenizer = ml.Transforms.TokenizeImages("Tokens", "Image", options).Fit(digits);
        ml.Model.Save(tokenizer, digits.Schema, "tokenizer.zip");
        var reloaded = new MLContext(seed: 1).Model.Load("tokenizer.zip", out _);
        uint[][] Tokens(ITransformer t) => t.Transform(digits).GetColumn<VBuffer<uint>>("Tokens").Select(v => v.DenseValues().ToArray()).ToArray();
        var before = Tokens(tokenizer);
        var after = Tokens(reloaded);
        Console.WriteLine($"tokens {before.Length} of 16 rows, {before[0].Length} per row, identical after reload: {before.Zip(after).All(p => p.First.SequenceEqual(p.Second))}");

        // Pixels black or white at random, shrunk 31.25 times: an even grey where the resize filters (SkiaSharp 3 samples
        // single points unless told otherwise).
        var coin = new Random(7);
        var speckles = new byte[4 * 1000 * 750];
        for (int i = 0; i < 1000 * 750; i++)
        {
            byte v = coin.Next(2) == 0 ? (byte)0 : (byte)255;
            speckles[4 * i] = speckles[4 * i + 1] = speckles[4 * i + 2] = v;
            speckles[4 * i + 3] = 255;
        }
        var speckled = ml.Data.LoadFromEnumerable(new[] { new Speckled { Image = MLImage.CreateFromPixels(1000, 750, MLPixelFormat.Bgra32, speckles) } });
        var grey = ml.Transforms.CropAndResizeImages("Small", 32, 24, "Image").Append(ml.Transforms.ExtractPixels("Pixels", "Small"))
            .Fit(speckled).Transform(speckled).GetColumn<VBuffer<float>>("Pixels").First().DenseValues().ToArray();
        string version = typeof(MLContext).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
            .Cast<System.Reflection.AssemblyInformationalVersionAttribute>().Single().InformationalVersion.Split('+')[0];
        Console.WriteLine($"ML.NET {version}: speckles shrunk to {grey.Min()} to {grey.Max()}");

        class Speckled { [ImageType(750, 1000)] public MLImage Image { get; set; } = null!; }
        """;

    /// <summary>NuGet's global packages folder, where the repository's own restore put TorchSharp, ML.NET and the ResNet18.</summary>
    private static string GlobalPackagesFolder()
    {
        string listed = Dotnet.Run(AppContext.BaseDirectory, "nuget", "locals", "global-packages", "--list");
        const string prefix = "global-packages: ";
        string? line = listed.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal));
        Assert.IsNotNull(line, $"dotnet nuget locals did not name the global packages folder: {listed}");
        return line[prefix.Length..].TrimEnd('/');
    }
}
