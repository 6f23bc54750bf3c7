using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Tuning;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;
using MLNet.MemoryTokens.TorchSharp.Native;

namespace MLNet.MemoryTokens.TorchSharp.Model;

/// <summary>timm's <c>VisionTransformer</c> as TorchSharp modules, parameters under timm's names (<c>cls_token</c>,
/// <c>pos_embed</c>, <c>patch_embed.proj.*</c>, <c>blocks.{i}.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}.*</c>,
/// <c>norm.*</c>, <c>head.*</c>), so the engine's state dicts load as they are.</summary>
/// <remarks>
/// Legend: B batch, N = 1 + P original tokens (class token first), S stream rows (N + task/memory/query rows), M key/value-only
/// rows (memory), D width, H heads, d = D/H.
/// The one block forward (<see cref="VitBlock.Forward"/>) takes a stream, optional key/value-only rows and an attention mask: every method
/// is that call with its own rows and mask (see <c>Tuning/TorchAdaptedVit</c>). Each block runs in its own dispose scope, so a
/// forward holds one block's intermediates at a time (autograd keeps what backward needs on its own).
/// </remarks>
public sealed class TorchVit : nn.Module
{
    public VitConfig Config { get; }
    public Device Device { get; }
    public ComputePrecision Precision { get; set; }

    // field names are the timm names (TorchSharp registers fields by name)
#pragma warning disable IDE1006
    readonly Parameter cls_token, pos_embed;
    readonly PatchEmbed patch_embed;
    readonly ModuleList<VitBlock> blocks;
    readonly LayerNorm norm;
    readonly Linear? head;
#pragma warning restore IDE1006

    public Parameter ClassToken => cls_token;      // [1, 1, D]
    public Parameter PosEmbed => pos_embed;        // [1, N, D]
    public LayerNorm Norm => norm;
    public Linear? Head => head;
    public IList<VitBlock> Blocks => blocks;

    /// <summary>Builds the model on <paramref name="device"/> from a timm-named state dict matching <paramref name="config"/>
    /// exactly (the engine checked it when it loaded the backbone). <paramref name="trainable"/>: every weight requires grad
    /// (full fine-tuning); otherwise the model is frozen.</summary>
    public TorchVit(VitConfig config, IReadOnlyDictionary<string, Tensor> stateDict, Device device, bool trainable = false) : base(nameof(TorchVit))
    {
        config.Validate();
        Config = config; Device = device;
        int d = config.Dim;
        cls_token = new Parameter(zeros(1, 1, d));
        pos_embed = new Parameter(zeros(1, config.NumTokens, d));
        patch_embed = new PatchEmbed(config);
        blocks = new ModuleList<VitBlock>(Enumerable.Range(0, config.Depth).Select(_ => new VitBlock(config)).ToArray());
        norm = nn.LayerNorm(d, config.LayerNormEps);
        head = config.NumClasses > 0 ? nn.Linear(d, config.NumClasses) : null;
        RegisterComponents();
        TorchTensors.LoadStrict(this, stateDict, "backbone");
        this.to(device);
        foreach (var (_, p) in named_parameters())
        {
            p.requires_grad = trainable;
            p.DetachFromDisposeScope();   // the weights live as long as the model, not as the scope it was built in
        }
    }

    /// <summary>Sets <see cref="Precision"/> and returns this model.</summary>
    public TorchVit WithPrecision(ComputePrecision precision)
    {
        Precision = precision;
        return this;
    }

    /// <summary>The engine backbone's weights on <paramref name="device"/>.</summary>
    public static TorchVit FromEngine(VisionTransformer model, Device device, bool trainable = false) => new(model.Config, model.Parameters, device, trainable);

    /// <summary>Patch embedding plus position embedding: [B, C, H, W] → patch rows [B, P, D] (pos_embed[1..] added).</summary>
    public torch.Tensor EmbedPatches(torch.Tensor images)
    {
        var c = Config;
        if (images.ndim != 4 || images.shape[1] != c.InChannels || images.shape[2] != c.ImageSize || images.shape[3] != c.ImageSize)
            throw new ArgumentException($"Images must be [B, {c.InChannels}, {c.ImageSize}, {c.ImageSize}] for this model, got [{string.Join(", ", images.shape)}].");
        using var scope = NewDisposeScope();
        var patches = patch_embed.call(images);                                      // [B, P, D]
        return scope.MoveToOuter(patches + pos_embed.narrow(1, 1, c.NumPatches));
    }

