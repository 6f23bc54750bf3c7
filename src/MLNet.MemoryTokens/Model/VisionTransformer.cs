using System.Collections.Concurrent;
using MLNet.MemoryTokens.Kernels;

namespace MLNet.MemoryTokens.Model;

/// <summary>timm's <c>VisionTransformer</c>: patch embedding, class token, learned absolute position embedding,
/// pre-norm blocks (LN → MHSA → residual, LN → MLP(GELU) → residual), final LayerNorm, linear head on the class token.</summary>
/// <remarks>
/// Legend: B batch, N = 1 + P tokens (class token first), P patches, D width, H heads, d = D/H, F MLP width, C classes.
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
    internal Tensor ClassToken => _parameters["cls_token"];       // [1, 1, D]
    internal Tensor PosEmbed => _parameters["pos_embed"];         // [1, N, D]
    internal Tensor PatchWeight => _parameters["patch_embed.proj.weight"]; // [D, C, p, p]
    internal Tensor PatchBias => _parameters["patch_embed.proj.bias"];     // [D]
    internal Tensor NormWeight => _parameters["norm.weight"];     // [D]
    internal Tensor NormBias => _parameters["norm.bias"];         // [D]
    internal Tensor? HeadWeight => _parameters.GetValueOrDefault("head.weight"); // [C, D]
    internal Tensor? HeadBias => _parameters.GetValueOrDefault("head.bias");     // [C]

    Gemm.PackedB? _patchPacked, _headPacked;
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

    /// <summary>Random weights (timm-like init: trunc-normal 0.02 linears, zero biases, unit LayerNorms), for tests and fixtures.</summary>
    public static VisionTransformer CreateRandom(VitConfig config, int seed)
    {
        var rng = new Random(seed);
        var sd = new Dictionary<string, Tensor>();
        foreach (var (key, shape) in config.StateDictShapes())
        {
            var t = new Tensor(shape);
            bool isNorm = key.Contains("norm");
            if (isNorm && key.EndsWith(".weight")) Array.Fill(t.Data, 1f);
            else if (!key.EndsWith(".bias") || key == "pos_embed")
                for (int i = 0; i < t.Length; i++) t.Data[i] = (float)(Gaussian(rng) * 0.02);
            sd[key] = t;
        }
        return new VisionTransformer(config, sd);
    }

    /// <summary>A deep copy (every weight copied): what full fine-tuning trains, so the caller's backbone stays as loaded.</summary>
    public VisionTransformer Clone() => new(Config, _parameters.ToDictionary(kv => kv.Key, kv => kv.Value.Clone()));

    internal static double Gaussian(Random rng)
    {
        double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }

    /// <summary>Rebuild the packed GEMM panels on next use: call after changing any weight in place.</summary>
    public void InvalidatePackedWeights()
    {
        _patchPacked = null; _headPacked = null;
        foreach (var b in Blocks) b.InvalidatePacked();
    }

    internal Gemm.PackedB PatchPacked => _patchPacked ??= Gemm.Pack(true, Config.InChannels * Config.PatchSize * Config.PatchSize, Config.Dim, PatchWeight.Data, Config.InChannels * Config.PatchSize * Config.PatchSize);
    internal Gemm.PackedB? HeadPacked => HeadWeight is null ? null : _headPacked ??= Gemm.Pack(true, Config.Dim, Config.NumClasses, HeadWeight.Data, Config.Dim);

    /// <summary>The full forward: logits [B, C] from images [B, C_in, H, W]. The last block takes only the class token past
    /// attention (nothing else reaches the head), so this is a little faster than <see cref="ForwardHead"/> on
    /// <see cref="ForwardFeatures(Tensor)"/>, and equal to it up to float rounding.</summary>
    public Tensor Forward(Tensor images)
    {
        if (HeadPacked is null) throw new InvalidOperationException("This model has no classification head (NumClasses = 0); use ForwardFeatures and ForwardHead(preLogits: true).");
        int batch = Config.CheckImages(images);
        var pass = RentPass(batch);
        try
        {
            pass.Embed(images, ClassToken.Data);
            var all = new[] { AttentionGroup.SelfAttention(Config.NumTokens) };
            var classTokenOnly = new LiveRows((0, 1));
            for (int i = 0; i < Blocks.Length; i++)
                if (i < Blocks.Length - 1) pass.Block(i, all, [], keep: false);
                else pass.Block(i, classTokenOnly.Restrict(all), [], keep: false, classTokenOnly);
            return Head(pass.FinalNorm(pass.Layout.ClassTokenRow), batch);
        }
        finally { ReturnPass(pass); }
    }

    /// <summary>Trunk: images [B, C_in, H, W] (normalised) → tokens [B, N, D] after the final LayerNorm.</summary>
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
            pass.Embed(images, ClassToken.Data);
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

    /// <summary>The classification head on final-norm class tokens [B, D] → logits [B, C].</summary>
    internal Tensor Head(ReadOnlySpan<float> classTokens, int batch)
    {
        var logits = new Tensor([batch, Config.NumClasses]);
        Linear.Forward(logits.Data, classTokens[..(batch * Config.Dim)], HeadPacked!, HeadBias!.Data, batch);
        return logits;
    }

    /// <summary>Head on the class token: features [B, N, D] → logits [B, C], or the class token [B, D] with <paramref name="preLogits"/>.</summary>
    public Tensor ForwardHead(Tensor features, bool preLogits = false)
    {
        if (features.Rank != 3 || features.Shape[2] != Config.Dim) throw new ArgumentException($"Features must be [B, N, {Config.Dim}], got {features.ShapeString}.");
        int batch = features.Shape[0], n = features.Shape[1], d = Config.Dim;
        var cls = new Tensor([batch, d]);
        for (int b = 0; b < batch; b++) Array.Copy(features.Data, (long)b * n * d, cls.Data, (long)b * d, d);
        if (preLogits) return cls;
        if (HeadPacked is null) throw new InvalidOperationException("This model has no classification head (NumClasses = 0); use preLogits.");
        return Head(cls.Data, batch);
    }

    /// <summary>Drops the pooled inference buffers (they are rebuilt on the next forward).</summary>
    public void ReleaseWorkspaces() => _passes.Clear();

    StreamPass RentPass(int batch) =>
        (_passes.GetOrAdd(batch, _ => new()).TryDequeue(out var pass) ? pass : new StreamPass(this, StreamLayout.Of(Config))).Begin(batch);

    void ReturnPass(StreamPass pass) => _passes.GetOrAdd(pass.Batch, _ => new()).Enqueue(pass);
}
