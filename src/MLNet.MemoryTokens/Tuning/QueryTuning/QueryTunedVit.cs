using System.Numerics.Tensors;
using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.Kernels;
using MLNet.MemoryTokens.Model;

namespace MLNet.MemoryTokens.Tuning.QueryTuning;

/// <summary>Visual Query Tuning (Tu et al., CVPR 2023): per layer, T learnable query tokens read the layer's tokens and hand
/// their summaries to the head; the backbone's stream is never changed.</summary>
/// <remarks>
/// Layer l: a query row q (dropout in training) goes through block l with keys/values from the N original tokens only —
/// z = q + Proj(Attn(LN1(q), K_l, V_l)), out = z + MLP(LN2(z)) — so queries neither see each other nor are seen.
/// Head input [D·(1 + L·T)]: the L2-normalised pooled output of the backbone (its final-norm class token, or what its
/// pooling gives: a distilled model's two tokens averaged, the patch average with <c>fc_norm</c>), then for each layer the
/// L2-normalised flattened [T·D] query outputs. Since the stream does not depend on anything trained, K_l, V_l and the class token are computed
/// once per image (<see cref="CaptureInto"/> a cache, or <see cref="CaptureKeyValues"/>) and training runs only the query paths
/// (<see cref="ForwardCached"/>).
/// </remarks>
public sealed class QueryTunedVit : IQueryFeatures
{
    public VisionTransformer Backbone { get; }
    public int QueryTokens { get; }
    public float QueryDropout { get; }
    public int NumClasses { get; }
    /// <summary>[L, T, D]</summary>
    public Tensor Queries { get; }
    /// <summary>[C, K] and [C]: K = D·(1 + L·T), or the kept features after <see cref="Compress"/>.</summary>
    public Tensor HeadWeight { get; private set; }
    public Tensor HeadBias { get; }
    /// <summary>The full aggregated feature size D·(1 + L·T).</summary>
    public int FeatureDim => Backbone.Config.Dim * (1 + Backbone.Config.Depth * QueryTokens);
    /// <summary>Indices of the features the head reads after compression (ascending), or null: all of them.</summary>
    public int[]? KeptFeatures { get; private set; }
    /// <summary>What the head reads: <see cref="FeatureDim"/>, or the kept count.</summary>
    public int HeadInput => KeptFeatures?.Length ?? FeatureDim;

    public IReadOnlyList<TrainableParameter> Parameters => _parameters;
    readonly List<TrainableParameter> _parameters = new();
    readonly BlockTape[] _tapes;
    readonly Random _dropoutRng;
    VitConfig C => Backbone.Config;

    public QueryTunedVit(VisionTransformer backbone, int numClasses, int queryTokens, float queryDropout, int seed)
    {
        if (numClasses < 1) throw new ArgumentOutOfRangeException(nameof(numClasses), numClasses, "A task needs at least one class.");
        if (queryTokens < 1) throw new ArgumentOutOfRangeException(nameof(queryTokens), queryTokens, "VQT needs at least one query token per layer.");
        if (queryDropout < 0 || queryDropout >= 1) throw new ArgumentOutOfRangeException(nameof(queryDropout), queryDropout, "Query dropout must be in [0, 1).");
        Backbone = backbone; NumClasses = numClasses; QueryTokens = queryTokens; QueryDropout = queryDropout;
        var rng = new Random(seed);
        Queries = new Tensor([C.Depth, queryTokens, C.Dim]);
        InitQueries(Queries, C, rng);
        (HeadWeight, HeadBias) = HeadInit.Create(numClasses, FeatureDim, rng);
        _parameters.Add(new TrainableParameter("queries", Queries) { WeightDecay = false });
        _parameters.Add(new TrainableParameter("head.weight", HeadWeight));
        _parameters.Add(new TrainableParameter("head.bias", HeadBias));
        var scratch = new BackwardScratch();   // blocks run backward one at a time: one scratch serves all
        _tapes = Enumerable.Range(0, C.Depth).Select(_ => new BlockTape { Scratch = scratch }).ToArray();
        _dropoutRng = new Random(Seeds.Mix(seed, 0xd209, 0));
    }

    /// <summary>VQT's query initialisation, as the official code: uniform(±sqrt(6 / (3·p² + D))).</summary>
    internal static void InitQueries(Tensor queries, VitConfig c, Random rng)
    {
        double bound = Math.Sqrt(6.0 / (3.0 * c.PatchSize * c.PatchSize + c.Dim));
        for (int i = 0; i < queries.Length; i++) queries.Data[i] = (float)((rng.NextDouble() * 2 - 1) * bound);
    }