    /// <summary>A class-token row as it enters the stream: token + pos_embed[0], [1, 1, D].</summary>
    public torch.Tensor EmbedClassToken(torch.Tensor token) => token + pos_embed.narrow(1, 0, 1);

    /// <summary>The plain embedding [B, N, D]: the backbone's class token (or <paramref name="classToken"/> [1, 1, D]) then the patches.</summary>
    public torch.Tensor Embed(torch.Tensor images, torch.Tensor? classToken = null)
    {
        using var scope = NewDisposeScope();
        var patches = EmbedPatches(images);
        var cls = EmbedClassToken(classToken ?? cls_token).expand(patches.shape[0], 1, Config.Dim);
        return scope.MoveToOuter(cat([cls, patches], 1));
    }

    /// <summary>The backbone's own forward: logits [B, C] of normalised images (needs a head).</summary>
    public torch.Tensor Forward(torch.Tensor images)
    {
        if (head is null) throw new InvalidOperationException("This model has no classification head (NumClasses = 0).");
        using var scope = NewDisposeScope();
        return scope.MoveToOuter(Linear(PreLogits(images), head.weight!, head.bias));
    }

    /// <summary>The backbone's own logits [B, C] of normalised host images [B, 3, S, S] (no graph), back on the host.</summary>
    public MLNet.MemoryTokens.Tensor Predict(MLNet.MemoryTokens.Tensor images)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        return TorchTensors.ToEngine(Forward(TorchTensors.ToTorch(images, Device)));
    }

    /// <summary>The final-norm class token [B, D] of normalised images: what a head reads (the linear probe's features).</summary>
    public torch.Tensor PreLogits(torch.Tensor images)
    {
        using var scope = NewDisposeScope();
        var x = Embed(images);
        foreach (var b in blocks) x = b.Forward(x, null, null, Precision);
        return scope.MoveToOuter(FinalNorm(x.select(1, 0)));
    }

    /// <summary>The final LayerNorm (float32).</summary>
    public torch.Tensor FinalNorm(torch.Tensor x) => F.layer_norm(x.to(ScalarType.Float32), [Config.Dim], norm.weight, norm.bias, Config.LayerNormEps);

    /// <summary>y = x Wᵀ + b, in bf16 under bf16 autocast (the result stays bf16, as autocast leaves it).</summary>
    public torch.Tensor Linear(torch.Tensor x, torch.Tensor w, torch.Tensor? b) => Ops.Linear(x, w, b, Precision);
}

/// <summary>timm's <c>PatchEmbed</c>: a stride-p convolution, flattened to rows.</summary>
public sealed class PatchEmbed : nn.Module<torch.Tensor, torch.Tensor>
{
#pragma warning disable IDE1006
    readonly Conv2d proj;
#pragma warning restore IDE1006
    public PatchEmbed(VitConfig c) : base(nameof(PatchEmbed))
    {
        proj = nn.Conv2d(c.InChannels, c.Dim, c.PatchSize, stride: c.PatchSize);
        RegisterComponents();
    }

    /// <summary>[B, C, H, W] → [B, P, D].</summary>
    public override torch.Tensor forward(torch.Tensor images)
    {
        using var scope = NewDisposeScope();
        return scope.MoveToOuter(proj.call(images).flatten(2).transpose(1, 2));
    }
}

/// <summary>One pre-norm block: x ← x + Proj(MHSA(LN1(x))); x ← x + FC2(GELU(FC1(LN2(x)))), with optional key/value-only rows
/// and an attention mask. The timm field names (norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2) name the parameters.</summary>
public sealed class VitBlock : nn.Module
{
#pragma warning disable IDE1006
    readonly LayerNorm norm1, norm2;
    readonly AttentionWeights attn;
    readonly MlpWeights mlp;
#pragma warning restore IDE1006
    readonly VitConfig _c;

