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

/// <summary>The baselines' model, forward and backward: the backbone with a new linear head on its final-norm class token —
/// alone (linear probe), with the class token trained (head + class token), or with every weight trained (full fine-tuning).</summary>
/// <remarks>Legend: B batch, N = 1 + P rows per sample, L layers, D width, C classes. The stream is the backbone's own; the
/// last block takes only the class token past attention (nothing else reaches the head).</remarks>
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
            ClassToken = backbone.ClassToken.Clone();
            parameters.Add(_classToken = new TrainableParameter("cls_token", ClassToken) { WeightDecay = false });
        }
        (HeadWeight, HeadBias) = HeadInit.Create(numClasses, C.Dim, rng);
        parameters.Add(_head = new TrainableParameter("head.weight", HeadWeight));
        parameters.Add(_headBias = new TrainableParameter("head.bias", HeadBias));
        if (options.TrainBackbone)
        {
            foreach (var (name, t) in backbone.Parameters)
                if (!name.StartsWith("head.", StringComparison.Ordinal))
                    parameters.Add(_weights[name] = new TrainableParameter("backbone." + name, t) { WeightDecay = t.Rank >= 2 && name is not ("cls_token" or "pos_embed") });
            _blockGrads = backbone.Blocks.Select(_ => new BlockGrads(C)).ToArray();
        }
        Parameters = parameters;
        _pass = new StreamPass(backbone, StreamLayout.Of(C));
        _groups = [AttentionGroup.SelfAttention(_pass.Layout.Originals)];
        _lastLive = new LiveRows((_pass.Layout.ClassTokenRow, 1));
        _lastGroups = _lastLive.Restrict(_groups);
    }

    float[] Grad(string weight) => _weights[weight].Grad.Data;

    /// <summary>Logits [B, C] for normalised images [B, 3, H, W]; with <paramref name="keepForBackward"/> ready for <see cref="Backward"/>.</summary>
    public Tensor Forward(Tensor images, bool keepForBackward)
    {
        int batch = C.CheckImages(images), L = C.Depth;
        if (Options.TrainBackbone) Backbone.InvalidatePackedWeights();   // the weights moved since the panels were packed
        var pass = _pass.Begin(batch);
        // x = [cls + pos[0] | patches Wᵀ + b + pos[1:]] (the trained class token, when there is one)        [B, N, D]
        pass.Embed(images, (ClassToken ?? Backbone.ClassToken).Data);
        bool weightGradients = Options.TrainBackbone && keepForBackward;
        for (int l = 0; l < L; l++)
            pass.Block(l, l == L - 1 ? _lastGroups : _groups, [], keepForBackward, l == L - 1 ? _lastLive : null, weightGradients);
        // logits = LN(x[:, 0]) Whᵀ + bh                                                                    [B, D] → [B, C]
        var logits = new Tensor([batch, NumClasses]);
        Linear.Forward(logits.Data, pass.FinalNorm(pass.Layout.ClassTokenRow), HeadWeight.Data, HeadBias.Data, batch, C.Dim, NumClasses);
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
        // forward: H = LN(x[:, 0])                        → dx: zero but at row 0 (the final norm trains with the backbone)
        pass.FinalNormBackward(pass.Layout.ClassTokenRow, dPooled, full ? Grad("norm.weight") : default, full ? Grad("norm.bias") : default);
        for (int l = L - 1; l >= 0; l--)
            pass.BlockBackward(l, l == L - 1 ? _lastGroups : _groups, [], [], full ? _blockGrads[l] : null);
        if (full) FlushBlockGrads();
        // forward: x[b, 0] = cls + pos[0]                 → dcls = Σ_b dx[b, 0]
        if (_classToken is not null) pass.SumGradient(pass.Layout.ClassTokenRow, 1, _classToken.Grad.Data);
        // full fine-tuning: the embedding's own weights
        if (full) pass.EmbedBackward(Grad("cls_token"), Grad("pos_embed"), Grad("patch_embed.proj.weight"), Grad("patch_embed.proj.bias"));
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
