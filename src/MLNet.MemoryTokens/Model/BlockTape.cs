namespace MLNet.MemoryTokens.Model;

/// <summary>What one block's forward writes and, when it keeps them, what its backward reads: sized for a batch and stream
/// length and reused across steps.</summary>
/// <remarks>Legend: B batch, S stream rows per sample, c live rows per sample, D width, F MLP width, H heads, m rows of one
/// memory set, Nq/Nk query/key rows of one attention group. The forward buffers (qkv, and the LayerNorm, attention and GELU
/// outputs that only weight gradients read) exist from the first forward; the saved activations (marked "kept") only once a
/// forward keeps them for backward, so an inference pass costs no more than its working buffers.</remarks>
internal sealed class BlockTape
{
    public int Batch = -1, SeqRows = -1;
    /// <summary>[B·S, D] kept: the block's input x (LN1's input).</summary>
    public float[] Input = [];
    /// <summary>[B·S, D] LN1(x). The model-wide scratch, unless weight gradients need it kept.</summary>
    public float[] Ln1 = [];
    /// <summary>[B·S] kept: LN1's mean and 1/std per row.</summary>
    public float[] Ln1Mean = [], Ln1Rstd = [];
    /// <summary>[B·S, 3D] LN1(x) Wqkvᵀ + b: q | k | v of every stream row.</summary>
    public float[] Qkv = [];
    /// <summary>[B·S, D] attention output (zero on rows no group queries). Scratch, unless weight gradients need it kept.</summary>
    public float[] Attn = [];
    /// <summary>[B·S, D], or [B·c, D] with live rows, kept: the stream after the attention residual (LN2's input).</summary>
    public float[] Mid = [];
    /// <summary>[B·S, D] LN2(mid). Scratch (it shares LN1's buffer), unless weight gradients need it kept.</summary>
    public float[] Ln2 = [];
    /// <summary>[B·S] kept: LN2's mean and 1/std per row.</summary>
    public float[] Ln2Mean = [], Ln2Rstd = [];
    /// <summary>[B·S, F] kept: GELU'(fc1 output), for backward through the MLP.</summary>
    public float[] GeluDerivative = [];
    /// <summary>[B·S, F] GELU(fc1 output). Scratch, unless weight gradients need it kept.</summary>
    public float[] Gelu = [];
    /// <summary>[B·S, D] LayerScale models: each branch's output before γ (the projection's, the MLP's). Scratch, unless weight
    /// gradients (dγ) need them kept.</summary>
    public float[] Branch1 = [], Branch2 = [];
    /// <summary>The live rows of the last forward (null: all).</summary>
    public LiveRows? Live;
    /// <summary>[B·c, D] the live rows' stream, attention output and gradient, gathered.</summary>
    public float[] LiveX = [], LiveAttn = [], LiveDx = [];
    /// <summary>Per group [B, H, Nq, Nk], kept: attention probabilities.</summary>
    public float[][] Probs = [];
    /// <summary>Rows m of each memory set of the last forward.</summary>
    public int[] MemRows = [];
    /// <summary>Per memory set: LN1(memory) [m, D] and its qkv [m, 3D], computed once for the whole batch.</summary>
    public float[][] MemLn1 = [], MemQkv = [];
    /// <summary>Per memory set, kept: LN1's mean and 1/std [m]; backward's per-sample dqkv [B·m, 3D], its sum over the batch
    /// [m, 3D] and dLN1 [m, D].</summary>
    public float[][] MemMean = [], MemRstd = [], DMemQkv = [], DMemQkvSum = [], DMemLn1 = [];
    /// <summary>Backward scratch shared by every block of a model (blocks run one at a time).</summary>
    public BackwardScratch Scratch = null!;

    static float[] Pinned(long n) => GC.AllocateUninitializedArray<float>((int)Limits.CheckElements("A block's training buffer", n, "Lower the batch size or the image size."), pinned: true);

    bool _weightInputs;

