using static TorchSharp.torch;

namespace Taming.ML.Modules;

/// <summary>
/// Runs the blocks of an encoder or decoder so that each block's intermediate tensors are freed when it returns, and
/// its output once the next block has read it, rather than when the caller's dispose scope ends: otherwise every
/// activation of a pass stays alive until its batch is done, which on whole photos and large canvases multiplies the
/// peak memory. Training runs the blocks as they are: autograd holds their activations for the backward pass anyway.
/// </summary>
internal static class BlockScope
{
    /// <summary>The blocks of <paramref name="blocks"/> applied in turn to <paramref name="x"/> (which stays the caller's);
    /// with gradients on, simply the blocks' forward.</summary>
    public static Tensor Chain(TorchSharp.Modules.Sequential blocks, Tensor x)
    {
        if (is_grad_enabled()) return blocks.forward(x);
        var current = x;
        for (int i = 0; i < blocks.Count; i++)
        {
            Tensor next;
            using (NewDisposeScope()) next = blocks[i].call(current).MoveToOuterDisposeScope();
            if (!ReferenceEquals(current, x)) current.Dispose();
            current = next;
        }
        return current;
    }
}
