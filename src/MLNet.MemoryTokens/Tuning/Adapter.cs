using System.Text.Json;
using System.Text.Json.Serialization;
using MLNet.MemoryTokens.IO;
using MLNet.MemoryTokens.Imaging;
using MLNet.MemoryTokens.Model;

namespace MLNet.MemoryTokens.Tuning;

/// <summary>What an adapter file says about itself (adapter_config.json): method, sizes, labels, preprocessing, the backbone it belongs to.</summary>
public sealed record AdapterConfig
{
    public string Format { get; init; } = AdapterFiles.CurrentFormat;
    public TuningMethod Method { get; init; }
    public int MemoryTokens { get; init; }
    public bool Masked { get; init; }
    /// <summary>Model extension (masked memory only): the adapters this task was trained on top of, in order — its class token
    /// also read their class tokens and memory. Empty: a task on its own.</summary>
    public AdapterReference[] Extends { get; init; } = [];
    public bool TrainClassToken { get; init; }
    public int QueryTokens { get; init; }
    public float QueryDropout { get; init; }
    /// <summary>VQT + memory: whether the queries read the memory too (<see cref="TuningOptions.QueriesReadMemory"/>); absent
    /// (null) for the other methods and in adapters written before it was recorded, which were trained with the queries
    /// reading the original tokens only.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public bool? QueriesReadMemory { get; init; }
    public string[] ClassLabels { get; init; } = [];
    public int ImageSize { get; init; }
    public PreprocessConfig Preprocess { get; init; } = new();
    public string BackboneSource { get; init; } = "";
    public string BackboneFingerprint { get; init; } = "";
    public int BackboneDim { get; init; }
    public int BackboneDepth { get; init; }
    public string LibraryVersion { get; init; } = typeof(AdapterConfig).Assembly.GetName().Version?.ToString() ?? "0";
    /// <summary>Training hyper-parameters and final metrics, for the record.</summary>
    public Dictionary<string, JsonElement> Training { get; init; } = new();
}

/// <summary>Another adapter by where it was saved and its weights' fingerprint (which must match when it is loaded again).</summary>
public sealed record AdapterReference(string Path, string Fingerprint);

/// <summary>A trained adaptation saved apart from the backbone (HF PEFT style): <c>adapter_config.json</c> plus
/// <c>adapter_model.safetensors</c> holding only the trained tensors (memory [L, m, D], cls_token [1, 1, D], head.weight [C, D],
/// head.bias [C]; VQT: queries [L, T, D] and a head over D·(1 + L·T) features; full fine-tuning adds every backbone weight as backbone.*).</summary>
public sealed class Adapter
{
    public const string ConfigFile = "adapter_config.json";
    public const string WeightsFile = "adapter_model.safetensors";

    internal static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    public AdapterConfig Config { get; }
    public IReadOnlyDictionary<string, Tensor> Tensors { get; }
    /// <summary>The folder it was loaded from, or null when built in memory.</summary>
    public string? Folder { get; init; }
    /// <summary>SHA-256 over the trained tensors' names, shapes and values: how an extension names the adapters it was trained on.</summary>
    public string Fingerprint => _fingerprint ??= Backbone.ComputeFingerprint(Tensors);
    string? _fingerprint;

    public Adapter(AdapterConfig config, IReadOnlyDictionary<string, Tensor> tensors) { Config = config; Tensors = tensors; }

    /// <summary>Captures the trained parts of a model: the method table says which config fields and extra tensors its method
    /// records (<paramref name="compute"/>: the backend's compute that built the model; default the managed engine's).</summary>
    public static Adapter From(ITunedModel model, Backbone backbone, TuningOptions tuning, IReadOnlyList<string> labels, PreprocessConfig preprocess,
        Dictionary<string, JsonElement>? training = null, IMethodCompute? compute = null)
    {
        var tensors = model.Parameters.ToDictionary(p => p.Name, p => p.Value.Clone());
        foreach (var (name, t) in (compute ?? TuningMethods.Compute(tuning.Method)).AdapterExtras(model)) tensors[name] = t;
        var config = new AdapterConfig
        {
            Method = tuning.Method, ClassLabels = labels.ToArray(), ImageSize = backbone.Model.Config.ImageSize, Preprocess = preprocess,
            BackboneSource = backbone.Source, BackboneFingerprint = backbone.Fingerprint,
            BackboneDim = backbone.Model.Config.Dim, BackboneDepth = backbone.Model.Config.Depth, Training = training ?? new(),
        };
        return new Adapter(TuningMethods.Get(tuning.Method).DescribeAdapter(config, tuning), tensors);
    }

