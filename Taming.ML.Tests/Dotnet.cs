using System.Diagnostics;

namespace Taming.ML.Tests;

/// <summary>The SDK's dotnet run as a child process, as a user runs it from a shell.</summary>
internal static class Dotnet
{
    /// <summary>Runs dotnet in <paramref name="folder"/>; its output, or a failure that shows it.</summary>
    public static string Run(string folder, params string[] arguments)
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            WorkingDirectory = folder, RedirectStandardOutput = true, RedirectStandardError = true,
        };
        foreach (var a in arguments) start.ArgumentList.Add(a);
        // The outer build's MSBuild settings (SDK paths, node reuse) are not the child's.
        foreach (var name in start.Environment.Keys.Where(k => k.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase)).ToList())
            start.Environment.Remove(name);
        start.Environment["MSBUILDDISABLENODEREUSE"] = "1";
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        string output = stdout + stderr.Result;
        if (process.ExitCode != 0) Assert.Fail($"dotnet {string.Join(' ', arguments)} exited with {process.ExitCode}:\n{Tail(output)}");
        return output;
    }

    private static string Tail(string text) => text.Length <= 6000 ? text : "…" + text[^6000..];

    public static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Taming.sln"))) return dir.FullName;
        throw new InvalidOperationException($"Taming.sln not found above {AppContext.BaseDirectory}.");
    }
}
