using System.Text.Json;
using System.Text.RegularExpressions;
using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.IO;
using MLNet.MemoryTokens.Model;
using MLNet.MemoryTokens.Tuning;

namespace MLNet.MemoryTokens.Training;

/// <summary>What makes two training runs the same run: a checkpoint resumes only the run that wrote it. Hyper-parameters that
/// do not change what a step computes from the data (epochs, learning rate, warm-up, clipping) may differ on resume.</summary>
internal sealed record RunIdentity(string BackboneFingerprint, int ImageSize, string DataFingerprint, int TrainImages, int Classes, int Seed,
    int BatchSize, string Optimizer, string Method, int MemoryTokens, bool Masked, bool TrainClassToken, int QueryTokens, string[] Extends)
{
    public static RunIdentity Of(Backbone backbone, PreparedImages train, TuningOptions tuning, TrainingOptions options) => new(
        backbone.Fingerprint, backbone.Model.Config.ImageSize, train.Fingerprint, train.Count, train.ClassNames.Count, options.Seed,
        options.BatchSize, options.Optimizer.ToString(), tuning.Method.ToString(), tuning.MemoryTokens, tuning.Masked, tuning.TrainClassToken,
        tuning.QueryTokens, tuning.Extends.Select(a => a.Fingerprint).ToArray());

    /// <summary>Each way <paramref name="run"/> differs from this (the checkpoint's) identity, as "what: checkpoint vs this run".</summary>
    public List<string> Differences(RunIdentity run)
    {
        var d = new List<string>();
        void Compare<T>(string what, T saved, T now, Func<T, string>? show = null)
        {
            if (!EqualityComparer<T>.Default.Equals(saved, now)) d.Add($"{what}: {(show ?? (x => $"{x}"))(saved)} in the checkpoint, {(show ?? (x => $"{x}"))(now)} now");
        }
        static string Short(string h) => h.Length > 12 ? h[..12] + "…" : h;
        Compare("backbone (weights fingerprint)", BackboneFingerprint, run.BackboneFingerprint, Short);
        Compare("image size", ImageSize, run.ImageSize);
        Compare("data set (fingerprint of the prepared training images)", DataFingerprint, run.DataFingerprint, Short);
        Compare("training images", TrainImages, run.TrainImages);
        Compare("classes", Classes, run.Classes);
        Compare("seed", Seed, run.Seed);
        Compare("batch size", BatchSize, run.BatchSize);
        Compare("optimizer", Optimizer, run.Optimizer);
        Compare("method", Method, run.Method);
        Compare("memory tokens (m)", MemoryTokens, run.MemoryTokens, m => $"m={m}");
        Compare("masked", Masked, run.Masked, m => $"masked={m}");
        Compare("class token trained", TrainClassToken, run.TrainClassToken);
        Compare("query tokens (T)", QueryTokens, run.QueryTokens);
        Compare("adapters extended", string.Join(",", Extends.Select(Short)), string.Join(",", run.Extends.Select(Short)), x => x.Length == 0 ? "none" : x);
        return d;
    }
}

/// <summary>The whole training state in a folder (trainable tensors, optimizer moments, step, history, the run's identity),
/// written after every epoch with each file replaced atomically and the JSON state last, so a crash leaves the previous
/// epoch's state loadable. It resumes only the run that wrote it, refuses missing, extra or non-finite tensors by name, and
/// writes only into a folder that is empty or holds a checkpoint of ours.</summary>
internal sealed class TrainingCheckpoint
{
    public const string FormatPrefix = "mlnet-memorytokens-checkpoint/";
    const string Format = FormatPrefix + "1";
    const string StateFile = "trainer_state.json";

    /// <summary>A checkpoint folder: the state (with our format, or the fields of a state written before it had one) and the
    /// epoch-stamped tensor files it names.</summary>
    public static FolderArtifact Kind { get; } = new(
        $"a training checkpoint ({StateFile} + trainer_*.e<epoch>.safetensors) written by MLNet.MemoryTokens",
        [
            OwnedFile.Exactly(StateFile, p => OwnedContent.JsonFieldStartsWith(p, "format", FormatPrefix) || OwnedContent.JsonHasFields(p, "epochs_done", "params_file", "optimizer_file")),
            new OwnedFile(new Regex(@"^trainer_(params|optimizer)\.e\d+\.safetensors$"), p =>
                SafeTensorsFile.ReadMetadata(p) is var m && (m.Count == 0 || m.TryGetValue("format", out var f) && f.StartsWith(FormatPrefix, StringComparison.Ordinal))),
        ]);

    /// <summary>Throws an <see cref="OutputRefusedException"/> unless <paramref name="directory"/> can hold a checkpoint.</summary>
    public static void EnsureWritable(string directory) => AtomicFolder.EnsureWritable(directory, Kind, "training checkpoint");

    public string Directory { get; }
    readonly Lazy<RunIdentity> _identity;
    RunIdentity _run => _identity.Value;
    string StatePath => Path.Combine(Directory, StateFile);
    public bool Exists => File.Exists(StatePath);

    public TrainingCheckpoint(string directory, RunIdentity run) : this(directory, () => run) { }

    /// <summary>With the run's identity computed when first needed (a resume, or the first save): the data fingerprint waits for
    /// every training image, which a first epoch prepares while it trains.</summary>
    public TrainingCheckpoint(string directory, Func<RunIdentity> run)
    {
        EnsureWritable(directory);
        Directory = Path.GetFullPath(directory);
        _identity = new Lazy<RunIdentity>(run);
    }