    public VitBlock(VitConfig c) : base(nameof(VitBlock))
    {
        _c = c;
        norm1 = nn.LayerNorm(c.Dim, c.LayerNormEps);
        norm2 = nn.LayerNorm(c.Dim, c.LayerNormEps);
        attn = new AttentionWeights(c);
        mlp = new MlpWeights(c);
        RegisterComponents();
    }

    /// <summary>LN1 of rows [.., D] (float32).</summary>
    public torch.Tensor Norm1(torch.Tensor x) => F.layer_norm(x, [_c.Dim], norm1.weight, norm1.bias, _c.LayerNormEps);

    /// <summary>Keys and values of raw rows [.., D]: LN1 then the k and v parts of qkv, [.., 2D] (k | v).</summary>
    public torch.Tensor KeyValues(torch.Tensor rows, ComputePrecision precision)
    {
        int d = _c.Dim;
        return Ops.Linear(Norm1(rows), attn.qkv.weight!.narrow(0, d, 2 * d), attn.qkv.bias!.narrow(0, d, 2 * d), precision);
    }

    /// <summary>The block on stream <paramref name="x"/> [B, S, D]. <paramref name="extraKeyValues"/> [1 or B, M, 2D]: keys/values of
    /// rows that are read but not updated (memory), placed after the stream's own. <paramref name="mask"/> [S, S + M] (true:
    /// attend), or null: every row reads every key. <paramref name="onKeyValues"/> sees the stream rows' keys/values [B, S, 2D]
    /// (how VQT reads the backbone without a second pass).</summary>
    public torch.Tensor Forward(torch.Tensor x, torch.Tensor? extraKeyValues, torch.Tensor? mask, ComputePrecision precision, Action<torch.Tensor>? onKeyValues = null)
    {
        using var scope = NewDisposeScope();
        int d = _c.Dim;
        long b = x.shape[0], s = x.shape[1];
        var qkv = Ops.Linear(Norm1(x), attn.qkv.weight!, attn.qkv.bias, precision);          // [B, S, 3D]
        var q = qkv.narrow(2, 0, d);
        var kv = qkv.narrow(2, d, 2 * d);                                                   // [B, S, 2D]
        onKeyValues?.Invoke(kv);
        if (extraKeyValues is not null) kv = cat([kv, extraKeyValues.to(kv.dtype).expand(b, -1, -1)], 1);   // [B, S + M, 2D]
        var a = Attend(q, kv, mask);                                                        // [B, S, D]
        x = x + Ops.Linear(a, attn.proj.weight!, attn.proj.bias, precision).to(x.dtype);
        x = x + Mlp(x, precision).to(x.dtype);
        return scope.MoveToOuter(x);
    }

    /// <summary>The query path of VQT: rows <paramref name="q"/> [B, T, D] read only the given keys/values [B, N, 2D] (not
    /// each other) and then go through projection and MLP: z = q + Proj(Attn(LN1(q) Wqᵀ, K, V)); out = z + MLP(LN2(z)).</summary>
    public torch.Tensor ForwardQueries(torch.Tensor q, torch.Tensor keyValues, ComputePrecision precision)
    {
        using var scope = NewDisposeScope();
        int d = _c.Dim;
        var query = Ops.Linear(Norm1(q), attn.qkv.weight!.narrow(0, 0, d), attn.qkv.bias!.narrow(0, 0, d), precision);
        var a = Attend(query, keyValues.to(query.dtype), null);
        var z = q + Ops.Linear(a, attn.proj.weight!, attn.proj.bias, precision).to(q.dtype);
        return scope.MoveToOuter(z + Mlp(z, precision).to(z.dtype));
    }

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
        var hidden = F.gelu(Ops.Linear(ln, mlp.fc1.weight!, mlp.fc1.bias, precision));     // exact (erf) GELU
        return Ops.Linear(hidden, mlp.fc2.weight!, mlp.fc2.bias, precision);
    }
}

/// <summary>timm's <c>Attention</c> weights: qkv [3D, D] (+ bias), proj [D, D] (+ bias).</summary>
public sealed class AttentionWeights : nn.Module
{
#pragma warning disable IDE1006
    internal readonly Linear qkv, proj;
#pragma warning restore IDE1006
    public AttentionWeights(VitConfig c) : base(nameof(AttentionWeights))
    {
        qkv = nn.Linear(c.Dim, 3 * c.Dim);
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
