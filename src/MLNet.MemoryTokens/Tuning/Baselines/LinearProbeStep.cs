using System.Diagnostics;
using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.Model;

namespace MLNet.MemoryTokens.Tuning.Baselines;

/// <summary>The linear probe's training step: the frozen backbone's pooled features (the final-norm class token, or what its
/// pooling gives) are computed once, then only the head trains, on those features (validation computes them the same way).</summary>
internal sealed class LinearProbeStep : ITrainingStep
{
    readonly FixedFeatureStep _step;

    public LinearProbeStep(BaselineVit model, StepContext context)
    {
        var (backbone, images) = (context.Backbone, context.Images);
        var features = Features(backbone, images, context.BatchSize, context.Cancel,
            p => context.Report(new StepNotice("features", $"features {p.Done}/{images.Count}", p.ImagesPerSecond, p.Eta)));
        _step = new FixedFeatureStep(features, backbone.Model.Config.Dim, model.HeadWeight, model.HeadBias, model.Parameters,
            (data, batchSize, cancel) => Features(backbone, data, batchSize, cancel));
    }

    /// <summary>The pooled feature of every image [N, D] (timm's <c>forward_head(pre_logits=True)</c>), in batches.</summary>
    static float[] Features(Backbone backbone, PreparedImages images, int batchSize, CancellationToken cancel, Action<(int Done, double ImagesPerSecond, TimeSpan Eta)>? progress = null)
    {
        int d = backbone.Model.Config.Dim;
        var features = new float[(long)images.Count * d];
        var watch = Stopwatch.StartNew();
        for (int start = 0; start < images.Count; start += batchSize)
        {
            cancel.ThrowIfCancellationRequested();
            var idx = Enumerable.Range(start, Math.Min(batchSize, images.Count - start)).ToArray();
            var tokens = backbone.Model.ForwardFeatures(images.Batch(idx));     // [B, N, D] after the final norm
            var pooled = backbone.Model.ForwardHead(tokens, preLogits: true);     // [B, D]
            Array.Copy(pooled.Data, 0, features, (long)start * d, (long)idx.Length * d);
            int done = start + idx.Length;
            double rate = done / watch.Elapsed.TotalSeconds;
            progress?.Invoke((done, rate, TimeSpan.FromSeconds((images.Count - done) / rate)));
        }
        return features;
    }

    public IReadOnlyList<TrainableParameter> Parameters => _step.Parameters;
    public Tensor Forward(int[] indices) => _step.Forward(indices);
    public void Backward(Tensor dLogits) => _step.Backward(dLogits);
    public float[] ValidationLogits(PreparedImages data, int batchSize, CancellationToken cancel) => _step.ValidationLogits(data, batchSize, cancel);
}
