using MLNet.MemoryTokens.Model;
using static MLNet.MemoryTokens.Onnx.OnnxGraph;

namespace MLNet.MemoryTokens.Onnx;

/// <summary>The ViT forward of an <see cref="ExportPlan"/> as an ONNX graph: patch convolution, class token, position
/// embedding, pre-norm blocks (LayerNormalization, MatMul, Softmax attention, exact Erf GELU), final norm, heads.</summary>
/// <remarks>
/// Legend: B batch (the dynamic "batch" dimension), N = 1 + P tokens, P patches, D width, H heads, d = D/H, R side rows
/// (masked tasks' class tokens or VQT queries), M memory rows, K key rows, C classes.
/// Everything is built from the config and the named weights, so a new block feature is one change in one place: a
/// prefix token (register, distillation) joins <see cref="Embed"/>; <c>norm_pre</c> follows it; LayerScale multiplies the two
/// branches in <see cref="Finish"/>; QuickGELU replaces <see cref="Gelu"/>; global-average pooling with <c>fc_norm</c> is
/// another <see cref="Readout"/> (and keeps every row live in the last block).
/// Memory keys/values come from constants only (LN1 and qkv of the memory rows), so ONNX Runtime folds them at load time.
/// </remarks>
internal sealed class VitOnnxGraph
{
    readonly OnnxGraph g = new();
    readonly ExportPlan p;
    readonly Dictionary<string, string> _trunk = new(StringComparer.Ordinal);
    string _batch11 = "", _batch111 = "";
    VitConfig C => p.Config;

    VitOnnxGraph(ExportPlan plan) => p = plan;

    /// <summary>The whole model: graph, opset import, metadata.</summary>
    public static ProtoMessage Build(ExportPlan plan, int opset)
    {
        var b = new VitOnnxGraph(plan);
        b.Forward();
        var c = plan.Config;
        string doc = $"ViT D={c.Dim} depth={c.Depth} heads={c.Heads} patch={c.PatchSize} image={c.ImageSize}; input 'images' [batch, {c.InChannels}, {c.ImageSize}, {c.ImageSize}] " +
                     $"(normalised); outputs (logits): {string.Join(", ", plan.Heads.Select(h => h.Output))}.";
        return OnnxProto.Model(opset, b.g.ToProto("mlnet_memorytokens_vit", doc), doc, plan.Metadata);
    }

    /// <summary>A segment of the keys a query run reads: keys [·, H, d, K] (transposed for the score MatMul) and values
    /// [·, H, K, d], per image (batched) or shared by the batch (memory: leading dimension 1, expanded when read).</summary>
    readonly record struct KeySegment(string Keys, string Values, bool Batched);

    void Forward()
    {
        var c = C;
        var images = g.Input("images", "batch", c.InChannels, c.ImageSize, c.ImageSize);
        g.Scope = "embed";
        var batch = g.Op("Shape", [images], A("start", 0L), A("end", 1L));            // [1] = (B)
        _batch11 = g.Concat(0, batch, g.Ints(1, 1));                                  // Expand targets that broadcast a
        _batch111 = g.Concat(0, batch, g.Ints(1, 1, 1));                              // constant over the batch
        var x = Embed(images);
        string? y = p.TaskRows.Count > 0 ? TaskRowsInput() : null;
        var queryOutputs = new List<string>();
        for (int l = 0; l < c.Depth; l++)
        {
            g.Scope = $"blocks.{l}";
            // the last block: only the class token goes past attention, and only if a head reads it
            int mainQueries = l < c.Depth - 1 ? c.NumTokens : p.ReadsClassToken ? 1 : 0;
            var side = p.Queries is not null ? QueriesInput(l) : y;
            (x, side) = Block(l, x!, side, mainQueries);
            if (p.Queries is not null) queryOutputs.Add(side!);
            else y = side;
        }
        g.Scope = "heads";
        Heads(x, y, queryOutputs);
    }