    sealed record State(string? Format, int EpochsDone, long Steps, string Method, int MemoryTokens, bool Masked, List<EpochMetrics> History,
        string ParamsFile, string OptimizerFile, RunIdentity? Run);

    public void Save(ITunedModel model, Optimizer optimizer, List<EpochMetrics> history, TuningOptions tuning, int epochsDone)
    {
        System.IO.Directory.CreateDirectory(Directory);
        var previous = Exists ? TryReadState() : null;
        // Epoch-stamped tensor files, then the state that names them: the state always points at complete files.
        string pf = $"trainer_params.e{epochsDone}.safetensors", of = $"trainer_optimizer.e{epochsDone}.safetensors";
        var meta = new Dictionary<string, string> { ["format"] = Format };
        SafeTensorsFile.Write(Path.Combine(Directory, pf), model.Parameters.ToDictionary(p => p.Name, p => p.Value), meta);
        SafeTensorsFile.Write(Path.Combine(Directory, of), optimizer.State, meta);
        var state = new State(Format, epochsDone, optimizer.Steps, tuning.Method.ToString(), tuning.MemoryTokens, tuning.Masked, history, pf, of, _run);
        AtomicFile.Write(StatePath, s => JsonSerializer.Serialize(s, state, Adapter.Json));
        // the files the previous state named, and only those
        foreach (var old in new[] { previous?.ParamsFile, previous?.OptimizerFile })
            if (old is not null && old != pf && old != of && Kind.Files[1].Name.IsMatch(old)) File.Delete(Path.Combine(Directory, old));
    }

    State? TryReadState()
    {
        try { return ReadState(); }
        catch (Exception e) when (e is InvalidDataException or IOException) { return null; }
    }

    State ReadState()
    {
        State? state;
        try { state = JsonSerializer.Deserialize<State>(InputFile.ReadAllBytes(StatePath, Limits.MaxTextFileBytes, "training state"), Adapter.Json); }
        catch (JsonException e) { throw new InvalidDataException($"{StatePath}: not a training state ({e.Message}).", e); }
        if (state is null || state.ParamsFile is null || state.OptimizerFile is null || state.History is null || state.Method is null)
            throw new InvalidDataException($"{StatePath}: not a training state (a required field is missing or null).");
        if (!Kind.Files[1].Name.IsMatch(state.ParamsFile) || !Kind.Files[1].Name.IsMatch(state.OptimizerFile))
            throw new InvalidDataException($"{StatePath} names tensor files '{state.ParamsFile}' and '{state.OptimizerFile}', which a checkpoint never has.");
        return state;
    }

    /// <summary>Loads the saved state into the model and optimizer; returns the number of epochs already done.</summary>
    /// <exception cref="InvalidDataException">The checkpoint belongs to another run (the message lists every difference), or
    /// a tensor is missing, extra, misshapen or not finite (the message names it).</exception>
    public int Restore(ITunedModel model, Optimizer optimizer, List<EpochMetrics> history, TuningOptions tuning)
    {
        var state = ReadState();
        if (state.Format is null || state.Run is null)
            throw new InvalidDataException($"{StatePath} was written by an earlier version that did not record which run it belongs to (backbone, data, image size, seed), " +
                                           "so resuming from it could silently mix two runs. Start afresh without --resume (the folder is then overwritten).");
        if (!state.Format.StartsWith(FormatPrefix, StringComparison.Ordinal) || state.Format != Format)
            throw new InvalidDataException($"{StatePath} has format '{state.Format}'; this version reads '{Format}'.");
        var differences = state.Run.Differences(_run);
        if (differences.Count > 0)
            throw new InvalidDataException($"Cannot resume from {Directory}: it was written by another run ({string.Join("; ", differences)}). " +
                                           "Resume with the same settings, or start afresh without --resume.");
        var tensors = ReadTensors(state.ParamsFile);
        CheckNames(state.ParamsFile, tensors.Keys, model.Parameters.Select(p => p.Name));
        foreach (var p in model.Parameters)
        {
            var t = tensors[p.Name];
            if (!t.ShapeEquals(p.Value.Shape))
                throw new InvalidDataException($"{state.ParamsFile} in {Directory}: tensor '{p.Name}' has shape {t.ShapeString}, the model needs {p.Value.ShapeString}.");
            t.Data.CopyTo(p.Value.Data, 0);
        }
        var moments = ReadTensors(state.OptimizerFile);
        CheckNames(state.OptimizerFile, moments.Keys, optimizer.State.Keys);
        optimizer.LoadState(moments, state.Steps);
        history.Clear();
        history.AddRange(state.History);
        return state.EpochsDone;
    }

    IReadOnlyDictionary<string, Tensor> ReadTensors(string file)
    {
        var tensors = SafeTensorsFile.Read(Path.Combine(Directory, file)).Tensors;
        foreach (var (name, t) in tensors)
            if (FiniteCheck.FirstNonFinite(t.Data) is int i)
                throw new InvalidDataException($"{file} in {Directory}: tensor '{name}' holds {t.Data[i]} at element {i}; a checkpoint with non-finite values cannot be resumed.");
        return tensors;
    }

    void CheckNames(string file, IEnumerable<string> present, IEnumerable<string> needed)
    {
        var have = present.ToHashSet();
        var need = needed.ToHashSet();
        if (need.FirstOrDefault(n => !have.Contains(n)) is string missing)
            throw new InvalidDataException($"{file} in {Directory} has no tensor '{missing}', which this run needs.");
        if (have.FirstOrDefault(n => !need.Contains(n)) is string extra)
            throw new InvalidDataException($"{file} in {Directory} has a tensor '{extra}' that this run does not have.");
    }
}
