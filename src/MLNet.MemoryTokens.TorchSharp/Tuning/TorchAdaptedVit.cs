using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.TorchSharp.Model;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MLNet.MemoryTokens.TorchSharp.Tuning;

/// <summary>The stream methods on TorchSharp — memory tokens (plain, attention-masked, model extension), VQT + memory, and the
/// baselines head-only, head + class token and full fine-tuning — row for row as the engine's <c>MemoryTokenVit</c>,
/// <c>QueryMemoryVit</c> and <c>BaselineVit</c>, on every backbone family.</summary>
/// <remarks>
/// Stream per sample (rows): the N original tokens (prefix — class, distillation, registers — then patches); masked: then one
/// class-token row per extended task and this task's own; with queries: then T query rows, overwritten with layer l's queries
/// before block l and collected after it. Memory is never a stream row here: each layer's memory [m, D] goes through LN1 and
/// the key/value projection once per step and is appended as key/value-only rows — plain memory is read by the original rows
/// (what the engine's in-stream rows give: their outputs are dropped); masked memory by the task rows that own it (<see cref="Mask"/>).
/// Plain memory (Sandler et al. §3.1): the trainable class token (when the engine's model trains one) replaces the backbone's;
/// every original row reads the memory; query rows read the originals and (unless <see cref="QueriesReadMemory"/> is false)
/// the memory, never each other. Masked (§3.2): original rows read only original rows; task row k reads the originals,
/// task rows 0..k and memories 0..k. The head reads the backbone's pooled output of the adapted stream (<see cref="TorchVit.Pool"/>),
/// a masked task its own row after the readout norm, or with queries the VQT features [normalised pooled output | normalised
/// query outputs of each layer]. Which tensors train is the engine's model's choice: this model trains exactly the tensors the
/// engine drew (<c>initial</c>), by name.
/// </remarks>
public sealed class TorchAdaptedVit : TorchTunedModel
{
    public int MemoryTokens { get; }
    public bool Masked { get; }
    public bool FullFineTune { get; }
    public int QueryTokens { get; }
    /// <summary>VQT + memory: whether the query rows read the memory rows too (true: VQT's own composition, the default).</summary>
    public bool QueriesReadMemory { get; }
    /// <summary>Model extension: the frozen tasks this one reads, in training order: (class token [1, 1, D], memory [L, m, D]).</summary>
    public IReadOnlyList<(torch.Tensor ClassToken, torch.Tensor Memory)> Extends { get; }

    public Parameter? Memory { get; }      // [L, m, D]
    public Parameter? ClassToken { get; }  // [1, 1, D]
    public Parameter? Queries { get; }     // [L, T, D]
    public Parameter HeadWeight { get; }   // [C, D] or [C, D·(1 + L·T)]
    public Parameter HeadBias { get; }     // [C]

    VitConfig C => Backbone.Config;
    int Tasks => Masked ? Extends.Count + 1 : 0;
    int QueryRow0 => C.NumTokens + Tasks;
    int StreamRows => QueryRow0 + QueryTokens;
    int PooledRow => C.NumTokens + Extends.Count;   // masked: this task's row
    torch.Tensor? _mask;

    /// <param name="initial">The engine's freshly initialised tensors by adapter name (same seed, same values, the tensors its
    /// model of the method trains), or an adapter's.</param>
    /// <param name="queriesReadMemory">VQT + memory: the query rows read the layer's memory as well as the original rows
    /// (the engine's <c>TuningOptions.QueriesReadMemory</c>; false: the originals only).</param>
    public TorchAdaptedVit(TorchVit backbone, int numClasses, int memoryTokens, bool masked, bool fullFineTune, int queryTokens,
        IReadOnlyList<(torch.Tensor ClassToken, torch.Tensor Memory)> extends, IReadOnlyDictionary<string, MLNet.MemoryTokens.Tensor> initial,
        bool queriesReadMemory = true)
        : base(nameof(TorchAdaptedVit), backbone, numClasses)
    {
        if (extends.Count > 0 && !masked) throw new ArgumentException("Model extension (reading earlier tasks' tokens) applies to the attention-masked variant.");
        if (queryTokens > 0 && (masked || fullFineTune)) throw new ArgumentException("Query tokens compose with plain memory tuning, not with the masked variant or full fine-tuning.");
        if (masked && fullFineTune) throw new ArgumentException("The attention-masked variant keeps the backbone frozen; it cannot be combined with full fine-tuning.");
        if (memoryTokens < 0 || queryTokens < 0) throw new ArgumentOutOfRangeException(nameof(memoryTokens), "Token counts cannot be negative.");
        MemoryTokens = memoryTokens; Masked = masked; FullFineTune = fullFineTune; QueryTokens = queryTokens; Extends = extends;
        QueriesReadMemory = queriesReadMemory;
        // the engine's names and order
        if (memoryTokens > 0) Memory = AddTrainable("memory", Need(initial, "memory"));
        if (initial.ContainsKey("cls_token")) ClassToken = AddTrainable("cls_token", initial["cls_token"]);
        else if (masked) throw new InvalidDataException("No tensor 'cls_token' for the masked task's class-token row.");
        if (queryTokens > 0) Queries = AddTrainable("queries", Need(initial, "queries"));
        HeadWeight = AddTrainable("head.weight", Need(initial, "head.weight"));
        HeadBias = AddTrainable("head.bias", Need(initial, "head.bias"));
        if (fullFineTune)
        {
            // the trainable backbone's own weights, in the engine's order (the order its optimizer and clipping walk)
            var byName = backbone.named_parameters().ToDictionary(p => p.name, p => p.parameter);
            foreach (var name in initial.Keys.Where(k => k.StartsWith("backbone.", StringComparison.Ordinal)))
                AddTrainable(name, byName.TryGetValue(name["backbone.".Length..], out var p) ? p : throw new InvalidDataException($"The backbone has no weight '{name["backbone.".Length..]}'."));
            LoadAdapterTensors(initial, "<initial>");   // the trainable backbone copy from backbone.* (the engine's clone)
        }
    }