    /// <summary>images [B, C_in, H, W] → tokens [B, N, D]: x = concat(cls, patches) + pos.</summary>
    string Embed(string images)
    {
        int d = C.Dim, ps = C.PatchSize;
        var conv = g.Op("Conv", [images, W("patch_embed.proj.weight"), W("patch_embed.proj.bias")],
            A("kernel_shape", new long[] { ps, ps }), A("strides", new long[] { ps, ps }));   // [B, D, g, g]
        var patches = g.Transpose(g.Reshape(conv, 0, d, -1), 0, 2, 1);                       // [B, P, D]
        var cls = g.Expand(Own("embed/cls_token", p.ClassToken.Data, 1, 1, d), _batch11);     // [B, 1, D]
        return g.Add(g.Concat(1, cls, patches), W("pos_embed"));                             // [B, N, D]
    }

    /// <summary>[B, R, D]: each masked task's class token + pos[0], in task order.</summary>
    string TaskRowsInput()
    {
        int d = C.Dim;
        var tokens = p.TaskRows.SelectMany(t => t.ClassToken.Data).ToArray();
        var rows = g.Add(Own("tasks/cls_token", tokens, 1, p.TaskRows.Count, d), g.Slice(W("pos_embed"), 1, 0, 1));
        return g.Expand(rows, _batch11);
    }

    /// <summary>[B, T, D]: layer l's VQT queries for every image.</summary>
    string QueriesInput(int l)
    {
        int t = p.Queries!.Shape[1], d = C.Dim;
        return g.Expand(Own($"queries/{l}", LayerRows(p.Queries, l), 1, t, d), _batch11);
    }

    /// <summary>One pre-norm block on the original tokens x [B, N, D] (their first <paramref name="mainQueries"/> rows going on:
    /// N, 1 in the last block, or 0 when nothing reads them) and the side rows y [B, R, D], which read the original tokens'
    /// keys/values and are never read by them.</summary>
    (string? X, string? Y) Block(int l, string x, string? y, int mainQueries)
    {
        string b = $"blocks.{l}.";
        int d = C.Dim, n = C.NumTokens;
        var (q, k, v) = Qkv(b, x);
        var original = new KeySegment(Keys(k, true), Values(v, true), true);
        var keys = new List<KeySegment> { original };
        if (p.StreamMemory is { } mem) keys.Add(MemoryKeys(b, Own($"memory/{l}", LayerRows(mem, l), mem.Shape[1], d)));
        string? xOut = null;
        if (mainQueries > 0)
        {
            var (xq, qq) = mainQueries == n ? (x, q) : (g.Slice(x, 1, 0, mainQueries), g.Slice(q, 1, 0, mainQueries));
            xOut = Finish(b, xq, Attend(Queries(qq), keys, null, mainQueries));
        }
        if (y is null) return (xOut, null);
        var (qy, ky, vy) = Qkv(b, y);
        var sideKeys = new List<KeySegment> { original };
        float[]? mask = null;
        int rows = p.TaskRows.Count > 0 ? p.TaskRows.Count : p.Queries!.Shape[1];
        if (p.TaskRows.Count > 0)
        {
            // masked tasks: each row reads the originals and the rows and memory of the tasks it names
            int m = p.TaskRows.Sum(t => t.Memory.Shape[1]);
            var memory = p.TaskRows.SelectMany(t => LayerRows(t.Memory, l)).ToArray();
            sideKeys.Add(new KeySegment(Keys(ky, true), Values(vy, true), true));
            sideKeys.Add(MemoryKeys(b, Own($"tasks/memory/{l}", memory, m, d)));
            mask = TaskMask();
        }
        return (xOut, Finish(b, y, Attend(Queries(qy), sideKeys, mask, rows)));
    }

