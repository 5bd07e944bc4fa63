using System.Text.Json.Serialization;

namespace Taming.ML.Models;

/// <summary>
/// How a model computes. Parameters, optimizer state, losses and the codebook search stay float32 in every mode;
/// the modes differ in the arithmetic of convolutions, linear layers, attention and the VQGAN's group norms.
/// </summary>
[JsonConverter(typeof(JsonStringEnumConverter<Precision>))]
public enum Precision
{
    /// <summary>float32 as libtorch defaults it (the reference's setting): full-precision matrix products; on
    /// Ampere or newer GPUs cuDNN may still run convolutions in TF32, as PyTorch does by default.</summary>
    Float32,

    /// <summary>float32 storage with TF32 tensor-core matrix products and convolutions on Ampere or newer GPUs
    /// (10-bit mantissa); the same as <see cref="Float32"/> on the CPU.</summary>
    TensorFloat32,

    /// <summary>Mixed precision (as torch.autocast): convolutions, linear layers, attention and group norms (with
    /// float32 statistics) in bfloat16; the GPT's residual stream and layer norms, losses and the codebook search in
    /// float32. Fastest on GPUs with bf16 tensor cores and on CPUs with AVX512-BF16 or AMX.</summary>
    BFloat16,
}
