using System.Numerics.Tensors;
using MLNet.MemoryTokens.Kernels;
using MLNet.MemoryTokens.Model;

namespace MLNet.MemoryTokens.Tuning.Baselines;

/// <summary>What a baseline trains besides its new head: nothing (linear probe), the class token, or every backbone weight.</summary>
public sealed record BaselineOptions
{
    /// <summary>Train a copy of the class token with the head.</summary>
    public bool TrainClassToken { get; init; }
    /// <summary>Train every backbone weight (full fine-tuning); the model then owns the backbone it is given and rewrites it.</summary>
    public bool TrainBackbone { get; init; }
}

/// <summary>The baselines' model, forward and backward: the backbone with a new linear head on its pooled output (the
/// final-norm class token, or what the backbone's pooling gives) — alone (linear probe), with the class token trained (head +
/// class token), or with every weight trained (full fine-tuning).</summary>
/// <remarks>Legend: B batch, N = prefix + P rows per sample, L layers, D width, C classes. The stream is the backbone's own; the
/// last block takes only the rows the pooling reads past attention (nothing else reaches the head).</remarks>
public sealed class BaselineVit : ITunedModel
{
    public VisionTransformer Backbone { get; }
    public BaselineOptions Options { get; }
    public int NumClasses { get; }
    /// <summary>[1, 1, D] the trained class token (a copy of the backbone's at start), or null.</summary>
    public Tensor? ClassToken { get; }
    /// <summary>[C, D] and [C]: the new head.</summary>
    public Tensor HeadWeight { get; }
    public Tensor HeadBias { get; }

    public IReadOnlyList<TrainableParameter> Parameters { get; }
    readonly TrainableParameter _head, _headBias;
    readonly TrainableParameter? _classToken;
    readonly Dictionary<string, TrainableParameter> _weights = new();   // full fine-tuning: every backbone weight, by timm name
    readonly BlockGrads[] _blockGrads = [];                             // full fine-tuning: per block, its weights' gradients

    readonly StreamPass _pass;
    readonly AttentionGroup[] _groups, _lastGroups;
    readonly LiveRows _lastLive;
    bool _taped;
    VitConfig C => Backbone.Config;

    /// <param name="backbone">The backbone (full fine-tuning trains this very object: pass a copy to keep the original).</param>
    public BaselineVit(VisionTransformer backbone, int numClasses, BaselineOptions options, int seed)
    {
        Backbone = backbone; NumClasses = numClasses; Options = options;
        var rng = new Random(seed);
        var parameters = new List<TrainableParameter>();
        if (options.TrainClassToken && !options.TrainBackbone)
        {
            ClassToken = backbone.ClassToken?.Clone() ?? throw new ArgumentException("This backbone has no class token (it pools by average): head + class token needs one; train the head alone, or memory tokens.");
            parameters.Add(_classToken = new TrainableParameter("cls_token", ClassToken) { WeightDecay = false });
        }
        (HeadWeight, HeadBias) = HeadInit.Create(numClasses, C.Dim, rng);
        parameters.Add(_head = new TrainableParameter("head.weight", HeadWeight));
        parameters.Add(_headBias = new TrainableParameter("head.bias", HeadBias));
        if (options.TrainBackbone)
        {
            foreach (var (name, t) in backbone.Parameters)
                if (!VitConfig.IsHeadWeight(name))
                    parameters.Add(_weights[name] = new TrainableParameter("backbone." + name, t) { WeightDecay = t.Rank >= 2 && name is not ("cls_token" or "pos_embed" or "dist_token" or "reg_token") });
            _blockGrads = backbone.Blocks.Select(_ => new BlockGrads(C)).ToArray();
        }
        Parameters = parameters;
        _pass = new StreamPass(backbone, StreamLayout.Of(C));
        _groups = [AttentionGroup.SelfAttention(_pass.Layout.Originals)];
        _lastLive = _pass.Layout.ReadoutRows(C);
        _lastGroups = _lastLive.Restrict(_groups);
    }

