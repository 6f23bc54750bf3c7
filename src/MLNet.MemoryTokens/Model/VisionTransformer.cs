using System.Collections.Concurrent;
using System.Numerics.Tensors;
using MLNet.MemoryTokens.Kernels;

namespace MLNet.MemoryTokens.Model;

/// <summary>timm's <c>VisionTransformer</c>: patch embedding, prefix tokens (class, distillation, registers), learned absolute
/// position embedding, optional <c>norm_pre</c>, pre-norm blocks (LN → MHSA → [LayerScale] → residual, LN → MLP(GELU or
/// QuickGELU) → [LayerScale] → residual), final norm and a linear head on the pooled tokens (the class token; a distilled
/// model's two heads averaged; or the average of the patch tokens, with <c>fc_norm</c>).</summary>
/// <remarks>
/// Legend: B batch, N = prefix + P tokens (prefix tokens first), P patches, D width, H heads, d = D/H, F MLP width, C classes.
/// Weights are a timm-named state dict of plain tensors (<see cref="Parameters"/>); the frozen-weight GEMM panels are
/// packed once and rebuilt after <see cref="InvalidatePackedWeights"/>. Inference buffers are pooled per batch size, so
/// concurrent calls are safe.
/// </remarks>
public sealed class VisionTransformer
{
    public VitConfig Config { get; }

    /// <summary>All weights by timm name (the model reads these tensors; mutate them only together with <see cref="InvalidatePackedWeights"/>).</summary>
    public IReadOnlyDictionary<string, Tensor> Parameters => _parameters;
    readonly Dictionary<string, Tensor> _parameters;

    internal readonly VitBlock[] Blocks;
    internal Tensor? ClassToken => _parameters.GetValueOrDefault("cls_token");       // [1, 1, D], or null (GAP models)
    internal Tensor? DistillationToken => _parameters.GetValueOrDefault("dist_token"); // [1, 1, D]
    internal Tensor? RegisterTokens => _parameters.GetValueOrDefault("reg_token");    // [1, R, D]
    internal Tensor PosEmbed => _parameters["pos_embed"];         // [1, prefix + P, D], or [1, P, D] (no_embed_class)
    internal Tensor PatchWeight => _parameters["patch_embed.proj.weight"]; // [D, C, p, p]
    internal Tensor? PatchBias => _parameters.GetValueOrDefault("patch_embed.proj.bias"); // [D], or null (CLIP)
    internal Tensor? NormPreWeight => _parameters.GetValueOrDefault("norm_pre.weight");  // [D] (pre-norm models)
    internal Tensor? NormPreBias => _parameters.GetValueOrDefault("norm_pre.bias");
    /// <summary>[D] the final norm: <c>norm</c>, or <c>fc_norm</c> on the pooled vector.</summary>
    internal Tensor NormWeight => _parameters[Config.FinalNormName + ".weight"];
    internal Tensor NormBias => _parameters[Config.FinalNormName + ".bias"];
    internal Tensor? HeadWeight => _parameters.GetValueOrDefault("head.weight"); // [C, D]
    internal Tensor? HeadBias => _parameters.GetValueOrDefault("head.bias");     // [C]

    Gemm.PackedB? _patchPacked, _headPacked;
    bool _stale;   // weights changed since the panels above were packed: repack them in place on next use

    /// <summary>fp32 (default), int16 or int8: how the blocks' four frozen Linear layers (qkv, proj, fc1, fc2) run in every
    /// forward that keeps no gradient tape (inference, featurizing, the backbone's cached keys/values). Training steps always run
    /// fp32. The integer paths quantise the weights once per output channel and each input row at run time
    /// (<see cref="QuantizedGemm"/>); they need AVX-512BW. Patch embedding, attention, norms and heads stay fp32.</summary>
    public InferencePrecision InferencePrecision
    {
        get => _precision;
        set
        {
            if (!Enum.IsDefined(value)) throw new ArgumentOutOfRangeException(nameof(value), value, "Unknown inference precision.");
            if (value != InferencePrecision.Fp32 && !QuantizedGemm.IsSupported)
                throw new PlatformNotSupportedException($"{value} inference needs AVX-512BW, which this CPU (or runtime) does not offer; use fp32.");
            _precision = value;
        }
    }
    InferencePrecision _precision;
    // inference passes pooled per batch size, so concurrent calls are safe; queues, not bags: a ConcurrentBag keeps items in
    // thread-local lists that outlive Clear() until finalizers run
    readonly ConcurrentDictionary<int, ConcurrentQueue<StreamPass>> _passes = new();

