using System.Numerics.Tensors;
using MLNet.MemoryTokens.Kernels;
using MLNet.MemoryTokens.Model;

namespace MLNet.MemoryTokens.Tuning;

/// <summary>How added tasks see each other in the masked multi-task pass (Sandler et al. 2022, Table 1).</summary>
public enum MultiTaskMode
{
    /// <summary>Each task's class token reads the original tokens, itself and its own memory: separately trained adapters combine freely.</summary>
    Concatenation,
    /// <summary>Task t's class token also reads the class tokens and memory of tasks 1..t−1: a chain of tasks, each trained on
    /// top of the ones before it (<see cref="TuningOptions.Extends"/>, <c>mmt train --extends</c>).</summary>
    Extension,
}

/// <summary>One forward pass that serves the backbone's own head and any number of attention-masked memory adapters.</summary>
/// <remarks>Stream per sample: the N original tokens, then one class-token row per task. Original rows attend only to
/// original rows, so the pretrained logits come out bit for bit as from <see cref="VisionTransformer.Forward"/>; each task row
/// reads what <see cref="MultiTaskMode"/> allows, and each task's head reads its own final-norm row.</remarks>
public sealed class MultiTaskVit
{
    public VisionTransformer Backbone { get; }
    public MultiTaskMode Mode { get; }
    public IReadOnlyList<string> TaskNames { get; }
    readonly AdaptedVit[] _tasks;
    readonly BlockTape[] _tapes;
    readonly object _lock = new();
    float[] _x = [], _cols = [], _patches = [];
    int _batch = -1;

    /// <summary>Combines adapters trained with <c>Masked = true</c> on <paramref name="backbone"/> (each checked against it).</summary>
    public MultiTaskVit(Backbone backbone, IReadOnlyList<(string Name, Adapter Adapter)> tasks, MultiTaskMode mode = MultiTaskMode.Concatenation)
    {
        Backbone = backbone.Model; Mode = mode;
        for (int t = 0; t < tasks.Count; t++)
        {
            var (name, a) = tasks[t];
            if (a.Config.Method != TuningMethod.Memory || !a.Config.Masked)
                throw new ArgumentException($"Task '{name}' is a {a.Config.Method}{(a.Config.Masked ? "" : " (unmasked)")} adapter; the multi-task pass needs attention-masked memory adapters (train with --masked).");
            // each task runs as it was trained: alone (concatenation), or reading exactly the tasks before it (extension)
            var expected = mode == MultiTaskMode.Extension ? tasks.Take(t).Select(e => e.Adapter.Fingerprint).ToArray() : [];
            if (!a.Config.Extends.Select(r => r.Fingerprint).SequenceEqual(expected))
                throw new ArgumentException(mode == MultiTaskMode.Extension
                    ? $"Task '{name}' was trained on top of {a.Config.Extends.Length} adapter(s), not on the {t} listed before it: in extension mode task t must have been trained (--extends) on tasks 1..t−1, in that order."
                    : $"Task '{name}' was trained on top of other adapters (--extends); it runs only in extension mode after them.");
        }
        _tasks = tasks.Select((t, i) => (AdaptedVit)t.Adapter.CreateModel(backbone, t.Name, mode == MultiTaskMode.Extension ? tasks.Take(i).Select(e => e.Adapter).ToArray() : [])).ToArray();
        TaskNames = tasks.Select(t => t.Name).ToArray();
        var scratch = new BackwardScratch();   // blocks run one at a time: one scratch serves all
        _tapes = Enumerable.Range(0, Backbone.Config.Depth).Select(_ => new BlockTape { Scratch = scratch }).ToArray();
    }

