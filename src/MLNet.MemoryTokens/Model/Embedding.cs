using System.Numerics.Tensors;
using MLNet.MemoryTokens.Kernels;

namespace MLNet.MemoryTokens.Model;

/// <summary>The stream's first rows from the images, forward and backward: the patch embedding, the prefix tokens (class,
/// distillation, registers), the position embedding, each attention-masked task's own class-token row, and <c>norm_pre</c>
/// over all of them.</summary>
/// <remarks>Legend: B batch, S stream rows per sample, N original rows (prefix + P), P patches, D width, K = C_in·p·p values per
/// patch, E = N + T embedded rows per sample (T task rows). Rows of the layout past the originals and task rows (memory,
/// queries) are left for the model to write per layer. Positions as timm's <c>_pos_embed</c>: prefix tokens get pos[0..prefix)
/// unless the model has <c>no_embed_class</c> (then the position embedding covers the patches only); a task's class-token row
/// gets the class token's position, pos[0], when the class token has one.</remarks>
internal static class Embedding
{
    /// <summary>x[b, prefix rows] = token + pos (no pos with no_embed_class); x[b, prefix + i] = patch_i Wᵀ + bias + pos;
    /// x[b, task row t] = taskCls_t (+ pos[0]); then, for pre-norm models, x[b, :E] = LN_pre(x[b, :E]).</summary>
    /// <param name="x">[B, S, D] written at the original and task rows</param>
    /// <param name="images">[B, C_in, H, W]</param>
    /// <param name="cols">[B·P, K] scratch: the patches as rows (kept: full fine-tuning's patch-weight gradient reads them)</param>
    /// <param name="patches">[B·P, D] scratch: patch embeddings</param>
    /// <param name="classToken">[D] the class token of row 0 (the backbone's, or a trained copy); empty for a model without one</param>
    /// <param name="taskClassTokens">per task row [D], in layout order (masked tasks)</param>
    /// <param name="normPre">where <c>norm_pre</c> keeps its input and statistics for backward (pre-norm models; null: kept nowhere)</param>
    public static void Forward(float[] x, StreamLayout layout, VisionTransformer vit, ReadOnlySpan<float> images, int batch, float[] cols, float[] patches,
        ReadOnlySpan<float> classToken, IReadOnlyList<float[]> taskClassTokens, NormPreTape? normPre = null)
    {
        var c = vit.Config;
        int p = c.NumPatches, d = c.Dim, n = layout.Originals, s = layout.Rows, prefix = c.PrefixTokens;
        if (taskClassTokens.Count != layout.TaskRows) throw new ArgumentException($"The layout has {layout.TaskRows} task rows; {taskClassTokens.Count} class tokens were given.");
        if (layout.PrefixTokens != prefix) throw new ArgumentException($"The layout has {layout.PrefixTokens} prefix rows; the model has {prefix}.");
        if (c.ClassToken != (classToken.Length > 0)) throw new ArgumentException(c.ClassToken ? "The model has a class token: give it." : "The model has no class token.");
        PatchEmbed.Im2Col(cols, images, batch, c.InChannels, c.ImageSize, c.ImageSize, c.PatchSize);
        Linear.Forward(patches, cols, vit.PatchPacked, vit.PatchBias is { } bias ? bias.Data : default, batch * p);
        var pos = vit.PosEmbed.Data.AsSpan();
        int posPrefix = c.PosEmbedPrefix;
        for (int b = 0; b < batch; b++)
        {
            var xb = x.AsSpan(b * s * d, s * d);
            // prefix rows: class, distillation, registers (each with its position unless no_embed_class)
            for (int r = 0; r < prefix; r++)
                if (posPrefix > 0) TensorPrimitives.Add(PrefixToken(vit, classToken, r), pos.Slice(r * d, d), xb.Slice(r * d, d));
                else PrefixToken(vit, classToken, r).CopyTo(xb.Slice(r * d, d));
            TensorPrimitives.Add(patches.AsSpan(b * p * d, p * d), pos.Slice(posPrefix * d, p * d), xb[(prefix * d)..(n * d)]);
            for (int t = 0; t < taskClassTokens.Count; t++)
                if (c.ClassTokenHasPosition) TensorPrimitives.Add(taskClassTokens[t], pos[..d], xb.Slice(layout.TaskRow(t) * d, d));
                else taskClassTokens[t].AsSpan(0, d).CopyTo(xb.Slice(layout.TaskRow(t) * d, d));
        }
        if (c.PreNorm) NormPre(x, layout, vit, batch, normPre);
    }

    /// <summary>Prefix row <paramref name="r"/>'s token [D]: the class token (row 0, when the model has one), the distillation
    /// token, then the registers.</summary>
    static ReadOnlySpan<float> PrefixToken(VisionTransformer vit, ReadOnlySpan<float> classToken, int r)
    {
        var c = vit.Config;
        if (c.ClassToken && r == 0) return classToken[..c.Dim];
        if (c.DistillationToken && r == 1) return vit.DistillationToken!.Data;
        return vit.RegisterTokens!.Data.AsSpan((r - c.RegisterRow) * c.Dim, c.Dim);
    }

