using MLNet.MemoryTokens.Data;

namespace MLNet.MemoryTokens.Tuning.QueryTuning;

/// <summary>VQT's training step: the first time an image is seen its backbone pass fills the key/value cache; afterwards the
/// step reads the cache and runs only the query paths. Every batch goes through the cache's dtype, so epoch 1 and later ones
/// see the same values. The group-lasso penalty joins the gradient here; compression (keep a fraction of the features, then
/// retrain the head on them from the cache) is the phase after this one.</summary>
internal sealed class QueryCacheStep : ITrainingStep
{
    readonly QueryTunedVit _model;
    readonly StepContext _context;
    readonly KeyValueCache _cache;

    public QueryCacheStep(QueryTunedVit model, StepContext context)
    {
        _model = model; _context = context;
        var (images, tuning) = (context.Images, context.Tuning);
        var c = context.Backbone.Model.Config;
        long bytes = KeyValueCache.ImageBytes(c, tuning.CacheDType) * images.Count;
        string where = tuning.CacheDirectory is null && bytes <= tuning.CacheBudgetBytes ? "in memory" : $"in a file under {tuning.CacheDirectory ?? Path.GetTempPath()}";
        context.Report(new StepNotice("cache", $"VQT cache: {images.Count} images × {c.Depth} layers × {c.NumTokens} tokens × 2·{c.Dim} {tuning.CacheDType} = {bytes / 1e6:F1} MB, {where}"));
        _cache = new KeyValueCache(images.Count, c, tuning.CacheDType, tuning.CacheBudgetBytes, tuning.CacheDirectory,
            $"backbone={context.Backbone.Fingerprint};size={c.ImageSize};data={images.Fingerprint}");
        if (_cache.Reused) context.Report(new StepNotice("cache", $"reusing the VQT cache {_cache.FilePath}"));
    }

    public IReadOnlyList<TrainableParameter> Parameters => _model.Parameters;

    public Tensor Forward(int[] indices)
    {
        var missing = indices.Where(i => !_cache.IsFilled(i)).ToArray();
        if (missing.Length > 0)
        {
            _model.CaptureInto(_context.Images.Batch(missing), _cache, missing);
            if (_cache.AllFilled)
            {
                // the cache is complete: later epochs never run the backbone, so its buffers go back to the system
                _model.ReleaseCaptureBuffers();
                GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
            }
        }
        return _model.ForwardCached(_cache.Load(indices), keepForBackward: true);
    }

    public void Backward(Tensor dLogits)
    {
        _model.Backward(dLogits);
        if (_context.Tuning.GroupLasso > 0) _model.AddGroupLassoGradient(_context.Tuning.GroupLasso);
    }

    public float[] ValidationLogits(PreparedImages data, int batchSize, CancellationToken cancel) => _model.PredictLogits(data, batchSize, cancel).Data;

    /// <summary>VQT compression (as the official code): keep the features whose head columns the group-lasso penalty left largest,
    /// then retrain the head alone on those features (queries fixed, features from the cache).</summary>
    public TrainingPhase? NextPhase()
    {
        double fraction = _context.Tuning.KeepFeatureFraction;
        if (fraction >= 1) return null;
        int full = _model.FeatureDim;
        var kept = _model.Compress(fraction);
        _context.Report(new StepNotice("compress", $"VQT compression: kept {kept.Length} of {full} features ({fraction:P0}); retraining the head", AfterTraining: true));
        var features = HeadInputs(_context.Images.Count, _context.BatchSize);
        var head = _model.Parameters.Where(p => p.Name.StartsWith("head.", StringComparison.Ordinal)).ToList();
        return new TrainingPhase("retrain head", new FixedFeatureStep(features, kept.Length, _model.HeadWeight, _model.HeadBias, head,
            (data, batchSize, cancel) => QueryFeaturizer.Featurize(_model, data, batchSize, cancel).Data));
    }

    /// <summary>What the head reads for every cached image [N, K] (no dropout).</summary>
    float[] HeadInputs(int count, int batchSize)
    {
        int k = _model.HeadInput;
        var all = new float[(long)count * k];
        for (int start = 0; start < count; start += batchSize)
        {
            var idx = Enumerable.Range(start, Math.Min(batchSize, count - start)).ToArray();
            _model.ForwardCached(_cache.Load(idx), keepForBackward: false);
            _model.LastFeatures(idx.Length).Data.CopyTo(all, (long)start * k);
        }
        return all;
    }

    public void Dispose() => _cache.Dispose();
}