    /// <summary>Writes both files into <paramref name="directory"/> as one unit (<see cref="AtomicFolder"/>): a crash or a full
    /// disk never leaves a half-written adapter where the old one was, and a folder that holds anything but an adapter of ours
    /// (or nothing) is refused with an <see cref="OutputRefusedException"/>, untouched. Returns a warning when the previous
    /// adapter's folder could not be removed after the new one went in, else null.</summary>
    public string? Save(string directory) => AtomicFolder.Write(directory, AdapterFiles.Folder, "adapter", WriteInto);

    /// <summary>Throws an <see cref="OutputRefusedException"/> unless <see cref="Save"/> could write <paramref name="directory"/>
    /// (absent, empty or an adapter of ours, and writable): what to call before training, so that a run cannot end in a refusal.</summary>
    public static void EnsureCanSave(string directory) => AtomicFolder.EnsureWritable(directory, AdapterFiles.Folder, "adapter");

    /// <summary>The two files into an empty folder: weights first, the config (which says the adapter is complete) last.</summary>
    internal void WriteInto(string folder)
    {
        SafeTensorsFile.Write(Path.Combine(folder, WeightsFile), Tensors, new Dictionary<string, string> { ["format"] = Config.Format });
        AtomicFile.Write(Path.Combine(folder, ConfigFile), s => JsonSerializer.Serialize(s, Config, Json));
    }

    /// <summary>What reading the config noticed but did not refuse (unknown fields); empty for an adapter built in memory.</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];

    /// <summary>Reads an adapter folder written by <see cref="Save"/>. The config is checked against its schema
    /// (<see cref="AdapterConfigSchema"/>: a missing, null or mistyped field is refused naming it), and weights holding NaN or
    /// ±∞ are refused naming the tensor unless <paramref name="allowNonFiniteWeights"/>.</summary>
    public static Adapter Load(string directory, bool allowNonFiniteWeights = false)
    {
        var configPath = Path.Combine(directory, ConfigFile);
        var weightsPath = Path.Combine(directory, WeightsFile);
        if (!File.Exists(configPath)) throw new FileNotFoundException($"'{directory}' is not an adapter folder: {ConfigFile} is missing.", configPath);
        if (!File.Exists(weightsPath)) throw new FileNotFoundException($"Adapter '{directory}' has no {WeightsFile}.", weightsPath);
        var (config, warnings) = AdapterConfigSchema.Read(InputFile.ReadAllBytes(configPath, Limits.MaxTextFileBytes, "adapter config"), configPath);
        var tensors = SafeTensorsFile.Read(weightsPath).Tensors;
        FiniteCheck.Ensure(tensors, weightsPath, allowNonFiniteWeights, "Retrain the adapter, or pass --allow-non-finite-weights to load it anyway.");
        return new Adapter(config, tensors) { Folder = Path.GetFullPath(directory), Warnings = warnings };
    }

    static string Short(string fingerprint) => fingerprint.Length > 12 ? fingerprint[..12] + "…" : fingerprint;

    /// <summary>Refuses a backbone other than the one the adapter was trained on (by weight fingerprint and shape).</summary>
    public void EnsureMatches(Backbone backbone, string where)
    {
        if (Config.BackboneFingerprint != backbone.Fingerprint)
            throw new InvalidOperationException(
                $"Adapter '{where}' was trained on backbone {Config.BackboneSource} (fingerprint {Short(Config.BackboneFingerprint)}), " +
                $"but the loaded backbone {backbone.Source} has fingerprint {Short(backbone.Fingerprint)}; load the matching checkpoint.");
        if (Config.ImageSize != backbone.Model.Config.ImageSize)
            throw new InvalidOperationException($"Adapter '{where}' expects input size {Config.ImageSize}, the backbone runs at {backbone.Model.Config.ImageSize}; load it with --image-size {Config.ImageSize}.");
    }

    /// <summary>The adapters an extension was trained on, checked against the fingerprints it recorded: <paramref name="given"/>
    /// when the caller has them (in order), else loaded from the folders recorded at training.</summary>
    public IReadOnlyList<Adapter> ResolveExtends(IReadOnlyList<Adapter>? given, string where)
    {
        var refs = Config.Extends;
        if (given is not null && given.Count != refs.Length)
            throw new ArgumentException($"Adapter '{where}' extends {refs.Length} adapter(s); {given.Count} were given.");
        var list = new List<Adapter>();
        for (int i = 0; i < refs.Length; i++)
        {
            Adapter a;
            if (given is not null) a = given[i];
            else if (Directory.Exists(refs[i].Path)) a = Load(refs[i].Path);
            else throw new FileNotFoundException($"Adapter '{where}' was trained on top of the adapter saved at '{refs[i].Path}', which is not there any more; give the adapters it extends, in order.", refs[i].Path);
            if (a.Fingerprint != refs[i].Fingerprint)
                throw new InvalidOperationException($"Adapter '{where}' was trained on top of {refs[i].Path} (fingerprint {Short(refs[i].Fingerprint)}), but adapter {i + 1} given has fingerprint {Short(a.Fingerprint)}: pass the very adapters it extends, in the order it was trained.");
            list.Add(a);
        }
        return list;
    }

