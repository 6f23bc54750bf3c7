using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.Training;

namespace MLNet.MemoryTokens.Tuning.QueryTuning;

/// <summary>VQT as a featurizer: the aggregated feature vector D·(1 + L·T) that the VQT head reads, for any classifier to consume.</summary>
public static class QueryFeaturizer
{
    /// <summary>Features [N, D·(1 + L·T)] (or the kept ones after compression) of prepared images (no dropout), in batches,
    /// on whichever backend computes <paramref name="model"/>.</summary>
    public static Tensor Featurize(IQueryFeatures model, PreparedImages images, int batchSize = 32, CancellationToken cancel = default)
    {
        int f = model.HeadInput;
        var features = new Tensor([images.Count, f]);
        for (int start = 0; start < images.Count; start += batchSize)
        {
            cancel.ThrowIfCancellationRequested();
            var idx = Enumerable.Range(start, Math.Min(batchSize, images.Count - start)).ToArray();
            model.Features(images.Batch(idx)).Data.CopyTo(features.Data, (long)start * f);
        }
        return features;
    }

    /// <summary>Features [B, D·(1 + L·T)] of a batch of normalised images [B, 3, S, S].</summary>
    public static Tensor Featurize(IQueryFeatures model, Tensor images) => model.Features(images);
}