    /// <summary>LN1 and the qkv projection: x [·, S, D] → q, k, v [·, S, D] (or [M, D] for memory rows).</summary>
    (string Q, string K, string V) Qkv(string b, string x)
    {
        var ln = g.LayerNorm(x, W(b + "norm1.weight"), W(b + "norm1.bias"), C.LayerNormEps);
        var qkv = g.Split(Linear(ln, b + "attn.qkv"), -1, C.Dim, C.Dim, C.Dim);
        return (qkv[0], qkv[1], qkv[2]);
    }

    /// <summary>Memory rows [M, D] → their keys [1, H, d, M] and values [1, H, M, d] (LN1 and qkv as stream rows; constants only).</summary>
    KeySegment MemoryKeys(string b, string memory)
    {
        var (_, k, v) = Qkv(b, memory);
        return new KeySegment(Keys(k, false), Values(v, false), false);
    }

    string SplitHeads(string t, bool batched) => g.Reshape(t, batched ? 0 : 1, -1, C.Heads, C.HeadDim);   // [·, S, H, d]
    string Keys(string k, bool batched) => g.Transpose(SplitHeads(k, batched), 0, 2, 3, 1);              // [·, H, d, S]
    string Values(string v, bool batched) => g.Transpose(SplitHeads(v, batched), 0, 2, 1, 3);            // [·, H, S, d]
    string Queries(string q) => g.Mul(g.Transpose(SplitHeads(q, true), 0, 2, 1, 3), g.Scalar(1f / MathF.Sqrt(C.HeadDim)));   // [B, H, R, d]·d^-½

    /// <summary>softmax(q kᵀ + mask) v over the concatenated key segments: q [B, H, R, d] → [B, R, D].</summary>
    string Attend(string q, List<KeySegment> segments, float[]? mask, int rows)
    {
        var keys = g.Concat(3, segments.Select(s => s.Batched ? s.Keys : g.Expand(s.Keys, _batch111)).ToArray());       // [B, H, d, K]
        var values = g.Concat(2, segments.Select(s => s.Batched ? s.Values : g.Expand(s.Values, _batch111)).ToArray()); // [B, H, K, d]
        var scores = g.MatMul(q, keys);                                                                                  // [B, H, R, K]
        if (mask is not null) scores = g.Add(scores, Own($"{g.Scope}/mask", mask, rows, mask.Length / rows));
        var o = g.MatMul(g.Softmax(scores), values);                                                                     // [B, H, R, d]
        return g.Reshape(g.Transpose(o, 0, 2, 1, 3), 0, -1, C.Dim);                                                      // [B, R, D]
    }

    /// <summary>[R, N + R + M] additive mask of the masked tasks: 0 where row t reads the key, −∞ elsewhere (null when every row
    /// reads every key). Keys: the N originals, the R task rows, then each task's memory rows in task order.</summary>
    float[]? TaskMask()
    {
        var tasks = p.TaskRows;
        int r = tasks.Count, n = C.NumTokens, m = tasks.Sum(t => t.Memory.Shape[1]), k = n + r + m;
        var mask = new float[r * k];
        var memoryStart = new int[r];
        for (int t = 1; t < r; t++) memoryStart[t] = memoryStart[t - 1] + tasks[t - 1].Memory.Shape[1];
        bool all = true;
        for (int t = 0; t < r; t++)
        {
            var row = mask.AsSpan(t * k, k);
            row[n..].Fill(float.NegativeInfinity);
            foreach (int j in tasks[t].Reads)
            {
                row[n + j] = 0;
                row.Slice(n + r + memoryStart[j], tasks[j].Memory.Shape[1]).Clear();
            }
            all &= !row.Contains(float.NegativeInfinity);
        }
        return all ? null : mask;
    }

    /// <summary>x + Proj(attn), then + MLP(LN2(·)): the rest of the block, for the rows that go on.</summary>
    string Finish(string b, string x, string attn)
    {
        x = g.Add(x, Linear(attn, b + "attn.proj"));
        var h = Gelu(Linear(g.LayerNorm(x, W(b + "norm2.weight"), W(b + "norm2.bias"), C.LayerNormEps), b + "mlp.fc1"));
        return g.Add(x, Linear(h, b + "mlp.fc2"));
    }

