global using Microsoft.ML;
global using Microsoft.ML.Data;
global using Microsoft.VisualStudio.TestTools.UnitTesting;
global using Taming.ML.MLNet;
global using Taming.ML.Models;

// TorchSharp's random seed is process-wide: tests run one at a time.
[assembly: DoNotParallelize]
