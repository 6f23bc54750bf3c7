using System.Text.Json;
using System.Text.Json.Serialization;
using MLNet.MemoryTokens.IO;
using MLNet.MemoryTokens.TorchSharp.Tuning;
using MLNet.MemoryTokens.Training;
using MLNet.MemoryTokens.Tuning;

namespace MLNet.MemoryTokens.TorchSharp.Training;

/// <summary>The whole training state in a folder, in the engine's format (trainer_state.json naming epoch-stamped
/// trainer_params / trainer_optimizer safetensors; tensors by adapter name, optimizer state by the engine's names): written after
/// every epoch, tensor files first and the JSON state last (atomically), so a crash leaves the previous epoch loadable — and a
/// run started on one backend resumes on the other.</summary>
internal sealed class TorchTrainingCheckpoint(string directory)
{
    public string Directory { get; } = directory;
    string StatePath => Path.Combine(Directory, "trainer_state.json");
    public bool Exists => File.Exists(StatePath);

    static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    sealed record State(int EpochsDone, long Steps, string Method, int MemoryTokens, bool Masked, List<EpochMetrics> History, string ParamsFile, string OptimizerFile);

    public void Save(TorchTunedModel model, TorchOptimizer optimizer, List<EpochMetrics> history, TuningOptions tuning, int epochsDone)
    {
        System.IO.Directory.CreateDirectory(Directory);
        string pf = $"trainer_params.e{epochsDone}.safetensors", of = $"trainer_optimizer.e{epochsDone}.safetensors";
        SafeTensorsFile.Write(Path.Combine(Directory, pf), model.AdapterTensors().Where(kv => kv.Key != "kept_features").ToDictionary());
        SafeTensorsFile.Write(Path.Combine(Directory, of), optimizer.StateTensors());
        var state = new State(epochsDone, optimizer.Steps, tuning.Method.ToString(), tuning.MemoryTokens, tuning.Masked, history, pf, of);
        AtomicFile.Write(StatePath, s => JsonSerializer.Serialize(s, state, Json));
        foreach (var old in System.IO.Directory.EnumerateFiles(Directory, "trainer_*.e*.safetensors"))
            if (Path.GetFileName(old) != pf && Path.GetFileName(old) != of) File.Delete(old);
    }

    /// <summary>Loads the saved state into the model and optimizer; returns the number of epochs already done.</summary>
    public int Restore(TorchTunedModel model, TorchOptimizer optimizer, List<EpochMetrics> history, TuningOptions tuning)
    {
        State state;
        try { state = JsonSerializer.Deserialize<State>(File.ReadAllText(StatePath), Json) ?? throw new InvalidDataException("empty state"); }
        catch (JsonException e) { throw new InvalidDataException($"{StatePath}: not a training state ({e.Message}).", e); }
        if (state.Method != tuning.Method.ToString() || state.MemoryTokens != tuning.MemoryTokens || state.Masked != tuning.Masked)
            throw new InvalidDataException($"{StatePath} was written for method {state.Method} (m={state.MemoryTokens}, masked={state.Masked}), not {tuning.Method} (m={tuning.MemoryTokens}, masked={tuning.Masked}).");
        model.LoadAdapterTensors(SafeTensorsFile.Read(Path.Combine(Directory, state.ParamsFile)).Tensors, Path.Combine(Directory, state.ParamsFile));
        optimizer.LoadState(SafeTensorsFile.Read(Path.Combine(Directory, state.OptimizerFile)).Tensors, state.Steps);
        history.Clear();
        history.AddRange(state.History);
        return state.EpochsDone;
    }
}