    /// <summary>Builds the model from a timm-named state dict that matches <paramref name="config"/> exactly (strict).</summary>
    public VisionTransformer(VitConfig config, IReadOnlyDictionary<string, Tensor> stateDict)
    {
        config.Validate();
        Config = config;
        var expected = config.StateDictShapes();
        var problems = new List<string>();
        foreach (var (key, shape) in expected)
        {
            if (!stateDict.TryGetValue(key, out var t)) problems.Add($"missing '{key}' {Tensor.FormatShape(shape)}");
            else if (!t.ShapeEquals(shape)) problems.Add($"'{key}' has shape {t.ShapeString}, expected {Tensor.FormatShape(shape)}");
        }
        foreach (var key in stateDict.Keys)
            if (!expected.ContainsKey(key)) problems.Add($"unexpected '{key}'");
        if (problems.Count > 0)
            throw new ArgumentException($"State dict does not match ViT (D={config.Dim}, depth={config.Depth}, image={config.ImageSize}, classes={config.NumClasses}): " + string.Join("; ", problems));
        _parameters = stateDict.ToDictionary(kv => kv.Key, kv => kv.Value);
        Blocks = new VitBlock[config.Depth];
        for (int i = 0; i < config.Depth; i++) Blocks[i] = new VitBlock(this, i);
    }

    /// <summary>Random weights (timm-like init: trunc-normal 0.02 linears and tokens, zero biases, unit LayerNorms, LayerScale 0.1),
    /// for tests and fixtures.</summary>
    public static VisionTransformer CreateRandom(VitConfig config, int seed)
    {
        var rng = new Random(seed);
        var sd = new Dictionary<string, Tensor>();
        foreach (var (key, shape) in config.StateDictShapes())
        {
            var t = new Tensor(shape);
            bool isNorm = key.Contains("norm");
            if (isNorm && key.EndsWith(".weight")) Array.Fill(t.Data, 1f);
            else if (key.EndsWith(".gamma")) Array.Fill(t.Data, 0.1f);   // LayerScale: small, but the branches must count in tests
            else if (!key.EndsWith(".bias") || key == "pos_embed")
                for (int i = 0; i < t.Length; i++) t.Data[i] = (float)(Gaussian(rng) * 0.02);
            sd[key] = t;
        }
        return new VisionTransformer(config, sd);
    }

    /// <summary>A deep copy (every weight copied): what full fine-tuning trains, so the caller's backbone stays as loaded.</summary>
    /// <remarks>The copy keeps <see cref="InferencePrecision"/> (a full fine-tune served from it runs as its backbone was set).</remarks>
    public VisionTransformer Clone() => new(Config, _parameters.ToDictionary(kv => kv.Key, kv => kv.Value.Clone())) { _precision = _precision };

    internal static double Gaussian(Random rng)
    {
        double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }

    /// <summary>Rebuild the packed GEMM panels on next use: call after changing any weight in place.</summary>
    public void InvalidatePackedWeights()
    {
        _stale = true;
        foreach (var b in Blocks) b.InvalidatePacked();
    }

    internal Gemm.PackedB PatchPacked { get { Refresh(); return _patchPacked ??= Gemm.Pack(true, PatchK, Config.Dim, PatchWeight.Data, PatchK); } }
    internal Gemm.PackedB? HeadPacked { get { Refresh(); return HeadWeight is null ? null : _headPacked ??= Gemm.Pack(true, Config.Dim, Config.NumClasses, HeadWeight.Data, Config.Dim); } }
    int PatchK => Config.InChannels * Config.PatchSize * Config.PatchSize;