    float[] Grad(string weight) => _weights[weight].Grad.Data;

    /// <summary>Logits [B, C] for normalised images [B, 3, H, W]; with <paramref name="keepForBackward"/> ready for <see cref="Backward"/>.</summary>
    public Tensor Forward(Tensor images, bool keepForBackward)
    {
        int batch = C.CheckImages(images), L = C.Depth;
        if (Options.TrainBackbone) Backbone.InvalidatePackedWeights();   // the weights moved since the panels were packed
        var pass = _pass.Begin(batch);
        // x = [prefix tokens + pos | patches Wᵀ + b + pos] (the trained class token, when there is one)    [B, N, D]
        pass.Embed(images, ClassToken ?? Backbone.ClassToken);
        bool weightGradients = Options.TrainBackbone && keepForBackward;
        for (int l = 0; l < L; l++)
            pass.Block(l, l == L - 1 ? _lastGroups : _groups, [], keepForBackward, l == L - 1 ? _lastLive : null, weightGradients);
        // logits = pool(x) Whᵀ + bh (pool: the final-norm class token, or the backbone's pooling)          [B, D] → [B, C]
        var logits = new Tensor([batch, NumClasses]);
        Linear.Forward(logits.Data, pass.Pool(), HeadWeight.Data, HeadBias.Data, batch, C.Dim, NumClasses);
        _taped = keepForBackward;
        return logits;
    }

    /// <summary>Backward from dLoss/dLogits [B, C]: accumulates into every <see cref="TrainableParameter.Grad"/>.</summary>
    public void Backward(Tensor dLogits)
    {
        if (!_taped) throw new InvalidOperationException("Backward needs a Forward with keepForBackward = true first.");
        _taped = false;
        var pass = _pass;
        int batch = pass.Batch, d = C.Dim, L = C.Depth;
        bool full = Options.TrainBackbone;
        TunedModels.CheckLogitsGradient(dLogits, batch, NumClasses);
        // forward: logits = H Whᵀ + bh                    → dH = dlogits Wh; dWh += dlogitsᵀ H; dbh += Σ dlogits
        var dPooled = new float[batch * d];
        Linear.Backward(dPooled, _head.Grad.Data, _headBias.Grad.Data, dLogits.Data, pass.Normed, HeadWeight.Data, batch, d, NumClasses);
        // forward: H = pool(x)                          → dx: zero but at the pooled rows (the final norm trains with the backbone)
        string norm = C.FinalNormName;
        pass.PoolBackward(dPooled, full ? Grad(norm + ".weight") : default, full ? Grad(norm + ".bias") : default);
        for (int l = L - 1; l >= 0; l--)
            pass.BlockBackward(l, l == L - 1 ? _lastGroups : _groups, [], [], full ? _blockGrads[l] : null);
        if (full) FlushBlockGrads();
        // forward: x[b, 0] = norm_pre(cls + pos[0])      → dcls = Σ_b dx[b, 0], through norm_pre first (pre-norm models)
        pass.NormPreBackward(full && C.PreNorm ? Grad("norm_pre.weight") : default, full && C.PreNorm ? Grad("norm_pre.bias") : default);
        if (_classToken is not null) pass.SumGradient(pass.Layout.ClassTokenRow, 1, _classToken.Grad.Data);
        // full fine-tuning: the embedding's own weights
        if (full) pass.EmbedBackward(Grad);
    }

    /// <summary>Adds each block's weight gradients into the parameters' and clears them for the next step.</summary>
    void FlushBlockGrads()
    {
        for (int l = 0; l < _blockGrads.Length; l++)
            foreach (var (suffix, g) in _blockGrads[l].Named())
            {
                var dst = Grad($"blocks.{l}.{suffix}").AsSpan();
                TensorPrimitives.Add(dst, g, dst);
                Array.Clear(g);
            }
    }
}
