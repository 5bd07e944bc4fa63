using static TorchSharp.torch;
using Taming.ML.Models;
using Taming.ML.Native;

namespace Taming.ML.Sampling;

/// <summary>
/// The cached sampling step with fixed shapes: the previous token, its position and the column to fill live in
/// device buffers that the step itself moves on, and attention spans every position the sampling fills (the prefix and
/// the image tokens before the last) under a mask. The same work
/// can then be captured once as a CUDA graph and replayed for every token (<see cref="Run"/>), which takes the
/// host's cost per libtorch call (hundreds per token) out of the loop.
/// </summary>
internal sealed class StaticTokenStep : IDisposable
{
    private readonly Gpt model;
    private readonly KvCache cache;
    private readonly Tensor tokens, uniforms;
    private readonly SamplingOptions options;
    private readonly Tensor last, positions, column, queryAt;
    private readonly long keys;

    /// <param name="model">The prior (in eval mode, inside the caller's inference scope).</param>
    /// <param name="cache">The cache, holding the prefix and the first token's position onwards empty.</param>
    /// <param name="tokens">The (b, n) output; column 0 holds <paramref name="first"/>.</param>
    /// <param name="uniforms">The (b, n) draws.</param>
    /// <param name="first">The first image token (b).</param>
    /// <param name="prefixLength">Positions before the first image token.</param>
    /// <param name="options">Sampling filters.</param>
    public StaticTokenStep(Gpt model, KvCache cache, Tensor tokens, Tensor uniforms, Tensor first, long prefixLength, SamplingOptions options)
    {
        (this.model, this.cache, this.tokens, this.uniforms, this.options) = (model, cache, tokens, uniforms, options);
        long b = tokens.shape[0];
        keys = prefixLength + tokens.shape[1] - 1; // the last token is drawn, never fed back
        var device = tokens.device;
        last = first.view(b, 1).clone().DetachFromDisposeScope();
        positions = full(new[] { b, 1L }, prefixLength, ScalarType.Int64, device).DetachFromDisposeScope();
        column = ones(new[] { 1L }, ScalarType.Int64, device).DetachFromDisposeScope();
        queryAt = zeros(new[] { b }, ScalarType.Int64, device).DetachFromDisposeScope();
    }

    /// <summary>Fills the next <paramref name="count"/> columns; with <paramref name="graph"/> on a GPU, by replaying a
    /// captured step (eagerly where graphs are unavailable).</summary>
    public void Run(int count, bool graph)
    {
        if (count <= 0) return;
        if (!graph)
        {
            for (int i = 0; i < count; i++) Step();
            return;
        }
        using var captured = CudaGraph.CaptureAfterWarmUp(Step, tokens.device);
        for (int i = 1; i < count; i++)
        {
            if (captured is null) Step();
            else captured.Replay();
        }
    }

    /// <summary>One token for every row: logits of the previous token at its position, the draw written to the
    /// current column, then the buffers move on by one. Nothing here waits for the device.</summary>
    private void Step()
    {
        using var scope = NewDisposeScope();
        var logits = model.LogitsAt(last, queryAt, cache, positions, keys);
        var next = PriorSampler.Pick(logits, uniforms.index_select(1, column).view(-1), options).view(-1, 1);
        tokens.index_copy_(1, column, next);
        last.copy_(next);
        positions.add_(1);
        column.add_(1);
    }

    public void Dispose()
    {
        foreach (var t in new[] { last, positions, column, queryAt }) t.Dispose();
    }
}