    /// <param name="keep">Size the saved activations too: this forward keeps them for backward.</param>
    /// <param name="weightInputs">Keep LN outputs, attention output and GELU output per layer: only weight gradients (full
    /// fine-tuning) read them; otherwise they live in the model-wide scratch and the tape holds just what activation gradients need.</param>
    public void Ensure(VitConfig c, int batch, int seqRows, IReadOnlyList<ReadOnlyMemory<float>> memories, IReadOnlyList<AttentionGroup> groups, bool keep = true,
        int externalRows = 0, bool weightInputs = false, LiveRows? live = null)
    {
        int d = c.Dim;
        long rows = (long)batch * seqRows;
        if (live is not null)
        {
            live.Validate(seqRows);
            if (!groups.All(live.Holds)) throw new ArgumentException("Every query row must be live: a group queries rows outside the live ones.");
            int n = live.Count;
            if (LiveX.Length != batch * n * d) { LiveX = Pinned(batch * n * d); LiveAttn = Pinned(batch * n * d); LiveDx = Pinned(batch * n * d); }
        }
        Live = live;
        if (batch != Batch || seqRows != SeqRows || weightInputs != _weightInputs)
        {
            Qkv = Pinned(rows * 3 * d);
            if (weightInputs)
            {
                Ln1 = Pinned(rows * d); Ln2 = Pinned(rows * d); Attn = Pinned(rows * d); Gelu = Pinned(rows * c.MlpDim);
                (Branch1, Branch2) = c.LayerScale ? (Pinned(rows * d), Pinned(rows * d)) : ([], []);
            }
            else
            {
                Scratch.EnsureForward(c, rows);
                Ln1 = Ln2 = Scratch.Ln; Attn = Scratch.Attn; Gelu = Scratch.Hidden; Branch1 = Branch2 = Scratch.Branch;
            }
            Input = Ln1Mean = Ln1Rstd = Mid = Ln2Mean = Ln2Rstd = GeluDerivative = [];   // sized by the first forward that keeps them
            Batch = batch; SeqRows = seqRows; _weightInputs = weightInputs; Probs = [];
        }
        if (keep && Input.Length != rows * d)
        {
            Input = Pinned(rows * d); Ln1Mean = Pinned(rows); Ln1Rstd = Pinned(rows);
            Mid = Pinned(rows * d); Ln2Mean = Pinned(rows); Ln2Rstd = Pinned(rows); GeluDerivative = Pinned(rows * c.MlpDim);
        }
        // rows no group queries must have a zero attention output (the residual passes them through); with live rows, only
        // those are read past attention
        var clear = new bool[seqRows];
        if (live is null) clear.AsSpan().Fill(true);
        else foreach (var (start, count) in live.Ranges) clear.AsSpan(start, count).Fill(true);
        foreach (var g in groups) clear.AsSpan(g.QueryStart, g.Queries).Clear();
        for (int r = 0; r < seqRows; r++)
        {
            if (!clear[r]) continue;
            int end = r;
            while (end < seqRows && clear[end]) end++;
            for (int b = 0; b < batch; b++) Array.Clear(Attn, (int)(((long)b * seqRows + r) * d), (end - r) * d);
            r = end;
        }
        var memRows = memories.Select(m => m.Length / d).ToArray();
        if (!memRows.AsSpan().SequenceEqual(MemRows))
        {
            MemRows = memRows;
            MemLn1 = memRows.Select(m => Pinned(m * d)).ToArray();
            MemQkv = memRows.Select(m => Pinned(m * 3 * d)).ToArray();
            MemMean = MemRstd = DMemQkv = DMemQkvSum = DMemLn1 = [];
        }
        if (keep && (DMemQkv.Length != memRows.Length || (memRows.Length > 0 && DMemQkv[0].Length < (long)batch * memRows[0] * 3 * d)))
        {
            MemMean = memRows.Select(m => Pinned(m)).ToArray();
            MemRstd = memRows.Select(m => Pinned(m)).ToArray();
            DMemQkv = memRows.Select(m => Pinned((long)batch * m * 3 * d)).ToArray();
            DMemQkvSum = memRows.Select(m => Pinned(m * 3 * d)).ToArray();
            DMemLn1 = memRows.Select(m => Pinned(m * d)).ToArray();
        }
        if (Probs.Length != groups.Count) Probs = new float[groups.Count][];
        if (!keep) return;   // inference: scores live in per-task scratch
        for (int g = 0; g < groups.Count; g++)
        {
            int nk = groups[g].StreamKeys.Sum(k => k.Rows) + groups[g].Memories.Sum(j => memRows[j]) + (groups[g].ReadsExternal ? externalRows : 0);
            long need = (long)batch * c.Heads * groups[g].Queries * nk;
            if (Probs[g] is null || Probs[g].Length != need) Probs[g] = Pinned(need);
        }
    }
}

/// <summary>Scratch one model needs at a time (blocks run one after another): backward's [B·S, D], [B·S, 3D] and [B·S, F]
/// buffers, and the forward intermediates a frozen backbone's backward never reads (LN outputs, attention output, GELU output).</summary>
internal sealed class BackwardScratch
{
    /// <summary>[B·S, D], [B·S, 3D], [B·S, F]: backward's row gradient, qkv gradient and MLP-hidden gradient.</summary>
    public float[] DRow = [], DQkv = [], DHidden2 = [];
    /// <summary>[B·S, D] backward's gradient of a LayerScale branch (γ ⊙ dx).</summary>
    public float[] DScaled = [];
    /// <summary>[B·S, D], [B·S, D], [B·S, F]: forward's LN output, attention output and GELU output; [B·S, D] a LayerScale
    /// branch's output.</summary>
    public float[] Ln = [], Attn = [], Hidden = [], Branch = [];

    public void EnsureForward(VitConfig c, long rows)
    {
        if (Ln.Length >= rows * c.Dim) return;
        Ln = new float[rows * c.Dim]; Attn = new float[rows * c.Dim]; Hidden = new float[rows * c.MlpDim];
        Branch = c.LayerScale ? new float[rows * c.Dim] : [];
    }

    public void Ensure(VitConfig c, long rows)
    {
        if (DRow.Length >= rows * c.Dim) return;
        DRow = new float[rows * c.Dim]; DQkv = new float[rows * 3 * c.Dim];
        DHidden2 = new float[rows * c.MlpDim];
        DScaled = c.LayerScale ? new float[rows * c.Dim] : [];
    }
}