    /// <summary>The original head's logits [B, 1000] (null when the backbone has no head) and each task's logits [B, C_t].</summary>
    public (Tensor? Original, Tensor[] Tasks) Forward(Tensor images)
    {
        var c = Backbone.Config;
        if (images.Rank != 4 || images.Shape[1] != c.InChannels || images.Shape[2] != c.ImageSize || images.Shape[3] != c.ImageSize)
            throw new ArgumentException($"Images must be [B, {c.InChannels}, {c.ImageSize}, {c.ImageSize}], got {images.ShapeString}.");
        int batch = images.Shape[0], n = c.NumTokens, d = c.Dim, p = c.NumPatches, tasks = _tasks.Length, s = n + tasks;
        lock (_lock)
        {
            // reused across calls (a fresh 30 MB per batch cost page faults worth a tenth of the pass)
            if (_batch != batch)
            {
                _x = new float[(long)batch * s * d];
                _cols = new float[(long)batch * p * c.InChannels * c.PatchSize * c.PatchSize];
                _patches = new float[(long)batch * p * d];
                _batch = batch;
            }
            var (x, cols, patches) = (_x, _cols, _patches);
            PatchEmbed.Im2Col(cols, images.Data, batch, c.InChannels, c.ImageSize, c.ImageSize, c.PatchSize);
            Linear.Forward(patches, cols, Backbone.PatchPacked, Backbone.PatchBias.Data, batch * p);
            var pos = Backbone.PosEmbed.Data.AsSpan();
            for (int b = 0; b < batch; b++)
            {
                var xb = x.AsSpan(b * s * d, s * d);
                TensorPrimitives.Add(Backbone.ClassToken.Data, pos[..d], xb[..d]);
                TensorPrimitives.Add(patches.AsSpan(b * p * d, p * d), pos[d..(n * d)], xb[d..(n * d)]);
                for (int t = 0; t < tasks; t++) TensorPrimitives.Add(_tasks[t].ClassToken!.Data, pos[..d], xb.Slice((n + t) * d, d));
            }
            var groups = Groups(n, tasks);
            // the last block: only the rows the heads read (the original class token, each task's row) go past attention
            var live = tasks > 0 ? new LiveRows((0, 1), (n, tasks)) : new LiveRows((0, 1));
            var lastGroups = groups.Select((g, i) => i == 0 ? g with { Queries = 1 } : g).ToArray();
            for (int l = 0; l < c.Depth; l++)
            {
                var memories = _tasks.Select(t => (ReadOnlyMemory<float>)t.Memory!.Data.AsMemory(l * t.MemoryTokens * d, t.MemoryTokens * d)).ToArray();
                bool last = l == c.Depth - 1;
                Backbone.Blocks[l].Forward(x, batch, s, memories, last ? lastGroups : groups, _tapes[l], keep: false, live: last ? live : null);
            }
            Tensor? original = null;
            if (Backbone.HeadPacked is not null)
            {
                var cls = Rows(x, batch, s, 0, d);
                LayerNorm.Forward(cls, default, default, cls, Backbone.NormWeight.Data, Backbone.NormBias.Data, batch, d, c.LayerNormEps);
                original = new Tensor([batch, c.NumClasses]);
                Linear.Forward(original.Data, cls, Backbone.HeadPacked, Backbone.HeadBias!.Data, batch);
            }
            var outputs = new Tensor[tasks];
            for (int t = 0; t < tasks; t++)
            {
                var rows = Rows(x, batch, s, n + t, d);
                LayerNorm.Forward(rows, default, default, rows, Backbone.NormWeight.Data, Backbone.NormBias.Data, batch, d, c.LayerNormEps);
                outputs[t] = new Tensor([batch, _tasks[t].NumClasses]);
                Linear.Forward(outputs[t].Data, rows, _tasks[t].HeadWeight.Data, _tasks[t].HeadBias.Data, batch, d, _tasks[t].NumClasses);
            }
            return (original, outputs);
        }
    }

    // Original keys are always their own segment: every task row then sums its attention in the same order as when run alone.
    AttentionGroup[] Groups(int n, int tasks)
    {
        var groups = new AttentionGroup[1 + tasks];
        groups[0] = new AttentionGroup(0, n, [(0, n)], []);
        for (int t = 0; t < tasks; t++)
            groups[1 + t] = Mode == MultiTaskMode.Concatenation
                ? new AttentionGroup(n + t, 1, [(0, n), (n + t, 1)], [t])
                : new AttentionGroup(n + t, 1, [(0, n), (n, t + 1)], Enumerable.Range(0, t + 1).ToArray());
        return groups;
    }

    static float[] Rows(float[] x, int batch, int s, int row, int d)
    {
        var r = new float[batch * d];
        for (int b = 0; b < batch; b++) Array.Copy(x, ((long)b * s + row) * d, r, b * d, d);
        return r;
    }
}