    /// <summary>What the frozen backbone gives VQT for a batch: per layer the original tokens' keys and values
    /// (per sample [N, 2D], k then v in each row) and the pooled output [B, D] (the final-norm class token, or the pooling's).</summary>
    public abstract class KeyValues(float[] classToken, int batch, int tokens)
    {
        /// <summary>[B, D] the pooled output of every image: the final-norm class token (token pooling), or what the backbone's
        /// pooling gives (timm's <c>forward_head(pre_logits=True)</c>).</summary>
        public float[] ClassToken { get; } = classToken;
        public int Batch { get; } = batch;
        public int Tokens { get; } = tokens;
        public abstract int Layers { get; }
        /// <summary>Layer <paramref name="layer"/>'s keys and values, valid until the next call that produced them.</summary>
        public abstract ExternalKeyValues Layer(int layer);
    }

    /// <summary>Keys/values of every layer held in float32 ([L][B, N, 2D]): what a backbone pass produces.</summary>
    sealed class CapturedKeyValues(float[][] perLayer, float[] classToken, int batch, int tokens, int dim) : KeyValues(classToken, batch, tokens)
    {
        readonly ExternalKeyValues[] _layers = perLayer.Select(a => ExternalKeyValues.Float32(a, tokens, dim)).ToArray();
        public float[] Array(int layer) => perLayer[layer];
        public override int Layers => perLayer.Length;
        public override ExternalKeyValues Layer(int layer) => _layers[layer];
    }

    CapturedKeyValues? _captured;

    /// <summary>Lets go of what the backbone passes needed (captured keys/values, the backbone's inference buffers): once every
    /// training image is cached, epochs read only the cache.</summary>
    public void ReleaseCaptureBuffers()
    {
        _captured = null;
        Backbone.ReleaseWorkspaces();
    }

    /// <summary>Runs the frozen backbone once and keeps what VQT reads from it. The arrays are reused by the next call.</summary>
    public KeyValues CaptureKeyValues(Tensor images)
    {
        int batch = images.Shape[0], n = C.NumTokens, d = C.Dim;
        C.CheckBatch(batch, n, training: false);
        if (_captured is null || _captured.Batch != batch)
            _captured = new CapturedKeyValues(Enumerable.Range(0, C.Depth).Select(_ => GC.AllocateUninitializedArray<float>(batch * n * 2 * d)).ToArray(),
                new float[batch * d], batch, n, d);
        var captured = _captured;
        var features = Backbone.ForwardFeatures(images, (layer, qkv) =>
        {
            var kv = captured.Array(layer);
            for (long r = 0; r < (long)batch * n; r++) Array.Copy(qkv, r * 3 * d + d, kv, r * 2 * d, 2 * d);
        });
        Array.Copy(Backbone.ForwardHead(features, preLogits: true).Data, _captured.ClassToken, batch * d);
        return _captured;
    }

    /// <summary>Runs the frozen backbone once and writes what VQT reads straight into <paramref name="cache"/> as images
    /// <paramref name="indices"/> (one per batch row): the first epoch's path, with no float32 copy of the batch's keys/values.</summary>
    public void CaptureInto(Tensor images, KeyValueCache cache, IReadOnlyList<int> indices)
    {
        int n = C.NumTokens, d = C.Dim;
        var cc = cache.Config;
        if (cc.Depth != C.Depth || cc.NumTokens != n || cc.Dim != d) throw new ArgumentException($"The cache is for {cc.Depth} layers × {cc.NumTokens} tokens × {cc.Dim}; the backbone has {C.Depth} × {n} × {d}.");
        if (indices.Count != images.Shape[0]) throw new ArgumentException($"{images.Shape[0]} images but {indices.Count} cache indices.");
        var features = Backbone.ForwardFeatures(images, (layer, qkv) => cache.StoreLayer(layer, qkv, indices));
        var pooled = Backbone.ForwardHead(features, preLogits: true);
        for (int b = 0; b < indices.Count; b++) cache.StoreClassToken(indices[b], pooled.Data.AsSpan(b * d, d));
    }

    // what backward needs from the last training forward
    KeyValues? _kv;                 // the keys/values the query paths read ([L][B, N, 2D], wherever they are held)
    float[] _x = [];                // [B, T·D] backward's gradient of one layer's query rows
    float[] _masks = [];            // [L, B, T·D] the dropout masks (0 or 1/(1−p)), kept for backward
    float[][] _outputs = [];        // per layer [B, T·D]: the query rows going in, the block's output coming out
    bool _taped;
    QueryFeatures? _head;           // the head's input F [B, D·(1 + L·T)] and its norms

    public Tensor Forward(Tensor images, bool keepForBackward) => ForwardCached(CaptureKeyValues(images), keepForBackward);