    /// <summary>Repacks stale panels into their own buffers (a trained backbone changes every step: no fresh arrays each time).</summary>
    void Refresh()
    {
        if (!Volatile.Read(ref _stale)) return;
        lock (_packLock)   // concurrent forwards must not read panels half rewritten: the flag clears only after the repack
        {
            if (!_stale) return;
            if (_patchPacked is not null) Gemm.Repack(_patchPacked, true, PatchWeight.Data, PatchK);
            if (_headPacked is not null && HeadWeight is not null) Gemm.Repack(_headPacked, true, HeadWeight.Data, Config.Dim);
            Volatile.Write(ref _stale, false);
        }
    }
    readonly object _packLock = new();

    /// <summary>The full forward: logits [B, C] from images [B, C_in, H, W]. The last block takes only the rows the head reads
    /// past attention (the class token, the distillation token, or the patches when pooling by average), so this is a little
    /// faster than <see cref="ForwardHead"/> on <see cref="ForwardFeatures(Tensor)"/>, and equal to it up to float rounding.</summary>
    public Tensor Forward(Tensor images)
    {
        if (HeadPacked is null) throw new InvalidOperationException("This model has no classification head (NumClasses = 0); use ForwardFeatures and ForwardHead(preLogits: true).");
        int batch = Config.CheckImages(images);
        var pass = RentPass(batch);
        try
        {
            pass.Embed(images, ClassToken);
            var all = new[] { AttentionGroup.SelfAttention(Config.NumTokens) };
            var readout = pass.Layout.ReadoutRows(Config);
            for (int i = 0; i < Blocks.Length; i++)
                if (i < Blocks.Length - 1) pass.Block(i, all, [], keep: false);
                else pass.Block(i, readout.Restrict(all), [], keep: false, readout);
            return HeadLogits(pass);
        }
        finally { ReturnPass(pass); }
    }

    /// <summary>Trunk: images [B, C_in, H, W] (normalised) → tokens [B, N, D] after the final norm (as timm's
    /// <c>forward_features</c>: with <c>fc_norm</c> the final norm comes after pooling, so the tokens come out unnormalised).</summary>
    public Tensor ForwardFeatures(Tensor images) => ForwardFeatures(images, null);

    /// <summary>The trunk, handing each block's qkv [B, N, 3D] to <paramref name="onBlockQkv"/> (layer, qkv) right after that block:
    /// how VQT reads every layer's keys and values without a second pass.</summary>
    internal Tensor ForwardFeatures(Tensor images, Action<int, float[]>? onBlockQkv)
    {
        int batch = Config.CheckImages(images);
        var output = new Tensor([batch, Config.NumTokens, Config.Dim]);
        var pass = RentPass(batch);
        try
        {
            pass.Embed(images, ClassToken);
            var all = new[] { AttentionGroup.SelfAttention(Config.NumTokens) };
            foreach (var block in Blocks)
            {
                pass.Block(block.Index, all, [], keep: false);
                onBlockQkv?.Invoke(block.Index, pass.WorkingQkv);
            }
            pass.FinalNormAll(output.Data);
        }
        finally { ReturnPass(pass); }
        return output;
    }

    /// <summary>The backbone's own head on a pass's pooled readout → logits [B, C]: the head on the pooled vector, or for a
    /// distilled model (head(class token) + head_dist(distillation token)) / 2, as timm's eval forward.</summary>
    internal Tensor HeadLogits(StreamPass pass)
    {
        var pooled = pass.Pool();
        if (!Config.DistillationToken) return Head(pooled, pass.Batch);
        return DistilledHeads(pass.PooledRows, pass.Batch);
    }

    /// <summary>The classification head on pooled vectors [B, D] → logits [B, C].</summary>
    internal Tensor Head(ReadOnlySpan<float> pooled, int batch)
    {
        var logits = new Tensor([batch, Config.NumClasses]);
        Linear.Forward(logits.Data, pooled[..(batch * Config.Dim)], HeadPacked!, HeadBias!.Data, batch);
        return logits;
    }