    static MLNet.MemoryTokens.Tensor Need(IReadOnlyDictionary<string, MLNet.MemoryTokens.Tensor> t, string name) =>
        t.TryGetValue(name, out var v) ? v : throw new InvalidDataException($"No tensor '{name}' to initialise the model from.");

    /// <summary>Who reads what, [S, S + M] (true: attend), or null when every row reads every key (plain memory without queries).</summary>
    torch.Tensor? Mask()
    {
        if (!Masked && QueryTokens == 0) return null;
        if (_mask is not null) return _mask;
        int n = C.NumTokens, s = StreamRows;
        var memRows = Masked ? Extends.Select(e => (int)e.Memory.shape[1]).Append(MemoryTokens).ToArray() : [MemoryTokens];
        int m = memRows.Sum();
        var allow = new bool[s, s + m];
        if (!Masked)
        {
            for (int r = 0; r < n; r++) { for (int k = 0; k < n; k++) allow[r, k] = true; for (int k = 0; k < m; k++) allow[r, s + k] = true; }   // originals: themselves + memory
            for (int r = n; r < s; r++)
            {
                for (int k = 0; k < n; k++) allow[r, k] = true;                                                                               // queries: the originals
                if (QueriesReadMemory) for (int k = 0; k < m; k++) allow[r, s + k] = true;                                                    // and, by default, the memory
            }
        }
        else
        {
            for (int r = 0; r < n; r++) for (int k = 0; k < n; k++) allow[r, k] = true;                                                        // originals stay exact
            for (int t = 0, memAt = s; t < Tasks; memAt += memRows[t], t++)
                for (int row = t; row < Tasks; row++)                                                                                          // task row `row` reads task t's tokens when t ≤ row
                {
                    int r = n + row;
                    if (t == 0) for (int k = 0; k < n; k++) allow[r, k] = true;
                    allow[r, n + t] = true;
                    for (int k = 0; k < memRows[t]; k++) allow[r, memAt + k] = true;
                }
        }
        var flat = new bool[s * (s + m)];
        for (int r = 0; r < s; r++) for (int k = 0; k < s + m; k++) flat[r * (s + m) + k] = allow[r, k];
        _mask = torch.tensor(flat, [s, s + m]).to(Device).DetachFromDisposeScope();   // built inside a forward's scope, kept for the model's life
        return _mask;
    }

    /// <summary>Layer l's key/value-only rows [1, M, 2D]: the memory (masked: every task's, in task order), or null.</summary>
    torch.Tensor? LayerKeyValues(int layer)
    {
        if (Memory is null) return null;
        var own = Memory.select(0, layer);                                                                     // [m, D]
        var rows = Masked ? cat([.. Extends.Select(e => e.Memory.select(0, layer)), own], 0) : own;
        return Backbone.Blocks[layer].KeyValues(rows, Backbone.Precision).unsqueeze(0);
    }

    public override torch.Tensor Forward(torch.Tensor images, bool training)
    {
        using var scope = NewDisposeScope();
        var c = C;
        long b = images.shape[0];
        var x = Masked
            ? Backbone.Embed(images, null, [.. Extends.Select(e => (torch.Tensor)e.ClassToken), ClassToken!])    // [B, N + tasks, D]
            : Backbone.Embed(images, FullFineTune ? null : ClassToken);                                          // [B, N, D]
        var mask = Mask();
        var outputs = new List<torch.Tensor>();
        for (int l = 0; l < c.Depth; l++)
        {
            if (Queries is not null) x = cat([x.narrow(1, 0, QueryRow0), Queries.select(0, l).unsqueeze(0).expand(b, QueryTokens, c.Dim)], 1);
            x = Backbone.Blocks[l].Forward(x, LayerKeyValues(l), mask, Backbone.Precision);
            if (Queries is not null) outputs.Add(x.narrow(1, QueryRow0, QueryTokens).reshape(b, QueryTokens * c.Dim));   // [B, T·D]
        }
        var pooled = Masked ? Backbone.ReadoutNorm(x.select(1, PooledRow)) : Backbone.Pool(x);                 // [B, D]
        var headIn = Queries is null ? pooled
            : cat([F.normalize(pooled, 2, 1, 1e-12), .. outputs.Select(o => F.normalize(o.to(ScalarType.Float32), 2, 1, 1e-12))], 1);   // [B, D·(1 + L·T)]
        return scope.MoveToOuter(HeadLinear(headIn, HeadWeight, HeadBias));
    }
}
