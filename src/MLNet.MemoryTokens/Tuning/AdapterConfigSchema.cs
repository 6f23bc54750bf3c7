using System.Globalization;
using System.Text.Json;
using MLNet.MemoryTokens.Imaging;
using MLNet.MemoryTokens.Model;

namespace MLNet.MemoryTokens.Tuning;

/// <summary>The schema of <c>adapter_config.json</c>, checked before the config is used: every field that changes the model or
/// its input is required and typed; a missing, null or wrong-typed one is refused naming the field and the file (loading
/// defaults instead would build a different model); values are checked against <see cref="Limits"/>; unknown fields are
/// reported as warnings. Format <c>mlnet-memorytokens-adapter/1</c>; a newer version is refused, asking for a newer library.</summary>
/// <remarks>
/// Fields (snake_case): format, method, memory_tokens, masked, extends [{path, fingerprint}], train_class_token, query_tokens,
/// query_dropout, class_labels, image_size, preprocess {input_size, crop_fraction, interpolation, mean[3], std[3]},
/// backbone_source, backbone_fingerprint, backbone_dim, backbone_depth — all required; library_version and training optional;
/// queries_read_memory (method vqt_memory) optional: adapters written before it was recorded lack it, and load as they were
/// trained, with the queries reading the original tokens only.
/// </remarks>
public static class AdapterConfigSchema
{
    /// <summary>The newest format version this library reads.</summary>
    public const int Version = 1;

    enum Kind { String, Integer, Number, Boolean, Array, Object }

    static readonly (string Name, Kind Kind, bool Required)[] Fields =
    [
        ("format", Kind.String, true), ("method", Kind.String, true), ("memory_tokens", Kind.Integer, true), ("masked", Kind.Boolean, true),
        ("extends", Kind.Array, true), ("train_class_token", Kind.Boolean, true), ("query_tokens", Kind.Integer, true),
        ("query_dropout", Kind.Number, true), ("class_labels", Kind.Array, true), ("image_size", Kind.Integer, true),
        ("preprocess", Kind.Object, true), ("backbone_source", Kind.String, true), ("backbone_fingerprint", Kind.String, true),
        ("backbone_dim", Kind.Integer, true), ("backbone_depth", Kind.Integer, true), ("library_version", Kind.String, false),
        ("training", Kind.Object, false), ("queries_read_memory", Kind.Boolean, false),
    ];

    static readonly (string Name, Kind Kind)[] PreprocessFields =
        [("input_size", Kind.Integer), ("crop_fraction", Kind.Number), ("interpolation", Kind.String), ("mean", Kind.Array), ("std", Kind.Array)];

