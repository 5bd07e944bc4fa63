global using Microsoft.VisualStudio.TestTools.UnitTesting;

// TorchSharp's random seed is process-wide: tests run one at a time.
[assembly: DoNotParallelize]
