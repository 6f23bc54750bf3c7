using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.TorchSharp.Native;
using MLNet.MemoryTokens.Tuning;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MLNet.MemoryTokens.TorchSharp.Model;

/// <summary>timm's <c>VisionTransformer</c> as TorchSharp modules, every family the engine loads (<see cref="VitConfig"/>), the
/// parameters under timm's names (<c>cls_token</c>, <c>dist_token</c>, <c>reg_token</c>, <c>pos_embed</c>,
/// <c>patch_embed.proj.*</c>, <c>norm_pre.*</c>, <c>blocks.{i}.{norm1,attn.qkv,attn.proj,ls1.gamma,norm2,mlp.fc1,mlp.fc2,ls2.gamma}.*</c>,
/// <c>norm.*</c> or <c>fc_norm.*</c>, <c>head.*</c>, <c>head_dist.*</c>), so the engine's state dicts load as they are.</summary>
/// <remarks>
/// Legend: B batch, N original rows (prefix — class, distillation, register tokens — then P patches), T task class-token rows,
/// S stream rows (N + task/query rows), M key/value-only rows (memory), D width, H heads, d = D/H.
/// The one block forward (<see cref="VitBlock.Forward"/>) takes a stream, optional key/value-only rows and an attention mask:
/// every method is that call with its own rows and mask (see <c>Tuning/TorchAdaptedVit</c>). A head reads <see cref="Pool"/>
/// (timm's <c>forward_head(pre_logits=True)</c>: the final-norm class token; a distilled model's class and distillation tokens,
/// each final-normed, averaged; or the patch rows averaged then <c>fc_norm</c>, or final-normed then averaged), a masked task's
/// its own row after the readout norm (<see cref="ReadoutNorm"/>), as the engine's <c>StreamPass</c>. Each block runs in its own
/// dispose scope, so a forward holds one block's intermediates at a time (autograd keeps what backward needs on its own).
/// </remarks>
public sealed class TorchVit : nn.Module
{
    public VitConfig Config { get; }
    public Device Device { get; }
    public ComputePrecision Precision { get; set; }

    // field names are the timm names (TorchSharp registers non-null fields by name)
#pragma warning disable IDE1006
    readonly Parameter? cls_token, dist_token, reg_token;
    readonly Parameter pos_embed;
    readonly PatchEmbed patch_embed;
    readonly LayerNorm? norm_pre;
    readonly ModuleList<VitBlock> blocks;
    readonly LayerNorm? norm, fc_norm;
    readonly Linear? head, head_dist;
#pragma warning restore IDE1006

    /// <summary>[1, 1, D], or null for a model without a class token.</summary>
    public Parameter? ClassToken => cls_token;
    public Parameter PosEmbed => pos_embed;           // [1, prefix (0 with no_embed_class) + P, D]
    public Linear? Head => head;
    public IList<VitBlock> Blocks => blocks;
    LayerNorm FinalNorm => norm ?? fc_norm!;

    /// <summary>Builds the model on <paramref name="device"/> from a timm-named state dict matching <paramref name="config"/>
    /// exactly (the engine checked it when it loaded the backbone). <paramref name="trainable"/>: every weight requires grad
    /// (full fine-tuning); otherwise the model is frozen.</summary>
    public TorchVit(VitConfig config, IReadOnlyDictionary<string, Tensor> stateDict, Device device, bool trainable = false) : base(nameof(TorchVit))
    {
        config.Validate();
        Config = config; Device = device;
        int d = config.Dim;
        if (config.ClassToken) cls_token = new Parameter(zeros(1, 1, d));
        if (config.DistillationToken) dist_token = new Parameter(zeros(1, 1, d));
        if (config.RegisterTokens > 0) reg_token = new Parameter(zeros(1, config.RegisterTokens, d));
        pos_embed = new Parameter(zeros(1, config.PosEmbedPrefix + config.NumPatches, d));
        patch_embed = new PatchEmbed(config);
        if (config.PreNorm) norm_pre = nn.LayerNorm(d, config.LayerNormEps);
        blocks = new ModuleList<VitBlock>(Enumerable.Range(0, config.Depth).Select(_ => new VitBlock(config)).ToArray());
        if (config.FcNorm) fc_norm = nn.LayerNorm(d, config.LayerNormEps);
        else norm = nn.LayerNorm(d, config.LayerNormEps);
        if (config.NumClasses > 0)
        {
            head = nn.Linear(d, config.NumClasses);
            if (config.DistillationToken) head_dist = nn.Linear(d, config.NumClasses);
        }
        RegisterComponents();
        TorchTensors.LoadStrict(this, stateDict, "backbone");
        this.to(device);
        foreach (var (_, p) in named_parameters())
        {
            p.requires_grad = trainable;
            p.DetachFromDisposeScope();   // the weights live as long as the model, not as the scope it was built in
        }
    }

