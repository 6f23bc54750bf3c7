using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.Training;

namespace MLNet.MemoryTokens.Tuning.QueryTuning;

/// <summary>VQT as a featurizer: the aggregated feature vector D·(1 + L·T) that the VQT head reads, for any classifier to consume.</summary>
public static class QueryFeaturizer
{
    /// <summary>Features [N, D·(1 + L·T)] of prepared images (no dropout), in batches.</summary>
    public static Tensor Featurize(QueryTunedVit model, PreparedImages images, int batchSize = 32, CancellationToken cancel = default)
    {
        int f = model.FeatureDim;
        var features = new Tensor([images.Count, f]);
        for (int start = 0; start < images.Count; start += batchSize)
        {
            cancel.ThrowIfCancellationRequested();
            var idx = Enumerable.Range(start, Math.Min(batchSize, images.Count - start)).ToArray();
            model.Forward(images.Batch(idx), keepForBackward: false);
            model.LastFeatures(idx.Length).Data.CopyTo(features.Data, (long)start * f);
        }
        return features;
    }

    /// <summary>Features [B, D·(1 + L·T)] of a batch of normalised images [B, 3, S, S].</summary>
    public static Tensor Featurize(QueryTunedVit model, Tensor images)
    {
        model.Forward(images, keepForBackward: false);
        return model.LastFeatures(images.Shape[0]);
    }
}