    /// <summary>Exact GELU: ½·x·(1 + erf(x/√2)) (ONNX Runtime fuses this pattern into its Gelu kernel).</summary>
    string Gelu(string x) =>
        g.Mul(g.Mul(x, g.Add(g.Op("Erf", [g.Div(x, g.Scalar(MathF.Sqrt(2f)))]), g.Scalar(1f))), g.Scalar(0.5f));

    /// <summary>y = x Wᵀ + b for a timm linear (W [out, in] stored transposed once, as MatMul wants it).</summary>
    string Linear(string x, string prefix) => g.Add(g.MatMul(x, WT(prefix + ".weight")), W(prefix + ".bias"));

    string FinalNorm(string x) => g.LayerNorm(x, W("norm.weight"), W("norm.bias"), C.LayerNormEps);

    void Heads(string? x, string? y, List<string> queryOutputs)
    {
        string? cls = p.ReadsClassToken ? FinalNorm(g.Take(x!, 1, 0)) : null;   // [B, D]
        string? features = null;
        foreach (var h in p.Heads)
        {
            var input = h.From switch
            {
                Readout.ClassToken => cls!,
                Readout.TaskRow => FinalNorm(g.Take(y!, 1, h.Row)),
                _ => features ??= QueryFeatures(cls!, queryOutputs),
            };
            if (h.Kept is not null) input = g.Op("Gather", [input, g.Ints(h.Kept.Select(i => (long)i).ToArray())], A("axis", 1L));
            var output = h.Weight is null ? input
                : g.Gemm(input, Own($"heads/{h.Output}/weight", h.Weight.Data, h.Weight.Shape), Own($"heads/{h.Output}/bias", h.Bias!.Data, h.Bias.Shape));
            g.Output(output, h.Output, "batch", h.Width(C, p.Queries?.Shape[1] ?? 0));
        }
    }

    /// <summary>VQT features [B, D·(1 + L·T)]: the L2-normalised final-norm class token, then each layer's query outputs
    /// flattened to [B, T·D] and L2-normalised on their own.</summary>
    string QueryFeatures(string cls, List<string> outputs)
    {
        int td = p.Queries!.Shape[1] * C.Dim;
        var parts = outputs.Select(o => g.L2Normalize(g.Reshape(o, 0, td))).Prepend(g.L2Normalize(cls)).ToArray();
        return g.Concat(1, parts);
    }

    // ---------------------------------------------------------------- initializers

    /// <summary>A trunk weight by timm name, as stored.</summary>
    string W(string name)
    {
        if (_trunk.TryGetValue(name, out var id)) return id;
        var t = Trunk(name);
        return _trunk[name] = g.Weight("backbone/" + name, t.Data, t.Shape);
    }

    /// <summary>A trunk linear weight [out, in], transposed to [in, out].</summary>
    string WT(string name)
    {
        if (_trunk.TryGetValue(name + "^T", out var id)) return id;
        var t = Trunk(name);
        int rows = t.Shape[0], cols = t.Shape[1];
        var tr = new float[t.Length];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++) tr[j * rows + i] = t.Data[i * cols + j];
        return _trunk[name + "^T"] = g.Weight("backbone/" + name + "^T", tr, cols, rows);
    }

    Tensor Trunk(string name) => p.Trunk.TryGetValue(name, out var t) ? t : throw new InvalidOperationException($"ONNX export: the model has no weight '{name}'.");

    string Own(string name, float[] data, params int[] dims) => g.Weight(name, data, dims);

    /// <summary>Layer l's rows of a per-layer tensor [L, m, D], copied.</summary>
    static float[] LayerRows(Tensor t, int l)
    {
        int size = t.Shape[1] * t.Shape[2];
        return t.Data.AsSpan(l * size, size).ToArray();
    }
}
