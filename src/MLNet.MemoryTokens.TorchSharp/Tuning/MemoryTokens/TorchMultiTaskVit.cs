using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.TorchSharp.Model;
using MLNet.MemoryTokens.Tuning;
using MLNet.MemoryTokens.Tuning.MemoryTokens;
using TorchSharp;
using static TorchSharp.torch;
using MLNet.MemoryTokens.TorchSharp.Native;

namespace MLNet.MemoryTokens.TorchSharp.Tuning.MemoryTokens;

/// <summary>The masked multi-task pass on TorchSharp (the engine's <c>MultiTaskVit</c>): one forward serves the backbone's own
/// head and any number of attention-masked memory adapters.</summary>
/// <remarks>Stream per sample: the N original tokens, then one class-token row per task; key/value-only rows: every task's
/// memory, in task order. Original rows read only original rows (the pretrained logits are unchanged); task row t reads the
/// originals, itself and its memory (<see cref="MultiTaskMode.Concatenation"/>) or task rows and memories 0..t
/// (<see cref="MultiTaskMode.Extension"/>).</remarks>
public sealed class TorchMultiTaskVit : IDisposable
{
    public TorchVit Backbone { get; }
    public MultiTaskMode Mode { get; }
    public IReadOnlyList<string> TaskNames { get; }
    readonly torch.Tensor[] _cls, _memory, _headW, _headB;   // per task: [1, 1, D], [L, m, D], [C, D], [C]
    readonly torch.Tensor _mask;                             // [S, S + M]

    public TorchMultiTaskVit(Backbone backbone, IReadOnlyList<(string Name, Adapter Adapter)> tasks, Device device, MultiTaskMode mode = MultiTaskMode.Concatenation,
        ComputePrecision precision = ComputePrecision.Float32)
    {
        MultiTaskVit.CheckTasks(tasks, mode);
        foreach (var (name, a) in tasks) a.EnsureMatches(backbone, name);
        Mode = mode;
        TaskNames = tasks.Select(t => t.Name).ToArray();
        Backbone = TorchVit.FromEngine(backbone.Model, device);
        Backbone.Precision = precision;
        torch.Tensor Get(Adapter a, string key) => TorchTensors.ToTorch(a.Tensors[key], device).DetachFromDisposeScope();
        _cls = tasks.Select(t => Get(t.Adapter, "cls_token")).ToArray();
        _memory = tasks.Select(t => Get(t.Adapter, "memory")).ToArray();
        _headW = tasks.Select(t => Get(t.Adapter, "head.weight")).ToArray();
        _headB = tasks.Select(t => Get(t.Adapter, "head.bias")).ToArray();
        _mask = Mask(backbone.Model.Config.NumTokens, tasks.Select(t => t.Adapter.Config.MemoryTokens).ToArray(), mode).to(device).DetachFromDisposeScope();
    }

    static torch.Tensor Mask(int n, int[] memRows, MultiTaskMode mode)
    {
        int tasks = memRows.Length, s = n + tasks, m = memRows.Sum(), w = s + m;
        var allow = new bool[s * w];
        for (int r = 0; r < n; r++) for (int k = 0; k < n; k++) allow[r * w + k] = true;
        var memAt = new int[tasks];
        for (int t = 1; t < tasks; t++) memAt[t] = memAt[t - 1] + memRows[t - 1];
        for (int t = 0; t < tasks; t++)
        {
            int r = n + t;
            for (int k = 0; k < n; k++) allow[r * w + k] = true;
            foreach (var j in mode == MultiTaskMode.Extension ? Enumerable.Range(0, t + 1) : [t])
            {
                allow[r * w + n + j] = true;
                for (int k = 0; k < memRows[j]; k++) allow[r * w + s + memAt[j] + k] = true;
            }
        }
        return torch.tensor(allow, [s, w]);
    }

    /// <summary>The original head's logits [B, 1000] (null when the backbone has no head) and each task's logits [B, C_t].</summary>
    public (torch.Tensor? Original, torch.Tensor[] Tasks) Forward(torch.Tensor images)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var vit = Backbone;
        var x = vit.Embed(images, null, _cls);                                                  // [B, N + T, D]
        for (int l = 0; l < vit.Config.Depth; l++)
        {
            var memory = vit.Blocks[l].KeyValues(cat(_memory.Select(m => m.select(0, l)).ToArray(), 0), vit.Precision).unsqueeze(0);   // [1, M, 2D]
            x = vit.Blocks[l].Forward(x, memory, _mask, vit.Precision);
        }
        int n = vit.Config.NumTokens;
        var original = vit.Head is null ? null : vit.HeadLogits(x);
        var outputs = Enumerable.Range(0, _cls.Length).Select(t => nn.functional.linear(vit.ReadoutNorm(x.select(1, n + t)), _headW[t], _headB[t])).ToArray();
        original?.MoveToOuterDisposeScope();
        foreach (var o in outputs) o.MoveToOuterDisposeScope();
        return (original, outputs);
    }

    public void Dispose()
    {
        Backbone.Dispose();
        foreach (var t in _cls.Concat(_memory).Concat(_headW).Concat(_headB)) t.Dispose();
        _mask.Dispose();
    }
}