    /// <summary>(head(x[:, 0]) + head_dist(x[:, 1])) / 2 from the final-norm class and distillation tokens [B, 2, D].</summary>
    Tensor DistilledHeads(ReadOnlySpan<float> rows, int batch)
    {
        int d = Config.Dim, c = Config.NumClasses;
        var cls = new float[batch * d];
        var dist = new float[batch * d];
        for (int b = 0; b < batch; b++)
        {
            rows.Slice(2 * b * d, d).CopyTo(cls.AsSpan(b * d, d));
            rows.Slice((2 * b + 1) * d, d).CopyTo(dist.AsSpan(b * d, d));
        }
        var logits = Head(cls, batch);
        var distLogits = new float[batch * c];
        Linear.Forward(distLogits, dist, _parameters["head_dist.weight"].Data, _parameters["head_dist.bias"].Data, batch, d, c);
        TensorPrimitives.Add(logits.Data, distLogits, logits.Data);
        TensorPrimitives.Multiply(logits.Data, 0.5f, logits.Data);
        return logits;
    }

    /// <summary>timm's <c>forward_head</c> on features [B, N, D] from <see cref="ForwardFeatures(Tensor)"/>: pool (the class
    /// token; a distilled model's class and distillation tokens; or the average of the patch tokens, prefix tokens excluded),
    /// then <c>fc_norm</c> when the model has one → the pooled vector [B, D] with <paramref name="preLogits"/> (a distilled
    /// model averages its two tokens), else the logits [B, C].</summary>
    public Tensor ForwardHead(Tensor features, bool preLogits = false)
    {
        var c = Config;
        if (features.Rank != 3 || features.Shape[2] != c.Dim || features.Shape[1] != c.NumTokens) throw new ArgumentException($"Features must be [B, {c.NumTokens}, {c.Dim}], got {features.ShapeString}.");
        if (!preLogits && HeadPacked is null) throw new InvalidOperationException("This model has no classification head (NumClasses = 0); use preLogits.");
        int batch = features.Shape[0], n = features.Shape[1], d = c.Dim;
        var x = features.Data;
        if (c.DistillationToken)
        {
            var rows = new float[batch * 2 * d];
            for (int b = 0; b < batch; b++) Array.Copy(x, (long)b * n * d, rows, 2L * b * d, 2 * d);
            if (!preLogits) return DistilledHeads(rows, batch);
            var mean = new Tensor([batch, d]);
            for (int b = 0; b < batch; b++)
                TensorPrimitives.Add(rows.AsSpan(2 * b * d, d), rows.AsSpan((2 * b + 1) * d, d), mean.Data.AsSpan(b * d, d));
            TensorPrimitives.Multiply(mean.Data, 0.5f, mean.Data);
            return mean;
        }
        var pooled = new Tensor([batch, d]);
        if (c.GlobalPool == VitPooling.Token)
            for (int b = 0; b < batch; b++) Array.Copy(x, (long)b * n * d, pooled.Data, (long)b * d, d);
        else
        {
            int prefix = c.PrefixTokens, p = c.NumPatches;
            for (int b = 0; b < batch; b++) StreamPass.MeanOfRows(x.AsSpan((b * n + prefix) * d, p * d), p, d, pooled.Data.AsSpan(b * d, d));
            if (c.FcNorm) LayerNorm.Forward(pooled.Data, default, default, pooled.Data, NormWeight.Data, NormBias.Data, batch, d, c.LayerNormEps);
        }
        return preLogits ? pooled : Head(pooled.Data, batch);
    }

    /// <summary>Drops the pooled inference buffers (they are rebuilt on the next forward).</summary>
    public void ReleaseWorkspaces() => _passes.Clear();

    StreamPass RentPass(int batch) =>
        (_passes.GetOrAdd(batch, _ => new()).TryDequeue(out var pass) ? pass : new StreamPass(this, StreamLayout.Of(Config))).Begin(batch);

    void ReturnPass(StreamPass pass) => _passes.GetOrAdd(pass.Batch, _ => new()).Enqueue(pass);
}
