using Microsoft.ML;
using MLNet.MemoryTokens.Imaging;
using MLNet.MemoryTokens.ML.Data;
using MLNet.MemoryTokens.ML.Schema;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Training;
using MLNet.MemoryTokens.Tuning.MemoryTokens;
using MLNet.MemoryTokens.Tuning;

namespace MLNet.MemoryTokens.ML;

/// <summary>Scores several attention-masked memory-token tasks — and the backbone's own head, if it has one — in one
/// forward pass (<see cref="MultiTaskVit"/>): one score column per task. Nothing is trained; <c>Fit</c> only checks the
/// input. Created by <c>mlContext.Transforms.ScoreMemoryTokenTasks(...)</c>.</summary>
public sealed class MultiTaskScoringEstimator : IEstimator<MultiTaskScoringTransformer>
{
    /// <summary>Options of <see cref="MultiTaskScoringEstimator"/>.</summary>
    public sealed class Options
    {
        /// <summary>The tasks, in output order (each a masked memory-token adapter on the same backbone). Required.</summary>
        public IList<MemoryTokenTask> Tasks { get; set; } = new List<MemoryTokenTask>();

        /// <summary>The image column (MLImage, path, or 3·S·S pixel vector; see <see cref="VitTuningOptionsBase.ImageColumnName"/>). Default <c>"Image"</c>.</summary>
        public string ImageColumnName { get; set; } = "Image";

        /// <summary>Folder relative image paths are resolved against. Default null.</summary>
        public string? ImageFolder { get; set; }

        /// <summary>The backbone; null: the tasks' own (from fitted classifiers), else <see cref="BackbonePath"/>, else the checkpoint the first adapter records. Default null.</summary>
        public Backbone? Backbone { get; set; }

        /// <summary>Checkpoint path or model id when no backbone object is at hand. Default null.</summary>
        public string? BackbonePath { get; set; }

        /// <summary>Column for the backbone's own head (when it has one; null: leave it out). Default <c>"Original.Score"</c>.</summary>
        public string? OriginalScoreColumnName { get; set; } = "Original.Score";

        /// <summary>True: softmax probabilities, as ML.NET's Score columns; false: raw logits. Default true.</summary>
        public bool ApplySoftmax { get; set; } = true;

        /// <summary>How tasks see each other: concatenation (each alone, as trained), or extension (a chain of adapters, each trained
        /// on top of the ones before it with <c>mmt train --masked --extends</c>, listed in that order). Default <see cref="MultiTaskMode.Concatenation"/>.</summary>
        public MultiTaskMode Mode { get; set; } = MultiTaskMode.Concatenation;

        /// <summary>Rows per forward pass. Default 32.</summary>
        public int BatchSize { get; set; } = 32;
    }

    readonly Options _options;
    readonly Backbone _backbone;

    internal MultiTaskScoringEstimator(Options options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Tasks is null || options.Tasks.Count == 0) throw new ArgumentException("Give at least one task.", nameof(options));
        if (options.Tasks.Select(t => t.Name).Distinct().Count() != options.Tasks.Count) throw new ArgumentException("Task names must be distinct.", nameof(options));
        _options = options;
        _backbone = options.Backbone
            ?? options.Tasks.Select(t => t.Backbone).FirstOrDefault(b => b is not null)
            ?? BackboneCache.ForAdapter(options.Tasks[0].Adapter, null, options.BackbonePath);
    }

    /// <summary>The input image column in; one float-vector column per task (and the original head's) out.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        new ImageInput(_options.ImageColumnName, _options.ImageFolder, new PreprocessConfig { InputSize = _backbone.Model.Config.ImageSize }).CheckShape(inputSchema);
        var added = new List<SchemaShape.Column>();
        if (_options.OriginalScoreColumnName is string original && _backbone.Model.Config.NumClasses > 0)
            added.Add(SchemaShapes.Vector(original, []));
        foreach (var task in _options.Tasks)
            added.Add(SchemaShapes.Vector(task.OutputColumnName, [(ScoreColumns.SlotNames, new Microsoft.ML.Data.VectorDataViewType(Microsoft.ML.Data.TextDataViewType.Instance, 1))]));
        return SchemaShapes.Append(inputSchema, added);
    }

    public MultiTaskScoringTransformer Fit(IDataView input)
    {
        var transformer = new MultiTaskScoringTransformer(_backbone, _options.Tasks.ToArray(),
            new ImageInput(_options.ImageColumnName, _options.ImageFolder, Trainer.TrainingPreprocess(_backbone)),
            _options.OriginalScoreColumnName, _options.ApplySoftmax, _options.Mode, _options.BatchSize);
        transformer.GetOutputSchema(input.Schema);   // checks the image column now, as ML.NET's estimators do
        return transformer;
    }
}
