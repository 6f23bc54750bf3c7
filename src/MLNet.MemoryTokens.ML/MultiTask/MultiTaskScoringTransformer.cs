using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.MemoryTokens.ML.Data;
using MLNet.MemoryTokens.ML.Persistence;
using MLNet.MemoryTokens.ML.Schema;
using MLNet.MemoryTokens.ML.Scoring;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Training;
using MLNet.MemoryTokens.Tuning.MemoryTokens;
using MLNet.MemoryTokens.Tuning;

namespace MLNet.MemoryTokens.ML;

/// <summary>Scores every task (and the original head) of a <see cref="MultiTaskVit"/> in one pass per batch.</summary>
/// <remarks>Images are preprocessed as the tasks were trained (resize to S×S, crop fraction 1, the backbone's mean/std);
/// the original head's column therefore holds the backbone's logits (or their softmax) on those same inputs.</remarks>
public sealed class MultiTaskScoringTransformer : ImageScoringTransformer
{
    const string ManifestFile = MultiTaskFolder.ManifestFile;
    static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, WriteIndented = true };

    readonly MemoryTokenTask[] _tasks;
    readonly MultiTaskScorer _scorer;

    internal MultiTaskScoringTransformer(Backbone backbone, MemoryTokenTask[] tasks, ImageInput input, string? originalScoreColumnName,
        bool applySoftmax, MultiTaskMode mode, int batchSize)
    {
        Backbone = backbone; _tasks = tasks; ApplySoftmax = applySoftmax; Mode = mode;
        var multi = new MultiTaskVit(backbone, tasks.Select(t => (t.Name, t.Adapter)).ToList(), mode);
        OriginalScoreColumnName = backbone.Model.Config.NumClasses > 0 ? originalScoreColumnName : null;
        _scorer = new MultiTaskScorer(input, batchSize, multi, tasks, OriginalScoreColumnName, backbone.Model.Config.NumClasses, applySoftmax);
    }

    public Backbone Backbone { get; }
    public IReadOnlyList<MemoryTokenTask> Tasks => _tasks;
    public string ImageColumnName => _scorer.Input.ColumnName;
    /// <summary>The original head's column, or null (no head, or not requested).</summary>
    public string? OriginalScoreColumnName { get; }
    public bool ApplySoftmax { get; }
    public MultiTaskMode Mode { get; }

    sealed record Manifest(string ImageColumn, string? ImageFolder, string? OriginalScoreColumn, bool ApplySoftmax, MultiTaskMode Mode, int BatchSize, TaskEntry[] Tasks,
        string Format = MultiTaskFolder.CurrentFormat);
    sealed record TaskEntry(string Name, string Folder, string OutputColumn);

    /// <summary>Writes <c>multitask.json</c> and one adapter folder per task into <paramref name="directory"/>; load it with
    /// <c>mlContext.Transforms.LoadMemoryTokenTasks</c>. Replaces only an empty folder or a multi-task folder written here
    /// (anything else: an <see cref="MLNet.MemoryTokens.IO.OutputRefusedException"/>, nothing touched).</summary>
    public void SaveAdapters(string directory) => MLNet.MemoryTokens.IO.AtomicFolder.Write(directory, MultiTaskFolder.Kind, "multi-task folder", staging =>
    {
        var entries = _tasks.Select((t, i) => new TaskEntry(t.Name, $"task{i}", t.OutputColumnName)).ToArray();
        for (int i = 0; i < _tasks.Length; i++) _tasks[i].Adapter.Save(Path.Combine(staging, entries[i].Folder));
        var manifest = new Manifest(ImageColumnName, _scorer.Input.ImageFolder, OriginalScoreColumnName, ApplySoftmax, Mode, _scorer.BatchSize, entries);
        MLNet.MemoryTokens.IO.AtomicFile.Write(Path.Combine(staging, ManifestFile), s => JsonSerializer.Serialize(s, manifest, Json));
    });

    internal static MultiTaskScoringTransformer Load(string directory, Backbone? backbone, string? backbonePath)
    {
        var path = Path.Combine(directory, ManifestFile);
        if (!File.Exists(path)) throw new FileNotFoundException($"'{directory}' is not a multi-task folder: {ManifestFile} is missing.", path);
        var manifest = JsonSerializer.Deserialize<Manifest>(File.ReadAllText(path), Json) ?? throw new InvalidDataException($"{path} is empty.");
        var tasks = manifest.Tasks.Select(t => new MemoryTokenTask(t.Name, Adapter.Load(Path.Combine(directory, t.Folder)), t.OutputColumn)).ToArray();
        var resolved = BackboneCache.ForAdapter(tasks[0].Adapter, backbone, backbonePath);
        return new MultiTaskScoringTransformer(resolved, tasks, new ImageInput(manifest.ImageColumn, manifest.ImageFolder, Trainer.TrainingPreprocess(resolved)),
            manifest.OriginalScoreColumn, manifest.ApplySoftmax, manifest.Mode, manifest.BatchSize);
    }

    /// <summary>The kind a saved multi-task folder is recorded as.</summary>
    internal const string Kind = "multi-task";
    private protected override ImageScorer Scorer => _scorer;
    private protected override string ComponentKind => Kind;
    private protected override void SaveTo(string directory) => SaveAdapters(directory);
    private protected override string SaveMethod => "transformer.SaveAdapters(directory)";

    sealed class MultiTaskScorer : ImageScorer
    {
        readonly MultiTaskVit _multi;
        readonly bool _original, _softmax;

        public MultiTaskScorer(ImageInput input, int batchSize, MultiTaskVit multi, MemoryTokenTask[] tasks, string? originalColumn, int originalClasses, bool softmax)
            : base(input, batchSize)
        {
            _multi = multi; _softmax = softmax; _original = originalColumn is not null;
            var outputs = new List<OutputColumn>();
            if (originalColumn is not null)
                outputs.Add(new OutputColumn(originalColumn, new VectorDataViewType(NumberDataViewType.Single, originalClasses), DataViewSchema.Annotations.Empty));
            foreach (var task in tasks)
            {
                var annotations = new DataViewSchema.Annotations.Builder();
                ScoreColumns.AddSlotNames(annotations, task.Adapter.Config.ClassLabels);
                outputs.Add(new OutputColumn(task.OutputColumnName, new VectorDataViewType(NumberDataViewType.Single, task.Adapter.Config.ClassLabels.Length), annotations.ToAnnotations()));
            }
            Outputs = outputs;
        }

        public override IReadOnlyList<OutputColumn> Outputs { get; }

        protected override void Forward(Tensor images, int[] rows, OutputBuffers output)
        {
            var (original, tasks) = _multi.Forward(images);   // MultiTaskVit serialises callers itself
            var results = _original ? tasks.Prepend(original!).ToArray() : tasks;
            for (int o = 0; o < results.Length; o++)
            {
                int c = Outputs[o].Length;
                for (int k = 0; k < rows.Length; k++)
                {
                    var source = results[o].Data.AsSpan(k * c, c);
                    var dest = output.Floats[o].AsSpan(rows[k] * c, c);
                    if (_softmax) Softmax(source, dest);
                    else source.CopyTo(dest);
                }
            }
        }
    }
}