    /// <summary>The engine backbone's weights on <paramref name="device"/>.</summary>
    public static TorchVit FromEngine(VisionTransformer model, Device device, bool trainable = false) => new(model.Config, model.Parameters, device, trainable);

    /// <summary>Sets <see cref="Precision"/> and returns this model.</summary>
    public TorchVit WithPrecision(ComputePrecision precision)
    {
        Precision = precision;
        return this;
    }

    /// <summary>The embedded stream [B, N + T, D], as the engine's <c>Embedding.Forward</c>: the prefix rows (the class token —
    /// the backbone's, or <paramref name="classToken"/> [1, 1, D] — then the distillation and register tokens), each with its
    /// position unless the model has <c>no_embed_class</c>; the patches plus their positions; then one row per task class token
    /// [1, 1, D] (with the class token's position when it has one); then, for pre-norm models, <c>norm_pre</c> over all of them.</summary>
    public torch.Tensor Embed(torch.Tensor images, torch.Tensor? classToken = null, IReadOnlyList<torch.Tensor>? taskTokens = null)
    {
        var c = Config;
        if (images.ndim != 4 || images.shape[1] != c.InChannels || images.shape[2] != c.ImageSize || images.shape[3] != c.ImageSize)
            throw new ArgumentException($"Images must be [B, {c.InChannels}, {c.ImageSize}, {c.ImageSize}] for this model, got [{string.Join(", ", images.shape)}].");
        if (classToken is not null && !c.ClassToken) throw new ArgumentException("This model has no class token to replace.");
        using var scope = NewDisposeScope();
        long b = images.shape[0];
        int posPrefix = c.PosEmbedPrefix;
        var rows = new List<torch.Tensor>();
        var prefix = new List<torch.Tensor>();
        if (c.ClassToken) prefix.Add(classToken ?? cls_token!);
        if (c.DistillationToken) prefix.Add(dist_token!);
        if (reg_token is not null) prefix.Add(reg_token);
        if (prefix.Count > 0)
        {
            var tokens = cat(prefix, 1);                                                    // [1, prefix, D]
            if (posPrefix > 0) tokens = tokens + pos_embed.narrow(1, 0, posPrefix);
            rows.Add(tokens.expand(b, -1, -1));
        }
        rows.Add(patch_embed.call(images) + pos_embed.narrow(1, posPrefix, c.NumPatches));   // [B, P, D]
        foreach (var t in taskTokens ?? [])
            rows.Add((c.ClassTokenHasPosition ? t + pos_embed.narrow(1, 0, 1) : t).expand(b, 1, c.Dim));
        var x = cat(rows, 1);
        if (norm_pre is not null) x = F.layer_norm(x, [c.Dim], norm_pre.weight, norm_pre.bias, c.LayerNormEps);
        return scope.MoveToOuter(x);
    }

    /// <summary>Every block over the stream (no extra rows, no mask): the backbone's own trunk.</summary>
    public torch.Tensor Trunk(torch.Tensor x)
    {
        foreach (var block in blocks) x = block.Forward(x, null, null, Precision);
        return x;
    }

    /// <summary>The backbone's pooling of a stream [B, ≥ N, D] whose first N rows are the originals → [B, D] (float32), what a
    /// head reads (timm's <c>forward_head(pre_logits=True)</c>).</summary>
    public torch.Tensor Pool(torch.Tensor x)
    {
        var c = Config;
        using var scope = NewDisposeScope();
        torch.Tensor pooled;
        if (c.DistillationToken) pooled = ReadoutNorm(x.narrow(1, 0, 2)).mean([1]);        // class and distillation tokens
        else if (c.GlobalPool == VitPooling.Token) pooled = ReadoutNorm(x.select(1, 0));
        else
        {
            var patches = x.narrow(1, c.PrefixTokens, c.NumPatches).to(ScalarType.Float32);
            pooled = c.FcNorm ? ReadoutNorm(patches.mean([1])) : ReadoutNorm(patches).mean([1]);
        }
        return scope.MoveToOuter(pooled);
    }