    /// <summary>The query paths and head from captured (or cached) keys/values: logits [B, C].</summary>
    public Tensor ForwardCached(KeyValues kv, bool keepForBackward)
    {
        int batch = kv.Batch, t = QueryTokens, d = C.Dim, L = C.Depth, f = FeatureDim;
        if (kv.Tokens != C.NumTokens || kv.Layers != L || kv.Layer(0).Dim != d) throw new ArgumentException($"Keys/values are for {kv.Tokens} tokens, {kv.Layers} layers, width {kv.Layer(0).Dim}; the backbone has {C.NumTokens}, {L}, {d}.");
        bool dropout = keepForBackward && QueryDropout > 0;
        if (_outputs.Length != L || _outputs[0].Length != (long)batch * t * d)
        {
            Limits.Check("The batch size", batch, 0, Limits.MaxBatch);
            Limits.CheckElements($"VQT's query dropout masks for a batch of {batch}", Limits.Product(L, batch, t, d), "Lower the batch size.");
            Limits.CheckElements($"VQT's attention probabilities for a batch of {batch}", Limits.Product(batch, C.Heads, t, C.NumTokens), "Lower the batch size.");
            _outputs = Enumerable.Range(0, L).Select(_ => new float[batch * t * d]).ToArray();
            _x = new float[batch * t * d];
            _masks = new float[L * batch * t * d];
        }
        var groups = new[] { new AttentionGroup(0, t, [], [], ReadsExternal: true) };
        for (int l = 0; l < L; l++)
        {
            // block input: the layer's queries for every sample (inverted dropout while training)
            var q = Queries.Data.AsSpan(l * t * d, t * d);
            var mask = _masks.AsSpan(l * batch * t * d, batch * t * d);
            for (int b = 0; b < batch; b++)
            {
                var xb = _outputs[l].AsSpan(b * t * d, t * d);
                if (!dropout) { q.CopyTo(xb); continue; }
                var mb = mask.Slice(b * t * d, t * d);
                float keep = 1f / (1f - QueryDropout);
                for (int i = 0; i < mb.Length; i++) mb[i] = _dropoutRng.NextSingle() < QueryDropout ? 0f : keep;
                TensorPrimitives.Multiply(q, mb, xb);
            }
            // z = q + Proj(Attn(LN1(q), K_l, V_l)); out = z + MLP(LN2(z)), in place in _outputs[l]
            Backbone.Blocks[l].Forward(_outputs[l], batch, t, [], groups, _tapes[l], keepForBackward, kv.Layer(l));
        }
        // features [B, F]: normalise(cls) | normalise(out_1 flattened) | ... | normalise(out_L flattened)
        _head ??= new QueryFeatures(d, L, t);
        var features = _head.Forward(kv.ClassToken, _outputs, batch);
        var logits = new Tensor([batch, NumClasses]);
        Linear.Forward(logits.Data, HeadInputs(features, batch), HeadWeight.Data, HeadBias.Data, batch, HeadInput, NumClasses);
        _kv = kv; _taped = keepForBackward;
        return logits;
    }

    float[] _kept = [];

    /// <summary>The head's input rows [B, K]: every feature, or the kept ones gathered.</summary>
    float[] HeadInputs(float[] features, int batch)
    {
        if (KeptFeatures is null) return features;
        int f = FeatureDim, k = KeptFeatures.Length;
        if (_kept.Length != batch * k) _kept = new float[batch * k];
        for (int b = 0; b < batch; b++)
            for (int j = 0; j < k; j++) _kept[b * k + j] = features[b * f + KeptFeatures[j]];
        return _kept;
    }

    /// <summary>Group-lasso penalty λ Σ_j ‖W[:, j]‖₂ over the head's feature columns (the official code's sparsifier):
    /// adds its gradient λ W[:, j] / ‖W[:, j]‖ to the head's and returns the penalty.</summary>
    public double AddGroupLassoGradient(float lambda)
    {
        int c = NumClasses, k = HeadInput;
        var w = HeadWeight.Data; var g = _parameters.First(p => p.Name == "head.weight").Grad.Data;
        double penalty = 0;
        for (int j = 0; j < k; j++)
        {
            double sq = 0;
            for (int i = 0; i < c; i++) sq += (double)w[i * k + j] * w[i * k + j];
            double norm = Math.Sqrt(sq);
            penalty += norm;
            if (norm < 1e-12) continue;
            float scale = (float)(lambda / norm);
            for (int i = 0; i < c; i++) g[i * k + j] += scale * w[i * k + j];
        }
        return lambda * penalty;
    }