    /// <summary>x[b, :E] = LN_pre(x[b, :E]) in place, the input and statistics kept in <paramref name="tape"/> when given.</summary>
    static void NormPre(float[] x, StreamLayout layout, VisionTransformer vit, int batch, NormPreTape? tape)
    {
        var c = vit.Config;
        int d = c.Dim, s = layout.Rows, e = layout.TaskRow0 + layout.TaskRows;
        tape?.Ensure(batch, e, d);
        for (int b = 0; b < batch; b++)
        {
            var rows = x.AsSpan(b * s * d, e * d);
            if (tape is null) { LayerNorm.Forward(rows, default, default, rows, vit.NormPreWeight!.Data, vit.NormPreBias!.Data, e, d, c.LayerNormEps); continue; }
            var input = tape.Input.AsSpan(b * e * d, e * d);
            rows.CopyTo(input);
            LayerNorm.Forward(rows, tape.Mean.AsSpan(b * e, e), tape.Rstd.AsSpan(b * e, e), input, vit.NormPreWeight!.Data, vit.NormPreBias!.Data, e, d, c.LayerNormEps);
        }
    }

    /// <summary>Backward of <c>norm_pre</c> (pre-norm models; nothing otherwise): dx[b, :E] of its output → of its input, in
    /// place; its weights' gradients accumulate when given (full fine-tuning).</summary>
    public static void NormPreBackward(float[] dx, StreamLayout layout, VisionTransformer vit, int batch, NormPreTape tape, Span<float> dWeight, Span<float> dBias)
    {
        var c = vit.Config;
        if (!c.PreNorm) return;
        int d = c.Dim, s = layout.Rows, e = layout.TaskRow0 + layout.TaskRows;
        if (tape.Input.Length < (long)batch * e * d) throw new InvalidOperationException("norm_pre's backward needs a forward that kept its input.");
        var dIn = new float[e * d];
        for (int b = 0; b < batch; b++)
        {
            Array.Clear(dIn);
            var rows = dx.AsSpan(b * s * d, e * d);
            LayerNorm.Backward(dIn, dWeight, dBias, rows, tape.Input.AsSpan(b * e * d, e * d), vit.NormPreWeight!.Data, tape.Mean.AsSpan(b * e, e), tape.Rstd.AsSpan(b * e, e), e, d);
            dIn.CopyTo(rows);
        }
    }

    /// <summary>Backward of <see cref="Forward"/> into the backbone's embedding weights (full fine-tuning), from the original
    /// rows' gradient at the embedding's output (after <see cref="NormPreBackward"/>): dcls, ddist, dreg += Σ_b dx[b, their
    /// rows]; dpos += Σ_b dx[b, rows with a position]; dW += dPatchesᵀ cols; dbias += Σ dPatches. <paramref name="grad"/>
    /// gives the gradient buffer of a weight by timm name.</summary>
    /// <param name="dx">[B, S, D] the stream's gradient at the embedding's output</param>
    /// <param name="cols">[B·P, K] as <see cref="Forward"/> left them</param>
    public static void Backward(ReadOnlySpan<float> dx, StreamLayout layout, VisionTransformer vit, int batch, ReadOnlySpan<float> cols, Func<string, float[]> grad)
    {
        var c = vit.Config;
        int p = c.NumPatches, d = c.Dim, n = layout.Originals, s = layout.Rows, prefix = c.PrefixTokens, posPrefix = c.PosEmbedPrefix;
        // forward: x[b, :N] = [prefix tokens | patches] + pos    → dtokens, dpos, and dPatches = dx[b, prefix:N]
        var dPatches = new float[(long)batch * p * d];
        var dPos = grad("pos_embed").AsSpan();
        var dTokens = PrefixTokenGrads(vit, grad);
        for (int b = 0; b < batch; b++)
        {
            var xb = dx.Slice(b * s * d, n * d);
            for (int r = 0; r < prefix; r++) TensorPrimitives.Add(dTokens[r].Span, xb.Slice(r * d, d), dTokens[r].Span);
            if (posPrefix > 0) TensorPrimitives.Add(dPos[..(n * d)], xb, dPos[..(n * d)]);
            else TensorPrimitives.Add(dPos[..(p * d)], xb[(prefix * d)..], dPos[..(p * d)]);
            xb[(prefix * d)..].CopyTo(dPatches.AsSpan(b * p * d, p * d));
        }
        // forward: patches = cols Wᵀ + bias              → dW += dPatchesᵀ cols; dbias += Σ dPatches
        int k = c.InChannels * c.PatchSize * c.PatchSize;
        Linear.Backward(default, grad("patch_embed.proj.weight"), c.PatchBias ? grad("patch_embed.proj.bias") : default, dPatches, cols, vit.PatchWeight.Data, batch * p, k, d);
    }

    /// <summary>Each prefix row's gradient buffer [D], in stream order.</summary>
    static Memory<float>[] PrefixTokenGrads(VisionTransformer vit, Func<string, float[]> grad)
    {
        var c = vit.Config;
        var rows = new List<Memory<float>>();
        if (c.ClassToken) rows.Add(grad("cls_token"));
        if (c.DistillationToken) rows.Add(grad("dist_token"));
        for (int r = 0; r < c.RegisterTokens; r++) rows.Add(grad("reg_token").AsMemory(r * c.Dim, c.Dim));
        return rows.ToArray();
    }
}

/// <summary>What <c>norm_pre</c> keeps for backward: its input [B·E, D] and statistics [B·E] (E embedded rows per sample).</summary>
internal sealed class NormPreTape
{
    public float[] Input = [], Mean = [], Rstd = [];

    public void Ensure(int batch, int rows, int d)
    {
        if (Input.Length == (long)batch * rows * d) return;
        Input = new float[(long)batch * rows * d]; Mean = new float[batch * rows]; Rstd = new float[batch * rows];
    }
}