    /// <summary>The backbone's own head on a stream [B, ≥ N, D] → logits [B, C]: the head on <see cref="Pool"/>, or for a
    /// distilled model (head(class token) + head_dist(distillation token)) / 2, as timm's eval forward.</summary>
    public torch.Tensor HeadLogits(torch.Tensor x)
    {
        if (head is null) throw new InvalidOperationException("This model has no classification head (NumClasses = 0).");
        using var scope = NewDisposeScope();
        if (!Config.DistillationToken) return scope.MoveToOuter(F.linear(Pool(x), head.weight!, head.bias));
        var rows = ReadoutNorm(x.narrow(1, 0, 2));                                           // [B, 2, D]
        var logits = (F.linear(rows.select(1, 0), head.weight!, head.bias) + F.linear(rows.select(1, 1), head_dist!.weight!, head_dist.bias)) * 0.5f;
        return scope.MoveToOuter(logits);
    }

    /// <summary>The backbone's own forward: logits [B, C] of normalised images (needs a head).</summary>
    public torch.Tensor Forward(torch.Tensor images)
    {
        using var scope = NewDisposeScope();
        return scope.MoveToOuter(HeadLogits(Trunk(Embed(images))));
    }

    /// <summary>The backbone's own logits [B, C] of normalised host images [B, 3, S, S] (no graph), back on the host.</summary>
    public MLNet.MemoryTokens.Tensor Predict(MLNet.MemoryTokens.Tensor images)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        return TorchTensors.ToEngine(Forward(TorchTensors.ToTorch(images, Device)));
    }

    /// <summary>The pooled output [B, D] of normalised images: what a new head reads (the linear probe's features).</summary>
    public torch.Tensor PreLogits(torch.Tensor images)
    {
        using var scope = NewDisposeScope();
        return scope.MoveToOuter(Pool(Trunk(Embed(images))));
    }

    /// <summary>The readout norm (<c>norm</c>, or <c>fc_norm</c>) of rows [.., D], in float32: a masked task's head reads its row so.</summary>
    public torch.Tensor ReadoutNorm(torch.Tensor x) => F.layer_norm(x.to(ScalarType.Float32), [Config.Dim], FinalNorm.weight, FinalNorm.bias, Config.LayerNormEps);

    /// <summary>y = x Wᵀ + b, in bf16 under bf16 autocast (the result stays bf16, as autocast leaves it).</summary>
    public torch.Tensor Linear(torch.Tensor x, torch.Tensor w, torch.Tensor? b) => Ops.Linear(x, w, b, Precision);
}

/// <summary>timm's <c>PatchEmbed</c>: a stride-p convolution (without bias for pre-norm models), flattened to rows.</summary>
public sealed class PatchEmbed : nn.Module<torch.Tensor, torch.Tensor>
{
#pragma warning disable IDE1006
    readonly Conv2d proj;
#pragma warning restore IDE1006
    public PatchEmbed(VitConfig c) : base(nameof(PatchEmbed))
    {
        proj = nn.Conv2d(c.InChannels, c.Dim, c.PatchSize, stride: c.PatchSize, bias: c.PatchBias);
        RegisterComponents();
    }

    /// <summary>[B, C, H, W] → [B, P, D].</summary>
    public override torch.Tensor forward(torch.Tensor images)
    {
        using var scope = NewDisposeScope();
        return scope.MoveToOuter(proj.call(images).flatten(2).transpose(1, 2));
    }
}

/// <summary>One pre-norm block: x ← x + γ₁ ⊙ Proj(MHSA(LN1(x))); x ← x + γ₂ ⊙ FC2(act(FC1(LN2(x)))), with optional key/value-only
/// rows and an attention mask; γ (LayerScale) only where the family has it, act GELU or QuickGELU. The timm field names (norm1,
/// attn.qkv, attn.proj, ls1, norm2, mlp.fc1, mlp.fc2, ls2) name the parameters.</summary>
public sealed class VitBlock : nn.Module
{
#pragma warning disable IDE1006
    readonly LayerNorm norm1, norm2;
    readonly AttentionWeights attn;
    readonly MlpWeights mlp;
    readonly LayerScaleWeights? ls1, ls2;
#pragma warning restore IDE1006
    readonly VitConfig _c;