    /// <summary>Parses and checks a config; <paramref name="path"/> names it in every message.</summary>
    /// <exception cref="InvalidDataException">Not valid JSON, not an object, or a field missing, null, mistyped or out of range.</exception>
    public static (AdapterConfig Config, IReadOnlyList<string> Warnings) Read(ReadOnlySpan<byte> json, string path)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json.ToArray(), new JsonDocumentOptions { MaxDepth = 32 }); }
        catch (JsonException e) { throw Bad(path, $"not valid JSON ({e.Message})", e); }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw Bad(path, $"the config is a JSON {root.ValueKind}, not an object");
            var warnings = new List<string>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var p in root.EnumerateObject())
            {
                if (!seen.Add(p.Name)) throw Bad(path, $"field '{p.Name}' appears twice");
                if (!Fields.Any(f => f.Name == p.Name)) warnings.Add($"{path}: unknown field '{p.Name}' ignored (written by another version?)");
            }
            foreach (var (name, kind, required) in Fields)
            {
                if (!root.TryGetProperty(name, out var v))
                {
                    if (required) throw Bad(path, $"required field '{name}' is missing");
                    continue;
                }
                CheckKind(path, name, v, kind, nullable: !required);
            }
            var preprocess = root.GetProperty("preprocess");
            foreach (var p in preprocess.EnumerateObject())
                if (!PreprocessFields.Any(f => f.Name == p.Name)) warnings.Add($"{path}: unknown field 'preprocess.{p.Name}' ignored");
            foreach (var (name, kind) in PreprocessFields)
            {
                if (!preprocess.TryGetProperty(name, out var v)) throw Bad(path, $"required field 'preprocess.{name}' is missing");
                CheckKind(path, "preprocess." + name, v, kind, nullable: false);
            }

            var config = Build(root, path);
            if (config.QueriesReadMemory is not null && config.Method != TuningMethod.VqtMemory)
                warnings.Add($"{path}: field 'queries_read_memory' applies to method 'vqt_memory' only; ignored");
            Validate(config, path);
            return (config, warnings);
        }
    }

    static void CheckKind(string path, string name, JsonElement v, Kind kind, bool nullable)
    {
        if (v.ValueKind == JsonValueKind.Null)
        {
            if (nullable) return;
            throw Bad(path, $"required field '{name}' is null");
        }
        bool ok = kind switch
        {
            Kind.String => v.ValueKind == JsonValueKind.String,
            Kind.Integer => v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out _),
            Kind.Number => v.ValueKind == JsonValueKind.Number && double.IsFinite(v.GetDouble()),
            Kind.Boolean => v.ValueKind is JsonValueKind.True or JsonValueKind.False,
            Kind.Array => v.ValueKind == JsonValueKind.Array,
            _ => v.ValueKind == JsonValueKind.Object,
        };
        if (!ok)
            throw Bad(path, $"field '{name}' is {Describe(v)}, expected {kind switch { Kind.Integer => "an integer", Kind.Number => "a number", Kind.Boolean => "true or false", Kind.Array => "a list", Kind.Object => "an object", _ => "a string" }}");
    }

    static string Describe(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.Number => $"the number {v.GetRawText()}",
        JsonValueKind.String => "a string",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Array => "a list",
        JsonValueKind.Object => "an object",
        _ => v.ValueKind.ToString().ToLowerInvariant(),
    };

    static AdapterConfig Build(JsonElement root, string path)
    {
        string S(string name) => root.GetProperty(name).GetString()!;
        int I(string name) => root.GetProperty(name).GetInt32();
        bool B(string name) => root.GetProperty(name).GetBoolean();
        var pre = root.GetProperty("preprocess");
        float[] Floats(string name)
        {
            var a = pre.GetProperty(name);
            if (a.GetArrayLength() != 3 || a.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.Number || !double.IsFinite(e.GetDouble())))
                throw Bad(path, $"field 'preprocess.{name}' must be a list of 3 finite numbers (R, G, B)");
            return a.EnumerateArray().Select(e => (float)e.GetDouble()).ToArray();
        }
        var labels = root.GetProperty("class_labels");
        if (labels.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.String))
            throw Bad(path, "field 'class_labels' must be a list of strings");
        var extends = new List<AdapterReference>();
        int k = 0;
        foreach (var e in root.GetProperty("extends").EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty("path", out var p) || p.ValueKind != JsonValueKind.String
                || !e.TryGetProperty("fingerprint", out var f) || f.ValueKind != JsonValueKind.String)
                throw Bad(path, $"field 'extends[{k}]' must be an object with string fields 'path' and 'fingerprint'");
            extends.Add(new AdapterReference(p.GetString()!, f.GetString()!));
            k++;
        }
        var training = new Dictionary<string, JsonElement>();
        if (root.TryGetProperty("training", out var t) && t.ValueKind == JsonValueKind.Object)
            foreach (var p in t.EnumerateObject()) training[p.Name] = p.Value.Clone();
        return new AdapterConfig
        {
            Format = S("format"),
            Method = ParseEnum<TuningMethod>(S("method"), "method", path),
            MemoryTokens = I("memory_tokens"), Masked = B("masked"), Extends = extends.ToArray(), TrainClassToken = B("train_class_token"),
            QueryTokens = I("query_tokens"), QueryDropout = (float)root.GetProperty("query_dropout").GetDouble(),
            ClassLabels = labels.EnumerateArray().Select(e => e.GetString()!).ToArray(), ImageSize = I("image_size"),
            Preprocess = new PreprocessConfig
            {
                InputSize = pre.GetProperty("input_size").GetInt32(), CropFraction = pre.GetProperty("crop_fraction").GetDouble(),
                Interpolation = ParseEnum<Interpolation>(pre.GetProperty("interpolation").GetString()!, "preprocess.interpolation", path),
                Mean = Floats("mean"), Std = Floats("std"),
            },
            BackboneSource = S("backbone_source"), BackboneFingerprint = S("backbone_fingerprint"),
            BackboneDim = I("backbone_dim"), BackboneDepth = I("backbone_depth"),
            LibraryVersion = root.TryGetProperty("library_version", out var lv) && lv.ValueKind == JsonValueKind.String ? lv.GetString()! : "",
            Training = training,
            QueriesReadMemory = root.TryGetProperty("queries_read_memory", out var qm) && qm.ValueKind is JsonValueKind.True or JsonValueKind.False ? qm.GetBoolean() : null,
        };
    }

    /// <summary>An enum value by its snake_case name, as the writer spells it ("head_and_class_token").</summary>
    static T ParseEnum<T>(string text, string field, string path) where T : struct, Enum
    {
        foreach (var v in Enum.GetValues<T>())
            if (JsonNamingPolicy.SnakeCaseLower.ConvertName(v.ToString()) == text) return v;
        throw Bad(path, $"field '{field}' is '{text}', not one of {string.Join(", ", Enum.GetValues<T>().Select(v => JsonNamingPolicy.SnakeCaseLower.ConvertName(v.ToString())))}");
    }

    static void Validate(AdapterConfig c, string path)
    {
        if (!c.Format.StartsWith(AdapterFiles.FormatPrefix, StringComparison.Ordinal))
            throw Bad(path, $"field 'format' is '{c.Format}': not an MLNet.MemoryTokens adapter");
        if (!int.TryParse(c.Format.AsSpan(AdapterFiles.FormatPrefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out int version) || version < 1)
            throw Bad(path, $"field 'format' is '{c.Format}', which names no version");
        if (version > Version)
            throw Bad(path, $"it has format version {version}, written by a newer MLNet.MemoryTokens; this version reads up to {Version}: update the library");
        void Range(string field, double value, double min, double max)
        {
            if (!(value >= min && value <= max)) throw Bad(path, $"field '{field}' is {value.ToString(CultureInfo.InvariantCulture)}, outside {min.ToString(CultureInfo.InvariantCulture)}..{max.ToString(CultureInfo.InvariantCulture)}");
        }
        Range("image_size", c.ImageSize, 1, Limits.MaxImageSize);
        Range("preprocess.input_size", c.Preprocess.InputSize, 1, Limits.MaxImageSize);
        Range("memory_tokens", c.MemoryTokens, 0, Limits.MaxMemoryTokens);
        Range("query_tokens", c.QueryTokens, 0, Limits.MaxQueryTokens);
        Range("query_dropout", c.QueryDropout, 0, 0.999999);
        Range("class_labels (count)", c.ClassLabels.Length, 1, Limits.MaxClasses);
        Range("extends (count)", c.Extends.Length, 0, Limits.MaxTasks - 1);
        Range("backbone_dim", c.BackboneDim, 1, int.MaxValue);
        Range("backbone_depth", c.BackboneDepth, 1, int.MaxValue);
        if (!(c.Preprocess.CropFraction > 0 && c.Preprocess.CropFraction <= 1)) throw Bad(path, $"field 'preprocess.crop_fraction' is {c.Preprocess.CropFraction}, outside (0, 1]");
        if (c.ImageSize / c.Preprocess.CropFraction > ImageDecoderLimits.Default.MaxWidth)   // images are resized to S / crop before the crop
            throw Bad(path, $"field 'preprocess.crop_fraction' is {c.Preprocess.CropFraction}: images would be resized to {c.ImageSize / c.Preprocess.CropFraction:F0} pixels, beyond the image limit of {ImageDecoderLimits.Default.MaxWidth}");
        if (c.Preprocess.Std.Any(s => !(s > 0))) throw Bad(path, "field 'preprocess.std' must hold positive numbers");
        if (c.BackboneFingerprint.Length == 0) throw Bad(path, "field 'backbone_fingerprint' is empty");
        if (c.Method == TuningMethod.Memory && c.MemoryTokens < 1) throw Bad(path, "field 'memory_tokens' is 0, but method 'memory' needs at least one token per layer");
        if (c.Method is TuningMethod.Vqt or TuningMethod.VqtMemory && c.QueryTokens < 1) throw Bad(path, $"field 'query_tokens' is 0, but method '{JsonNamingPolicy.SnakeCaseLower.ConvertName(c.Method.ToString())}' needs at least one query per layer");
    }

    static InvalidDataException Bad(string path, string what, Exception? inner = null) => new($"{path}: {what}.", inner);
}
