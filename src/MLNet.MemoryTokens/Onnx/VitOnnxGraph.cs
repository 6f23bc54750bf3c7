using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Tuning;
using static MLNet.MemoryTokens.Onnx.OnnxGraph;

namespace MLNet.MemoryTokens.Onnx;

/// <summary>The ViT forward of an <see cref="ExportPlan"/> as an ONNX graph: patch convolution, prefix tokens (class,
/// distillation, registers), position embedding, norm_pre, pre-norm blocks (LayerNormalization, MatMul, Softmax attention,
/// exact Erf GELU or QuickGELU, LayerScale), the pooling (class token, distilled pair, or patch average with fc_norm), heads.</summary>
/// <remarks>
/// Legend: B batch (the dynamic "batch" dimension), N = 1 + P tokens, P patches, D width, H heads, d = D/H, R side rows
/// (masked tasks' class tokens or VQT queries), M memory rows, K key rows, C classes.
/// Everything is built from the config and the named weights, each family feature in one place: prefix tokens (registers, a
/// distillation token) and <c>no_embed_class</c> in <see cref="Embed"/>, which <c>norm_pre</c> ends; LayerScale multiplies the
/// two branches in <see cref="Finish"/>; QuickGELU is <see cref="Activation"/>'s other case; the pooling is <see cref="Pool"/>
/// (the last block takes exactly the rows it reads past attention).
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
            // the last block: only the rows the pooling reads go past attention, and only if a head reads them
            var main = l < c.Depth - 1 ? (0, c.NumTokens) : p.ReadsPooled ? ReadoutRows() : (0, 0);
            var side = p.Queries is not null ? QueriesInput(l) : y;
            (x, side) = Block(l, x!, side, main);
            if (p.Queries is not null) queryOutputs.Add(side!);
            else y = side;
        }
        g.Scope = "heads";
        Heads(x, y, queryOutputs);
    }

    /// <summary>The rows of x the pooling reads after the last block: the class token, the class and distillation tokens, or
    /// the patches (average pooling, prefix tokens excluded).</summary>
    (int Start, int Count) ReadoutRows() =>
        C.GlobalPool == VitPooling.Average ? (C.PrefixTokens, C.NumPatches) : (0, C.DistillationToken ? 2 : 1);

    /// <summary>images [B, C_in, H, W] → tokens [B, N, D]: x = concat(prefix tokens, patches) + pos (with no_embed_class:
    /// concat(prefix tokens, patches + pos)), then norm_pre.</summary>
    string Embed(string images)
    {
        int d = C.Dim, ps = C.PatchSize;
        string[] convInputs = C.PatchBias ? [images, W("patch_embed.proj.weight"), W("patch_embed.proj.bias")] : [images, W("patch_embed.proj.weight")];
        var conv = g.Op("Conv", convInputs, A("kernel_shape", new long[] { ps, ps }), A("strides", new long[] { ps, ps }));   // [B, D, g, g]
        var patches = g.Transpose(g.Reshape(conv, 0, d, -1), 0, 2, 1);                       // [B, P, D]
        var prefix = new List<string>();                                                     // each [B, r, D]
        if (p.ClassToken is not null) prefix.Add(g.Expand(Own("embed/cls_token", p.ClassToken.Data, 1, 1, d), _batch11));
        if (C.DistillationToken) prefix.Add(g.Expand(W("dist_token"), _batch11));
        if (C.RegisterTokens > 0) prefix.Add(g.Expand(W("reg_token"), _batch11));
        var x = C.NoEmbedClass
            ? g.Concat(1, [.. prefix, g.Add(patches, W("pos_embed"))])
            : g.Add(g.Concat(1, [.. prefix, patches]), W("pos_embed"));                       // [B, N, D]
        return C.PreNorm ? g.LayerNorm(x, W("norm_pre.weight"), W("norm_pre.bias"), C.LayerNormEps) : x;
    }

    /// <summary>[B, R, D]: each masked task's class token (+ pos[0] when the class token has a position), in task order,
    /// through norm_pre as the original rows.</summary>
    string TaskRowsInput()
    {
        int d = C.Dim;
        var tokens = p.TaskRows.SelectMany(t => t.ClassToken.Data).ToArray();
        var rows = Own("tasks/cls_token", tokens, 1, p.TaskRows.Count, d);
        if (C.ClassTokenHasPosition) rows = g.Add(rows, g.Slice(W("pos_embed"), 1, 0, 1));
        if (C.PreNorm) rows = g.LayerNorm(rows, W("norm_pre.weight"), W("norm_pre.bias"), C.LayerNormEps);
        return g.Expand(rows, _batch11);
    }

    /// <summary>[B, T, D]: layer l's VQT queries for every image.</summary>
    string QueriesInput(int l)
    {
        int t = p.Queries!.Shape[1], d = C.Dim;
        return g.Expand(Own($"queries/{l}", LayerRows(p.Queries, l), 1, t, d), _batch11);
    }

    /// <summary>One pre-norm block on the original tokens x [B, N, D] (the rows <paramref name="main"/> going on: all N, the
    /// rows the pooling reads in the last block, or none when nothing reads them) and the side rows y [B, R, D], which read the
    /// original tokens' keys/values (VQT + memory: and the memory's, unless the queries skip it) and are never read by them.</summary>
    (string? X, string? Y) Block(int l, string x, string? y, (int Start, int Count) main)
    {
        string b = $"blocks.{l}.";
        int d = C.Dim, n = C.NumTokens;
        var (q, k, v) = Qkv(b, x);
        var original = new KeySegment(Keys(k, true), Values(v, true), true);
        var keys = new List<KeySegment> { original };
        KeySegment? memory = p.StreamMemory is { } mem ? MemoryKeys(b, Own($"memory/{l}", LayerRows(mem, l), mem.Shape[1], d)) : null;
        if (memory is { } ms) keys.Add(ms);
        string? xOut = null;
        if (main.Count > 0)
        {
            var (xq, qq) = main.Count == n ? (x, q) : (g.Slice(x, 1, main.Start, main.Start + main.Count), g.Slice(q, 1, main.Start, main.Start + main.Count));
            xOut = Finish(b, xq, Attend(Queries(qq), keys, null, main.Count));
        }
        if (y is null) return (xOut, null);
        var (qy, ky, vy) = Qkv(b, y);
        var sideKeys = new List<KeySegment> { original };
        if (p.Queries is not null && p.QueriesReadMemory && memory is { } qm) sideKeys.Add(qm);   // VQT + memory: the queries read the memory too
        float[]? mask = null;
        int rows = p.TaskRows.Count > 0 ? p.TaskRows.Count : p.Queries!.Shape[1];
        if (p.TaskRows.Count > 0)
        {
            // masked tasks: each row reads the originals and the rows and memory of the tasks it names
            int m = p.TaskRows.Sum(t => t.Memory.Shape[1]);
            var taskMemory = p.TaskRows.SelectMany(t => LayerRows(t.Memory, l)).ToArray();
            sideKeys.Add(new KeySegment(Keys(ky, true), Values(vy, true), true));
            sideKeys.Add(MemoryKeys(b, Own($"tasks/memory/{l}", taskMemory, m, d)));
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

    /// <summary>x + [γ1 ⊙] Proj(attn), then + [γ2 ⊙] MLP(LN2(·)): the rest of the block, for the rows that go on.</summary>
    string Finish(string b, string x, string attn)
    {
        var proj = Linear(attn, b + "attn.proj");
        x = g.Add(x, C.LayerScale ? g.Mul(proj, W(b + "ls1.gamma")) : proj);
        var h = Activation(Linear(g.LayerNorm(x, W(b + "norm2.weight"), W(b + "norm2.bias"), C.LayerNormEps), b + "mlp.fc1"));
        var mlp = Linear(h, b + "mlp.fc2");
        return g.Add(x, C.LayerScale ? g.Mul(mlp, W(b + "ls2.gamma")) : mlp);
    }

    /// <summary>The MLP's activation: exact GELU, or QuickGELU x·σ(1.702·x).</summary>
    string Activation(string x) =>
        C.Activation == VitActivation.QuickGelu ? g.Mul(x, g.Op("Sigmoid", [g.Mul(x, g.Scalar(1.702f))])) : Gelu(x);

    /// <summary>Exact GELU: ½·x·(1 + erf(x/√2)) (ONNX Runtime fuses this pattern into its Gelu kernel).</summary>
    string Gelu(string x) =>
        g.Mul(g.Mul(x, g.Add(g.Op("Erf", [g.Div(x, g.Scalar(MathF.Sqrt(2f)))]), g.Scalar(1f))), g.Scalar(0.5f));

    /// <summary>y = x Wᵀ + b for a timm linear (W [out, in] stored transposed once, as MatMul wants it; no bias where the
    /// model has none, as qkv in some).</summary>
    string Linear(string x, string prefix)
    {
        var y = p.QuantizeLinears && prefix.StartsWith("blocks.", StringComparison.Ordinal) ? QuantizedMatMul(x, prefix + ".weight") : g.MatMul(x, WT(prefix + ".weight"));
        return p.Trunk.ContainsKey(prefix + ".bias") ? g.Add(y, W(prefix + ".bias")) : y;
    }

    /// <summary>The readout norm: <c>norm</c>, or <c>fc_norm</c> (which average-pooled models apply after pooling).</summary>
    string FinalNorm(string x) => g.LayerNorm(x, W(C.FinalNormName + ".weight"), W(C.FinalNormName + ".bias"), C.LayerNormEps);

    /// <summary>The pooled output [B, D] from the rows the last block kept (<see cref="ReadoutRows"/>): the final-norm class
    /// token; a distilled model's final-norm class and distillation tokens averaged (each also returned, for its own heads);
    /// the patch average through fc_norm, or the final-normed patches averaged.</summary>
    (string Pooled, string? Cls, string? Dist) Pool(string x)
    {
        if (C.DistillationToken)
        {
            var cls = FinalNorm(g.Take(x, 1, 0));
            var dist = FinalNorm(g.Take(x, 1, 1));
            return (g.Mul(g.Add(cls, dist), g.Scalar(0.5f)), cls, dist);
        }
        if (C.GlobalPool == VitPooling.Token) return (FinalNorm(g.Take(x, 1, 0)), null, null);
        string Mean(string rows) => g.Mul(g.Op("ReduceSum", [rows, g.Ints(1)], A("keepdims", 0L)), g.Scalar(1f / C.NumPatches));
        return (C.FcNorm ? FinalNorm(Mean(x)) : Mean(FinalNorm(x)), null, null);
    }

    void Heads(string? x, string? y, List<string> queryOutputs)
    {
        var pooled = p.ReadsPooled ? Pool(x!) : default;   // [B, D]
        string? features = null;
        foreach (var h in p.Heads)
        {
            var input = h.From switch
            {
                HeadInput.Pooled => pooled.Pooled,
                HeadInput.TaskRow => FinalNorm(g.Take(y!, 1, h.Row)),
                _ => features ??= QueryFeatures(pooled.Pooled, queryOutputs),
            };
            if (h.Kept is not null) input = g.Op("Gather", [input, g.Ints(h.Kept.Select(i => (long)i).ToArray())], A("axis", 1L));
            string output;
            if (h.Weight is null) output = input;
            else if (h.DistWeight is null) output = g.Gemm(input, Own($"heads/{h.Output}/weight", h.Weight.Data, h.Weight.Shape), Own($"heads/{h.Output}/bias", h.Bias!.Data, h.Bias.Shape));
            else
            {
                // a distilled backbone's own heads: (head(class token) + head_dist(distillation token)) / 2, as timm's eval forward
                var cls = g.Gemm(pooled.Cls!, Own($"heads/{h.Output}/weight", h.Weight.Data, h.Weight.Shape), Own($"heads/{h.Output}/bias", h.Bias!.Data, h.Bias.Shape));
                var dist = g.Gemm(pooled.Dist!, Own($"heads/{h.Output}/dist_weight", h.DistWeight.Data, h.DistWeight.Shape), Own($"heads/{h.Output}/dist_bias", h.DistBias!.Data, h.DistBias.Shape));
                output = g.Mul(g.Add(cls, dist), g.Scalar(0.5f));
            }
            g.Output(output, h.Output, "batch", h.Width(C, p.Queries?.Shape[1] ?? 0));
        }
    }

    /// <summary>VQT features [B, D·(1 + L·T)]: the L2-normalised pooled output, then each layer's query outputs
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

    /// <summary>x·Wᵀ in ONNX Runtime's dynamic-quantisation form: W [out, in] → Wqᵀ [in, out] int8, symmetric, one scale
    /// (2·max|W|/255, zero point 0, as quantize_dynamic computes it); x quantised to uint8 at run time by DynamicQuantizeLinear.</summary>
    string QuantizedMatMul(string x, string name)
    {
        if (!_quantized.TryGetValue(name, out var weight)) _quantized[name] = weight = QuantizedWeight(name);
        var wz = _int8Zero ??= g.Int8Weight("const/int8_zero", [0]);
        var xq = g.Op("DynamicQuantizeLinear", 3, [x]);                               // uint8 x, its scale, its zero point
        var yi = g.Op("MatMulInteger", [xq[0], weight.Id, xq[2], wz]);                  // int32
        var yf = g.Op("Cast", [yi], OnnxGraph.A("to", (long)OnnxProto.Float32));
        return g.Mul(yf, g.Mul(xq[1], weight.Scale));
    }
    string? _int8Zero;
    readonly Dictionary<string, (string Id, string Scale)> _quantized = new(StringComparer.Ordinal);

    /// <summary>A trunk linear weight [out, in] as int8 [in, out] with its one scale (an initializer each, shared by every use).</summary>
    (string Id, string Scale) QuantizedWeight(string name)
    {
        var t = Trunk(name);
        int rows = t.Shape[0], cols = t.Shape[1];
        float absMax = MathF.Abs(System.Numerics.Tensors.TensorPrimitives.MaxMagnitude(t.Data));   // MaxMagnitude keeps the sign
        float scale = absMax > 0 ? 2f * absMax / 255f : 1f;
        var q = new sbyte[t.Length];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++) q[(long)j * rows + i] = (sbyte)Math.Clamp((int)MathF.Round(t.Data[(long)i * cols + j] / scale), -128, 127);
        return (g.Int8Weight("backbone/" + name + "^Tq", q, cols, rows), g.Scalar(scale));
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