    public VitBlock(VitConfig c) : base(nameof(VitBlock))
    {
        _c = c;
        norm1 = nn.LayerNorm(c.Dim, c.LayerNormEps);
        norm2 = nn.LayerNorm(c.Dim, c.LayerNormEps);
        attn = new AttentionWeights(c);
        mlp = new MlpWeights(c);
        if (c.LayerScale) { ls1 = new LayerScaleWeights(c); ls2 = new LayerScaleWeights(c); }
        RegisterComponents();
    }

    /// <summary>LN1 of rows [.., D] (float32).</summary>
    public torch.Tensor Norm1(torch.Tensor x) => F.layer_norm(x, [_c.Dim], norm1.weight, norm1.bias, _c.LayerNormEps);

    /// <summary>Keys and values of raw rows [.., D]: LN1 then the k and v parts of qkv, [.., 2D] (k | v).</summary>
    public torch.Tensor KeyValues(torch.Tensor rows, ComputePrecision precision)
    {
        int d = _c.Dim;
        return Ops.Linear(Norm1(rows), attn.qkv.weight!.narrow(0, d, 2 * d), attn.qkv.bias?.narrow(0, d, 2 * d), precision);
    }

    /// <summary>The block on stream <paramref name="x"/> [B, S, D]. <paramref name="extraKeyValues"/> [1 or B, M, 2D]: keys/values of
    /// rows that are read but not updated (memory), placed after the stream's own. <paramref name="mask"/> [S, S + M] (true:
    /// attend), or null: every row reads every key. <paramref name="onKeyValues"/> sees the stream rows' keys/values [B, S, 2D]
    /// (how VQT reads the backbone without a second pass).</summary>
    public torch.Tensor Forward(torch.Tensor x, torch.Tensor? extraKeyValues, torch.Tensor? mask, ComputePrecision precision, Action<torch.Tensor>? onKeyValues = null)
    {
        using var scope = NewDisposeScope();
        int d = _c.Dim;
        long b = x.shape[0];
        var qkv = Ops.Linear(Norm1(x), attn.qkv.weight!, attn.qkv.bias, precision);          // [B, S, 3D]
        var q = qkv.narrow(2, 0, d);
        var kv = qkv.narrow(2, d, 2 * d);                                                   // [B, S, 2D]
        onKeyValues?.Invoke(kv);
        if (extraKeyValues is not null) kv = cat([kv, extraKeyValues.to(kv.dtype).expand(b, -1, -1)], 1);   // [B, S + M, 2D]
        var a = Attend(q, kv, mask);                                                        // [B, S, D]
        x = x + Scale(ls1, Ops.Linear(a, attn.proj.weight!, attn.proj.bias, precision).to(x.dtype));
        x = x + Scale(ls2, Mlp(x, precision).to(x.dtype));
        return scope.MoveToOuter(x);
    }

    /// <summary>The query path of VQT: rows <paramref name="q"/> [B, T, D] read only the given keys/values [B, N, 2D] (not
    /// each other) and then go through projection and MLP: z = q + γ₁ ⊙ Proj(Attn(LN1(q) Wqᵀ, K, V)); out = z + γ₂ ⊙ MLP(LN2(z)).</summary>
    public torch.Tensor ForwardQueries(torch.Tensor q, torch.Tensor keyValues, ComputePrecision precision)
    {
        using var scope = NewDisposeScope();
        int d = _c.Dim;
        var query = Ops.Linear(Norm1(q), attn.qkv.weight!.narrow(0, 0, d), attn.qkv.bias?.narrow(0, 0, d), precision);
        var a = Attend(query, keyValues.to(query.dtype), null);
        var z = q + Scale(ls1, Ops.Linear(a, attn.proj.weight!, attn.proj.bias, precision).to(q.dtype));
        return scope.MoveToOuter(z + Scale(ls2, Mlp(z, precision).to(z.dtype)));
    }