    /// <summary>Keeps the <paramref name="fraction"/> of features whose head columns have the largest norms; the head shrinks to
    /// those columns (initialised from them, to be retrained on the kept features).</summary>
    public int[] Compress(double fraction)
    {
        if (!(fraction > 0 && fraction <= 1)) throw new ArgumentOutOfRangeException(nameof(fraction), fraction, "Keep a fraction in (0, 1].");
        if (KeptFeatures is not null) throw new InvalidOperationException("The head is compressed already.");
        int c = NumClasses, f = FeatureDim, keep = Math.Max(1, (int)Math.Ceiling(fraction * f));
        var norms = new double[f];
        for (int j = 0; j < f; j++)
            for (int i = 0; i < c; i++) norms[j] += (double)HeadWeight.Data[i * f + j] * HeadWeight.Data[i * f + j];
        var kept = Enumerable.Range(0, f).OrderByDescending(j => norms[j]).ThenBy(j => j).Take(keep).Order().ToArray();
        SetKeptFeatures(kept);
        return kept;
    }

    /// <summary>Makes the head read only these features (a compressed adapter being loaded); the head is re-shaped to [C, K].</summary>
    public void SetKeptFeatures(int[] kept)
    {
        int c = NumClasses, f = FeatureDim;
        if (kept.Length == 0 || kept.Any(j => (uint)j >= (uint)f) || kept.Zip(kept.Skip(1)).Any(p => p.First >= p.Second))
            throw new ArgumentException($"Kept feature indices must be ascending and within [0, {f}).");
        var old = HeadWeight;
        var head = new Tensor([c, kept.Length]);
        if (old.Shape[1] == f)
            for (int i = 0; i < c; i++)
                for (int j = 0; j < kept.Length; j++) head.Data[i * kept.Length + j] = old.Data[i * f + kept[j]];
        HeadWeight = head;
        KeptFeatures = kept;
        int at = _parameters.FindIndex(p => p.Name == "head.weight");
        _parameters[at] = new TrainableParameter("head.weight", head);
    }

    /// <summary>Feature vectors [B, <see cref="HeadInput"/>] of normalised images (a forward without dropout).</summary>
    public Tensor Features(Tensor images)
    {
        Forward(images, keepForBackward: false);
        return LastFeatures(images.Shape[0]);
    }

    /// <summary>The VQT feature vector of the last forward, as the head reads it: [B, D·(1 + L·T)], or [B, K] after compression.</summary>
    public Tensor LastFeatures(int batch) => new([batch, HeadInput], HeadInputs(_head!.Features, batch).AsSpan(0, batch * HeadInput).ToArray());

    float[] _dF = [], _dKept = [];

    public void Backward(Tensor dLogits)
    {
        if (!_taped || _kv is null) throw new InvalidOperationException("Backward needs a Forward with keepForBackward = true first.");
        _taped = false;
        var kv = _kv;
        int batch = kv.Batch, t = QueryTokens, d = C.Dim, L = C.Depth, f = FeatureDim;
        var g = _parameters.ToDictionary(p => p.Name, p => p.Grad.Data);
        // forward: logits = F Whᵀ + bh              → dF = dlogits Wh; dWh += dlogitsᵀ F; dbh += Σ dlogits
        if (_dF.Length != batch * f) _dF = new float[batch * f];   // reused: a fresh one each step would pile up on the large-object heap
        var dF = _dF;
        Array.Clear(dF);
        if (KeptFeatures is null)
            Linear.Backward(dF, g["head.weight"], g["head.bias"], dLogits.Data, _head!.Features, HeadWeight.Data, batch, f, NumClasses);
        else
        {
            int k = KeptFeatures.Length;
            if (_dKept.Length != batch * k) _dKept = new float[batch * k];
            var dKept = _dKept;
            Array.Clear(dKept);
            Linear.Backward(dKept, g["head.weight"], g["head.bias"], dLogits.Data, _kept, HeadWeight.Data, batch, k, NumClasses);
            for (int b = 0; b < batch; b++)
                for (int j = 0; j < k; j++) dF[b * f + KeptFeatures[j]] = dKept[b * k + j];
        }
        var groups = new[] { new AttentionGroup(0, t, [], [], ReadsExternal: true) };
        var dQueries = g["queries"];
        for (int l = L - 1; l >= 0; l--)
        {
            // forward: F_l = out_l / ‖out_l‖            → dout_l = (dF_l − F_l (F_l·dF_l)) / ‖out_l‖
            _head!.BackwardLayer(dF, l, _x);
            // through block l's query path (keys/values frozen) → gradient of its input, the (dropped-out) queries
            Backbone.Blocks[l].Backward(_x, batch, t, [], groups, _tapes[l], [], null, kv.Layer(l));
            var dq = dQueries.AsSpan(l * t * d, t * d);
            for (int b = 0; b < batch; b++)
            {
                var dx = _x.AsSpan(b * t * d, t * d);
                if (QueryDropout > 0) TensorPrimitives.Multiply(dx, _masks.AsSpan((l * batch + b) * t * d, t * d), dx);
                TensorPrimitives.Add(dq, dx, dq);
            }
        }
    }
}
