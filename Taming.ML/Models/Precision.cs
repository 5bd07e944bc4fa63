using System.Text.Json.Serialization;

namespace Taming.ML.Models;

/// <summary>
/// How a model computes. Parameters, optimizer state, norms, losses and the codebook search stay float32 in every
/// mode; the modes differ in the arithmetic of convolutions, linear layers and attention.
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

    /// <summary>Mixed precision: convolutions, linear layers and attention in bfloat16, everything else float32
    /// (what torch.autocast does). Fastest on GPUs with bf16 tensor cores and on CPUs with AVX512-BF16 or AMX.</summary>
    BFloat16,
}
