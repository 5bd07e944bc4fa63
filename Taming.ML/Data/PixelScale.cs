using static TorchSharp.torch;

namespace Taming.ML.Data;

/// <summary>The one place that maps pixel values 0–255 to the model's [−1, 1] range and back.</summary>
internal static class PixelScale
{
    /// <summary>0–255 (any dtype) → float32 in [−1, 1].</summary>
    public static Tensor ToModel(Tensor pixels) => pixels.to(ScalarType.Float32) / 127.5f - 1f;

    /// <summary>Model output → bytes 0–255, rounded and clamped.</summary>
    public static Tensor ToBytes(Tensor model) => ((model + 1f) * 127.5f).round().clamp(0, 255).to(ScalarType.Byte);

    /// <summary>Pixel values 0–255 (floats) → bytes, rounded and clamped.</summary>
    public static byte[] ToBytes(ReadOnlySpan<float> pixels)
    {
        var bytes = new byte[pixels.Length];
        for (int i = 0; i < pixels.Length; i++) bytes[i] = (byte)Math.Clamp(MathF.Round(pixels[i]), 0, 255);
        return bytes;
    }

    /// <summary>One value 0–255 → [−1, 1].</summary>
    public static float ToModel(float pixel) => pixel / 127.5f - 1f;
}
