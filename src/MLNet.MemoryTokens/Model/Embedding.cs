using System.Numerics.Tensors;
using MLNet.MemoryTokens.Kernels;

namespace MLNet.MemoryTokens.Model;

/// <summary>The stream's first rows from the images, forward and backward: the patch embedding, the class token, the position
/// embedding, and each attention-masked task's own class-token row.</summary>
/// <remarks>Legend: B batch, S stream rows per sample, N original rows, P patches, D width, K = C_in·p·p values per patch.
/// Rows of the layout past the originals and task rows (memory, queries) are left for the model to write per layer.</remarks>
internal static class Embedding
{
    /// <summary>x[b, 0] = cls + pos[0]; x[b, 1+i] = patch_i Wᵀ + bias + pos[1+i]; x[b, task row t] = taskCls_t + pos[0].</summary>
    /// <param name="x">[B, S, D] written at the original and task rows</param>
    /// <param name="images">[B, C_in, H, W]</param>
    /// <param name="cols">[B·P, K] scratch: the patches as rows (kept: full fine-tuning's patch-weight gradient reads them)</param>
    /// <param name="patches">[B·P, D] scratch: patch embeddings</param>
    /// <param name="classToken">[D] the class token of row 0 (the backbone's, or a trained copy)</param>
    /// <param name="taskClassTokens">per task row [D], in layout order (masked tasks)</param>
    public static void Forward(float[] x, StreamLayout layout, VisionTransformer vit, ReadOnlySpan<float> images, int batch, float[] cols, float[] patches,
        ReadOnlySpan<float> classToken, IReadOnlyList<float[]> taskClassTokens)
    {
        var c = vit.Config;
        int p = c.NumPatches, d = c.Dim, n = layout.Originals, s = layout.Rows;
        if (taskClassTokens.Count != layout.TaskRows) throw new ArgumentException($"The layout has {layout.TaskRows} task rows; {taskClassTokens.Count} class tokens were given.");
        // one prefix token, the class token: prefix tokens such as registers or a distillation token get their rows here
        if (layout.PrefixTokens != 1 || c.PrefixTokens != 1) throw new NotSupportedException("Only the class token is supported as a prefix token.");
        PatchEmbed.Im2Col(cols, images, batch, c.InChannels, c.ImageSize, c.ImageSize, c.PatchSize);
        Linear.Forward(patches, cols, vit.PatchPacked, vit.PatchBias.Data, batch * p);
        var pos = vit.PosEmbed.Data.AsSpan();
        for (int b = 0; b < batch; b++)
        {
            var xb = x.AsSpan(b * s * d, s * d);
            TensorPrimitives.Add(classToken[..d], pos[..d], xb[..d]);
            TensorPrimitives.Add(patches.AsSpan(b * p * d, p * d), pos[d..(n * d)], xb[d..(n * d)]);
            for (int t = 0; t < taskClassTokens.Count; t++) TensorPrimitives.Add(taskClassTokens[t], pos[..d], xb.Slice(layout.TaskRow(t) * d, d));
        }
    }

    /// <summary>Backward of <see cref="Forward"/> into the backbone's embedding weights (full fine-tuning), from the original
    /// rows' gradient: dcls += Σ_b dx[b, 0]; dpos += Σ_b dx[b, :N]; dW += dPatchesᵀ cols; dbias += Σ dPatches.</summary>
    /// <param name="dx">[B, S, D] the stream's gradient at the block input of layer 0</param>
    /// <param name="cols">[B·P, K] as <see cref="Forward"/> left them</param>
    public static void Backward(ReadOnlySpan<float> dx, StreamLayout layout, VisionTransformer vit, int batch, ReadOnlySpan<float> cols,
        Span<float> dClassToken, Span<float> dPos, Span<float> dPatchWeight, Span<float> dPatchBias)
    {
        var c = vit.Config;
        int p = c.NumPatches, d = c.Dim, n = layout.Originals, s = layout.Rows;
        // forward: x[b, :N] = [cls | patches] + pos    → dcls, dpos, and dPatches = dx[b, 1:N]
        var dPatches = new float[(long)batch * p * d];
        for (int b = 0; b < batch; b++)
        {
            var xb = dx.Slice(b * s * d, n * d);
            TensorPrimitives.Add(dClassToken, xb[..d], dClassToken);
            TensorPrimitives.Add(dPos[..(n * d)], xb, dPos[..(n * d)]);
            xb[d..].CopyTo(dPatches.AsSpan(b * p * d, p * d));
        }
        // forward: patches = cols Wᵀ + bias              → dW += dPatchesᵀ cols; dbias += Σ dPatches
        int k = c.InChannels * c.PatchSize * c.PatchSize;
        Linear.Backward(default, dPatchWeight, dPatchBias, dPatches, cols, vit.PatchWeight.Data, batch * p, k, d);
    }
}
