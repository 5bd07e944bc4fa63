using System.Runtime.CompilerServices;

// ML.NET's model persistence (ModelSaveContext, ModelLoadContext, LoadableClass) is internal;
// see build/Publicize.targets for why and how Taming.ML compiles against it.
[assembly: IgnoresAccessChecksTo("Microsoft.ML.Core")]
[assembly: IgnoresAccessChecksTo("Microsoft.ML.Data")]
[assembly: InternalsVisibleTo("Taming.ML.Tests")]