    /// <summary>The options this adapter was trained with, as its method reads them back from the config (the adapters it
    /// extends given resolved).</summary>
    public TuningOptions RecordedOptions(IReadOnlyList<Adapter> extends) => TuningMethods.Get(Config.Method).ReadAdapter(Config, extends);

    /// <summary>Rebuilds the trainable model from these tensors on a matching backbone (the tensors are copied in), on the
    /// backend and device <paramref name="compute"/> names (default: the managed engine): an adapter trained on any backend
    /// serves on any other. An extension (<see cref="AdapterConfig.Extends"/>) also needs the adapters it extends: given, or
    /// loaded from where they were saved.</summary>
    public ITunedModel CreateModel(Backbone backbone, string where = "<adapter>", IReadOnlyList<Adapter>? extends = null, ComputeOptions? compute = null)
    {
        EnsureMatches(backbone, where);
        var earlier = ResolveExtends(extends, where);
        foreach (var (a, i) in earlier.Select((a, i) => (a, i))) a.EnsureMatches(backbone, a.Folder ?? $"{where} (extended adapter {i + 1})");
        // an explicit managed compute decides the backbone's inference precision (set before the model is built: a full
        // fine-tune serves from a copy of the backbone, which keeps it); without one, the backbone stays as the caller set it
        bool setsPrecision = compute is { IsManaged: true };
        compute ??= ComputeOptions.Managed;
        compute.Validate();
        if (setsPrecision) backbone.Model.InferencePrecision = compute.InferencePrecision;
        var methodCompute = TuningMethods.Compute(Config.Method, compute);
        var options = RecordedOptions(earlier);
        try { options.Validate(); }
        catch (ArgumentException e) { throw new InvalidDataException($"Adapter '{where}': its config describes no valid model ({e.Message})", e); }
        var model = methodCompute.CreateModel(backbone.Model, options, Config.ClassLabels.Length, seed: 0);
        methodCompute.PrepareForAdapter(model, Tensors);
        CopyTo(model, where, methodCompute);
        return model;
    }

    /// <summary>Tensor <paramref name="name"/>, refused with a message naming the adapter when it is missing or not of
    /// <paramref name="shape"/>.</summary>
    public Tensor Need(string name, string where, params int[] shape)
    {
        if (!Tensors.TryGetValue(name, out var t)) throw new InvalidDataException($"Adapter '{where}' has no tensor '{name}' that method {Config.Method} needs.");
        if (!t.ShapeEquals(shape)) throw new InvalidDataException($"Adapter '{where}': tensor '{name}' has shape {t.ShapeString}, expected {Tensor.FormatShape(shape)}.");
        return t;
    }

    /// <summary>Copies the tensors into the model's parameters, each checked by name and shape (<paramref name="compute"/>: the
    /// backend's compute that built the model, which says what else its adapter holds; default the managed engine's).</summary>
    internal void CopyTo(ITunedModel model, string where, IMethodCompute? compute = null)
    {
        var needed = model.Parameters.Select(p => p.Name).Concat((compute ?? TuningMethods.Compute(Config.Method)).AdapterExtras(model).Select(kv => kv.Key)).ToHashSet();
        if (Tensors.Keys.FirstOrDefault(k => !needed.Contains(k)) is string extra)
            throw new InvalidDataException($"Adapter '{where}' has a tensor '{extra}' that method {Config.Method} does not have: the weights do not belong to this config.");
        foreach (var p in model.Parameters)
        {
            if (!Tensors.TryGetValue(p.Name, out var t)) throw new InvalidDataException($"Adapter '{where}' has no tensor '{p.Name}' that method {Config.Method} needs.");
            if (!t.ShapeEquals(p.Value.Shape)) throw new InvalidDataException($"Adapter '{where}': tensor '{p.Name}' has shape {t.ShapeString}, the model needs {p.Value.ShapeString}.");
            t.Data.CopyTo(p.Value.Data, 0);
        }
    }
}
