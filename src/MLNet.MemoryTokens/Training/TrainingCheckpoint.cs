using System.Text.Json;
using MLNet.MemoryTokens.IO;
using MLNet.MemoryTokens.Tuning;

namespace MLNet.MemoryTokens.Training;

/// <summary>The whole training state in a folder (trainable tensors, optimizer moments, step, history), written after every
/// epoch with each file replaced atomically and the JSON state last, so a crash leaves the previous epoch's state loadable.</summary>
internal sealed class TrainingCheckpoint(string directory)
{
    public string Directory { get; } = directory;
    string StatePath => Path.Combine(Directory, "trainer_state.json");
    public bool Exists => File.Exists(StatePath);

    sealed record State(int EpochsDone, long Steps, string Method, int MemoryTokens, bool Masked, List<EpochMetrics> History, string ParamsFile, string OptimizerFile);

    public void Save(ITunedModel model, Optimizer optimizer, List<EpochMetrics> history, TuningOptions tuning, int epochsDone)
    {
        System.IO.Directory.CreateDirectory(Directory);
        // Epoch-stamped tensor files, then the state that names them: the state always points at complete files.
        string pf = $"trainer_params.e{epochsDone}.safetensors", of = $"trainer_optimizer.e{epochsDone}.safetensors";
        SafeTensorsFile.Write(Path.Combine(Directory, pf), model.Parameters.ToDictionary(p => p.Name, p => p.Value));
        SafeTensorsFile.Write(Path.Combine(Directory, of), optimizer.State);
        var state = new State(epochsDone, optimizer.Steps, tuning.Method.ToString(), tuning.MemoryTokens, tuning.Masked, history, pf, of);
        AtomicFile.Write(StatePath, s => JsonSerializer.Serialize(s, state, Adapter.Json));
        foreach (var old in System.IO.Directory.EnumerateFiles(Directory, "trainer_*.e*.safetensors"))
            if (Path.GetFileName(old) != pf && Path.GetFileName(old) != of) File.Delete(old);
    }

    /// <summary>Loads the saved state into the model and optimizer; returns the number of epochs already done.</summary>
    public int Restore(ITunedModel model, Optimizer optimizer, List<EpochMetrics> history, TuningOptions tuning)
    {
        State state;
        try { state = JsonSerializer.Deserialize<State>(File.ReadAllText(StatePath), Adapter.Json) ?? throw new InvalidDataException("empty state"); }
        catch (JsonException e) { throw new InvalidDataException($"{StatePath}: not a training state ({e.Message}).", e); }
        if (state.Method != tuning.Method.ToString() || state.MemoryTokens != tuning.MemoryTokens || state.Masked != tuning.Masked)
            throw new InvalidDataException($"{StatePath} was written for method {state.Method} (m={state.MemoryTokens}, masked={state.Masked}), not {tuning.Method} (m={tuning.MemoryTokens}, masked={tuning.Masked}).");
        var tensors = SafeTensorsFile.Read(Path.Combine(Directory, state.ParamsFile)).Tensors;
        foreach (var p in model.Parameters)
        {
            if (!tensors.TryGetValue(p.Name, out var t) || !t.ShapeEquals(p.Value.Shape))
                throw new InvalidDataException($"{state.ParamsFile} in {Directory} has no tensor '{p.Name}' of shape {p.Value.ShapeString}.");
            t.Data.CopyTo(p.Value.Data, 0);
        }
        optimizer.LoadState(SafeTensorsFile.Read(Path.Combine(Directory, state.OptimizerFile)).Tensors, state.Steps);
        history.Clear();
        history.AddRange(state.History);
        return state.EpochsDone;
    }
}
