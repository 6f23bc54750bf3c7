using MLNet.MemoryTokens.Kernels;
using MLNet.MemoryTokens.Model;

namespace MLNet.MemoryTokens.Tuning.MemoryTokens;

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
    readonly MemoryTokenVit[] _tasks;
    readonly StreamPass _pass;
    readonly AttentionGroup[] _groups, _lastGroups;
    readonly LiveRows _lastLive;
    readonly object _lock = new();

    /// <summary>Refuses what the multi-task pass cannot run as trained: more tasks than the limit, an adapter that is not
    /// attention-masked memory, or one trained on top of other adapters that are not the tasks before it (extension mode) —
    /// the one check for every compute backend's multi-task pass.</summary>
    public static void CheckTasks(IReadOnlyList<(string Name, Adapter Adapter)> tasks, MultiTaskMode mode)
    {
        Limits.Check("The number of tasks in one pass", tasks.Count, 0, Limits.MaxTasks);
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
    }

    /// <summary>Combines adapters trained with <c>Masked = true</c> on <paramref name="backbone"/> (each checked against it).</summary>
    public MultiTaskVit(Backbone backbone, IReadOnlyList<(string Name, Adapter Adapter)> tasks, MultiTaskMode mode = MultiTaskMode.Concatenation)
    {
        Backbone = backbone.Model; Mode = mode;
        CheckTasks(tasks, mode);
        _tasks = tasks.Select((t, i) => (MemoryTokenVit)t.Adapter.CreateModel(backbone, t.Name, mode == MultiTaskMode.Extension ? tasks.Take(i).Select(e => e.Adapter).ToArray() : [])).ToArray();
        TaskNames = tasks.Select(t => t.Name).ToArray();
        var layout = StreamLayout.Of(Backbone.Config, taskRows: _tasks.Length);
        _pass = new StreamPass(Backbone, layout);
        _groups = MemoryTokenVit.MaskedGroups(layout, mode);
        // the last block: only the rows the heads read (what the original head pools, each task's row) go past attention
        var readout = layout.ReadoutRows(Backbone.Config);
        _lastLive = _tasks.Length > 0 ? new LiveRows([.. readout.Ranges, (layout.TaskRow0, _tasks.Length)]) : readout;
        _lastGroups = _lastLive.Restrict(_groups);
    }

    /// <summary>The original head's logits [B, 1000] (null when the backbone has no head) and each task's logits [B, C_t].</summary>
    public (Tensor? Original, Tensor[] Tasks) Forward(Tensor images)
    {
        var c = Backbone.Config;
        int batch = c.CheckImages(images), d = c.Dim;
        lock (_lock)
        {
            // buffers reused across calls (a fresh 30 MB per batch cost page faults worth a tenth of the pass)
            var pass = _pass.Begin(batch);
            // x = [cls + pos[0] | patches + pos[1:] | task t's class token + pos[0], one row per task]        [B, N + T, D]
            pass.Embed(images, Backbone.ClassToken, _tasks.Select(t => t.ClassToken!.Data).ToArray());
            for (int l = 0; l < c.Depth; l++)
            {
                bool last = l == c.Depth - 1;
                // every task's memory_l is a key/value set of its own, read by that task's row (and, in extension mode, later ones)
                pass.Block(l, last ? _lastGroups : _groups, _tasks.Select(t => t.LayerMemory(l)).ToArray(), keep: false, last ? _lastLive : null);
            }
            // the original head on the backbone's pooling: its own logits, bit for bit
            var original = Backbone.HeadPacked is null ? null : Backbone.HeadLogits(pass);
            var outputs = new Tensor[_tasks.Length];
            for (int t = 0; t < _tasks.Length; t++)
            {
                outputs[t] = new Tensor([batch, _tasks[t].NumClasses]);
                Linear.Forward(outputs[t].Data, pass.FinalNorm(pass.Layout.TaskRow(t)), _tasks[t].HeadWeight.Data, _tasks[t].HeadBias.Data, batch, d, _tasks[t].NumClasses);
            }
            return (original, outputs);
        }
    }
}