    /// <summary>γ ⊙ branch (LayerScale), or the branch as it is.</summary>
    static torch.Tensor Scale(LayerScaleWeights? ls, torch.Tensor branch) => ls is null ? branch : branch * ls.Gamma;

    /// <summary>Multi-head attention of queries [B, Q, D] over keys/values [B, K, 2D] → [B, Q, D].</summary>
    torch.Tensor Attend(torch.Tensor q, torch.Tensor kv, torch.Tensor? mask)
    {
        int h = _c.Heads, hd = _c.HeadDim, d = _c.Dim;
        long b = q.shape[0], nq = q.shape[1], nk = kv.shape[1];
        var qh = q.view(b, nq, h, hd).transpose(1, 2);                                      // [B, H, Q, d]
        var kh = kv.narrow(2, 0, d).reshape(b, nk, h, hd).transpose(1, 2);                  // [B, H, K, d]
        var vh = kv.narrow(2, d, d).reshape(b, nk, h, hd).transpose(1, 2);
        var o = F.scaled_dot_product_attention(qh, kh, vh, mask, 0.0, false);               // [B, H, Q, d]; mask true = attend
        return o.transpose(1, 2).reshape(b, nq, d);
    }

    torch.Tensor Mlp(torch.Tensor x, ComputePrecision precision)
    {
        var ln = F.layer_norm(x, [_c.Dim], norm2.weight, norm2.bias, _c.LayerNormEps);
        var hidden = Ops.Linear(ln, mlp.fc1.weight!, mlp.fc1.bias, precision);
        hidden = _c.Activation == VitActivation.QuickGelu ? hidden * F.sigmoid(hidden * 1.702f) : F.gelu(hidden);   // exact (erf) GELU, or CLIP's QuickGELU
        return Ops.Linear(hidden, mlp.fc2.weight!, mlp.fc2.bias, precision);
    }
}

/// <summary>timm's <c>Attention</c> weights: qkv [3D, D] (+ bias, unless the family omits it), proj [D, D] (+ bias).</summary>
public sealed class AttentionWeights : nn.Module
{
#pragma warning disable IDE1006
    internal readonly Linear qkv, proj;
#pragma warning restore IDE1006
    public AttentionWeights(VitConfig c) : base(nameof(AttentionWeights))
    {
        qkv = nn.Linear(c.Dim, 3 * c.Dim, hasBias: c.QkvBias);
        proj = nn.Linear(c.Dim, c.Dim);
        RegisterComponents();
    }
}

/// <summary>timm's <c>Mlp</c> weights: fc1 [F, D], fc2 [D, F] (+ biases).</summary>
public sealed class MlpWeights : nn.Module
{
#pragma warning disable IDE1006
    internal readonly Linear fc1, fc2;
#pragma warning restore IDE1006
    public MlpWeights(VitConfig c) : base(nameof(MlpWeights))
    {
        fc1 = nn.Linear(c.Dim, c.MlpDim);
        fc2 = nn.Linear(c.MlpDim, c.Dim);
        RegisterComponents();
    }
}

/// <summary>timm's <c>LayerScale</c>: a per-channel γ [D] on a residual branch (DINOv2, DeiT-III).</summary>
public sealed class LayerScaleWeights : nn.Module
{
#pragma warning disable IDE1006
    readonly Parameter gamma;
#pragma warning restore IDE1006
    public LayerScaleWeights(VitConfig c) : base(nameof(LayerScaleWeights))
    {
        gamma = new Parameter(ones(c.Dim));
        RegisterComponents();
    }

    public Parameter Gamma => gamma;
}

/// <summary>The few operations whose precision depends on <see cref="ComputePrecision"/>.</summary>
public static class Ops
{
    /// <summary>y = x Wᵀ + b: float32, or bf16 inputs and weights with a bf16 result (autocast's CUDA policy for linear).</summary>
    public static torch.Tensor Linear(torch.Tensor x, torch.Tensor w, torch.Tensor? b, ComputePrecision precision)
    {
        if (precision == ComputePrecision.Float32) return F.linear(x, w, b);
        using var scope = NewDisposeScope();
        return scope.MoveToOuter(F.linear(x.to(ScalarType.BFloat16), w.to(ScalarType.BFloat16), b?.to(ScalarType.BFloat16)));
    }
}
