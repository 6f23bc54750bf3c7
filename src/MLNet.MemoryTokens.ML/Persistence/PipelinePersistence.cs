using System.IO.Compression;
using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.MemoryTokens.Model;

namespace MLNet.MemoryTokens.ML.Persistence;

/// <summary>Saves and loads a whole fitted pipeline that contains our transformers, as one zip file.</summary>
/// <remarks>
/// The chain is flattened and cut at our components. Each run of ML.NET transformers is saved by
/// <c>mlContext.Model.Save</c> itself (ML.NET's own format, with the schema it expects as input); each of our components
/// is saved as its adapter folder. A manifest lists the parts in order. Loading reads the ML.NET runs with
/// <c>mlContext.Model.Load</c>, rebuilds ours on the given (or recorded, cached) backbone, and chains everything again.
/// The first part is always an ML.NET run (possibly empty), so the pipeline's input schema is saved the ML.NET way.
/// Transformer scopes (TransformerScope) are not kept: the loaded chain applies every part everywhere.
/// </remarks>
internal static class PipelinePersistence
{
    const string ManifestEntry = "mlnet-memorytokens-model.json";
    const string Format = "mlnet-memorytokens-model/1";
    static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, WriteIndented = true };

    sealed record Manifest(string Format, Part[] Parts);
    /// <summary>Kind "mlnet" (a zip saved by ML.NET) or a component kind (a folder of files).</summary>
    sealed record Part(string Kind, string Entry);

    public static void Save(ModelOperationsCatalog catalog, ITransformer model, DataViewSchema inputSchema, string path)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(inputSchema);
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var segments = Segments(Flatten(model));
        MLNet.MemoryTokens.IO.OwnedOutput.EnsureWritable(path, ModelFile, "model");   // a file that is not one of our model zips is never replaced
        var scratch = Directory.CreateTempSubdirectory("mmt-save-").FullName;
        try
        {
            MLNet.MemoryTokens.IO.AtomicFile.Write(path, file =>
            {
                using var zip = new ZipArchive(file, ZipArchiveMode.Create, leaveOpen: true);
                var parts = new List<Part>();
                var schema = inputSchema;
                for (int i = 0; i < segments.Count; i++)
                {
                    var (component, native) = segments[i];
                    if (component is null)
                    {
                        var entry = $"part{i}.zip";
                        var chain = new TransformerChain<ITransformer>(native.ToArray());
                        using (var buffer = new MemoryStream())
                        {
                            catalog.Save(chain, schema, buffer);
                            using var stream = zip.CreateEntry(entry, CompressionLevel.NoCompression).Open();
                            buffer.Position = 0;
                            buffer.CopyTo(stream);
                        }
                        schema = ((ITransformer)chain).GetOutputSchema(schema);
                        parts.Add(new Part("mlnet", entry));
                    }
                    else
                    {
                        var folder = Path.Combine(scratch, $"part{i}");
                        component.SaveTo(folder);
                        foreach (var f in Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories))
                            zip.CreateEntryFromFile(f, $"part{i}/" + Path.GetRelativePath(folder, f).Replace('\\', '/'), CompressionLevel.Fastest);
                        schema = ((ITransformer)component).GetOutputSchema(schema);
                        parts.Add(new Part(component.ComponentKind, $"part{i}/"));
                    }
                }
                using var manifest = zip.CreateEntry(ManifestEntry).Open();
                JsonSerializer.Serialize(manifest, new Manifest(Format, parts.ToArray()), Json);
            });
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
        }
    }

    /// <summary>A zip written by <see cref="Save"/>: it holds our manifest entry.</summary>
    internal static readonly MLNet.MemoryTokens.IO.FileArtifact ModelFile = new("a model zip (SaveWithAdapters)", path =>
    {
        using var stream = MLNet.MemoryTokens.IO.InputFile.OpenRead(path, MLNet.MemoryTokens.Limits.MaxCheckpointBytes, "model file");
        using var zip = new ZipArchive(stream, ZipArchiveMode.Read);
        return zip.GetEntry(ManifestEntry) is not null;
    });

    /// <summary>Reads a zip written by <see cref="Save"/>: ML.NET's parts with <c>mlContext.Model.Load</c>, each of our components
    /// with the loader of its kind in <paramref name="loaders"/> (each saved itself: <see cref="ISavableComponent"/>).</summary>
    public static TransformerChain<ITransformer> Load(ModelOperationsCatalog catalog, string path, out DataViewSchema inputSchema, Backbone? backbone, string? backbonePath,
        IReadOnlyDictionary<string, ComponentLoader> loaders)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        using var zip = ZipFile.OpenRead(path);
        var manifestEntry = zip.GetEntry(ManifestEntry)
            ?? throw new InvalidDataException($"'{path}' was not written by SaveWithAdapters (no {ManifestEntry}); a plain ML.NET model loads with mlContext.Model.Load.");
        Manifest manifest;
        using (var s = manifestEntry.Open())
            manifest = JsonSerializer.Deserialize<Manifest>(s, Json) ?? throw new InvalidDataException($"{path}: empty manifest.");
        if (manifest.Format != Format) throw new InvalidDataException($"{path}: unknown format '{manifest.Format}' (expected {Format}).");
        var transformers = new List<ITransformer>();
        DataViewSchema? first = null;
        var scratch = Directory.CreateTempSubdirectory("mmt-load-").FullName;
        try
        {
            foreach (var part in manifest.Parts)
            {
                if (part.Kind == "mlnet")
                {
                    using var buffer = new MemoryStream();
                    using (var s = (zip.GetEntry(part.Entry) ?? throw new InvalidDataException($"{path}: missing {part.Entry}.")).Open()) s.CopyTo(buffer);
                    buffer.Position = 0;
                    var loaded = catalog.Load(buffer, out var schema);
                    first ??= schema;
                    transformers.AddRange(Flatten(loaded));
                    continue;
                }
                var folder = Path.Combine(scratch, part.Entry.TrimEnd('/'));
                foreach (var entry in zip.Entries.Where(e => e.FullName.StartsWith(part.Entry, StringComparison.Ordinal) && e.Name.Length > 0))
                {
                    var target = Path.GetFullPath(Path.Combine(folder, entry.FullName[part.Entry.Length..]));
                    if (!target.StartsWith(folder + Path.DirectorySeparatorChar, StringComparison.Ordinal)) throw new InvalidDataException($"{path}: entry '{entry.FullName}' points outside its part.");
                    Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                    entry.ExtractToFile(target);
                }
                transformers.Add(loaders.TryGetValue(part.Kind, out var load) ? load(folder, backbone, backbonePath)
                    : throw new InvalidDataException($"{path}: unknown component kind '{part.Kind}'."));
            }
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
        }
        inputSchema = first ?? throw new InvalidDataException($"{path}: no input schema.");
        return new TransformerChain<ITransformer>(transformers.ToArray());
    }

    /// <summary>A chain's transformers in order, nested chains opened up.</summary>
    static IEnumerable<ITransformer> Flatten(ITransformer transformer) =>
        transformer is IEnumerable<ITransformer> chain ? chain.SelectMany(Flatten) : [transformer];

    /// <summary>Runs of ML.NET transformers and our components, starting with an ML.NET run (possibly empty).</summary>
    static List<(ISavableComponent? Component, List<ITransformer> Native)> Segments(IEnumerable<ITransformer> transformers)
    {
        var segments = new List<(ISavableComponent?, List<ITransformer>)> { (null, []) };
        foreach (var t in transformers)
        {
            if (t is ISavableComponent ours) segments.Add((ours, []));
            else if (segments[^1].Item1 is null) segments[^1].Item2.Add(t);
            else segments.Add((null, [t]));
        }
        return segments;
    }
}
