using static TorchSharp.torch;

namespace Taming.ML.Modules;

/// <summary>
/// Runs the blocks of a network in inference so that each block's intermediate tensors are freed when it returns, and
/// its output once the next block has read it, rather than when the caller's dispose scope ends: otherwise every
/// activation of a pass stays alive until its batch is done, which on whole photos, large canvases and long token
/// sequences multiplies the peak memory. Training runs the blocks as they are: autograd holds their activations for
/// the backward pass anyway.
/// </summary>
internal static class BlockScope
{
    /// <summary>The blocks of <paramref name="blocks"/> applied in turn to <paramref name="x"/> (which stays the caller's).</summary>
    public static Tensor Chain(TorchSharp.Modules.Sequential blocks, Tensor x)
    {
        if (is_grad_enabled()) return blocks.forward(x);
        var current = x;
        for (int i = 0; i < blocks.Count; i++) current = Next(blocks[i].call, current, freeInput: !ReferenceEquals(current, x));
        return current;
    }

    /// <summary><paramref name="block"/>(<paramref name="x"/>) in a dispose scope of its own, then <paramref name="x"/>
    /// freed when <paramref name="freeInput"/>; with gradients on, simply the block.</summary>
    public static Tensor Next(Func<Tensor, Tensor> block, Tensor x, bool freeInput)
    {
        if (is_grad_enabled()) return block(x);
        Tensor y;
        using (NewDisposeScope()) y = block(x).MoveToOuterDisposeScope();
        if (freeInput && !ReferenceEquals(x, y)) x.Dispose();
        return y;
    }
}
