using System.Reflection;
using Microsoft.ML;
using Microsoft.ML.Runtime;
using MLNet.MemoryTokens.Training;
using Xunit;

namespace MLNet.MemoryTokens.ML.Tests;

/// <summary>Logging to the MLContext, cancellation, seeds, and backbone sharing.</summary>
public class HostingTests
{
    static IDataView Data(MLContext ml, int count = 24) =>
        ColorImages.MapLabel(ml).Fit(ml.Data.LoadFromEnumerable(ColorImages.ImageRows(ColorImages.Range(0, count))))
            .Transform(ml.Data.LoadFromEnumerable(ColorImages.ImageRows(ColorImages.Range(0, count))));

    [Fact]
    public void TrainingProgressGoesToTheMLContextLog()
    {
        var ml = new MLContext(seed: 1);
        var messages = new List<LoggingEventArgs>();
        ml.Log += (_, e) => { lock (messages) messages.Add(e); };
        ml.MulticlassClassification.Trainers.MemoryTokens(new MemoryTokensTrainer.Options { Backbone = TinyVit.Create(), Epochs = 2, Seed = 1 }).Fit(Data(ml));
        var ours = messages.Where(m => m.Source.Contains("MLNet.MemoryTokens")).ToList();
        Assert.Contains(ours, m => m.Kind == ChannelMessageKind.Info && m.RawMessage.StartsWith("epoch 2/2: train loss"));
        Assert.Contains(ours, m => m.Kind == ChannelMessageKind.Info && m.RawMessage.StartsWith("decoding and resizing 24 images"));   // the engine's own note
        Assert.Contains(ours, m => m.Kind == ChannelMessageKind.Trace && m.RawMessage.Contains("step 1/"));
    }

    [Fact]
    public void ACancelledTokenStopsTraining()
    {
        var ml = new MLContext(seed: 1);
        using var cancel = new CancellationTokenSource();
        var progress = new SyncProgress(p => { if (p.Phase == "train") cancel.Cancel(); });
        var trainer = ml.MulticlassClassification.Trainers.MemoryTokens(new MemoryTokensTrainer.Options
        {
            Backbone = TinyVit.Create(), Epochs = 5, BatchSize = 4, CancellationToken = cancel.Token, Progress = progress,
        });
        Assert.ThrowsAny<OperationCanceledException>(() => trainer.Fit(Data(ml)));
        Assert.Equal(1, progress.Steps);   // stopped before the second batch
    }

    [Fact]
    public void ACancelledMLContextStopsTraining()
    {
        // what AutoML does when a trial runs out of time (MLContext.CancelExecution is internal, hence reflection here)
        var ml = new MLContext(seed: 1);
        var data = Data(ml);
        var progress = new SyncProgress(p =>
        {
            if (p.Phase == "train") typeof(MLContext).GetMethod("CancelExecution", BindingFlags.Instance | BindingFlags.NonPublic)!.Invoke(ml, null);
        });
        var trainer = ml.MulticlassClassification.Trainers.MemoryTokens(new MemoryTokensTrainer.Options { Backbone = TinyVit.Create(), Epochs = 5, BatchSize = 4, Progress = progress });
        Assert.ThrowsAny<OperationCanceledException>(() => trainer.Fit(data));
        Assert.Equal(1, progress.Steps);
    }

    [Fact]
    public void TheMLContextSeedMakesRunsRepeatable()
    {
        float[] Run(int seed)
        {
            var ml = new MLContext(seed: seed);
            var model = ml.MulticlassClassification.Trainers.MemoryTokens(new MemoryTokensTrainer.Options { Backbone = TinyVit.Create(), Epochs = 1 }).Fit(Data(ml));
            return model.Adapter.Tensors["memory"].Data;
        }
        Assert.Equal(Run(3), Run(3));
        Assert.NotEqual(Run(3), Run(4));
    }

    [Fact]
    public void ComponentsGivenTheSamePathShareOneBackbone()
    {
        using var temp = new TempFolder();
        var checkpoint = TinyVit.WriteCheckpoint(temp.Path, seed: 9);
        var ml = new MLContext(seed: 1);
        var data = Data(ml, 12);
        var a = ml.MulticlassClassification.Trainers.MemoryTokens(new MemoryTokensTrainer.Options { BackbonePath = checkpoint, Epochs = 1 }).Fit(data);
        var b = ml.Transforms.VqtFeaturizer(new VqtFeaturizerEstimator.Options { BackbonePath = checkpoint, Epochs = 1 }).Fit(data);
        Assert.Same(a.Backbone, b.Backbone);
        Assert.Same(a.Backbone, BackboneCache.Get(checkpoint));
        Assert.Same(a.Backbone, BackboneCache.Get(checkpoint, TinyVit.Size));
    }

    /// <summary>IProgress that runs inline (Progress&lt;T&gt; would post to the thread pool).</summary>
    sealed class SyncProgress(Action<TrainingProgress> onReport) : IProgress<TrainingProgress>
    {
        public int Steps { get; private set; }
        public void Report(TrainingProgress value)
        {
            if (value.Phase == "train") Steps++;
            onReport(value);
        }
    }
}
