using System.Text.Json;
using System.Text.RegularExpressions;

namespace MLNet.MemoryTokens.IO;

/// <summary>We refused to write an output because it would replace or delete something we did not create, or because the
/// place cannot be written. Nothing was changed; the message names the path and what to do.</summary>
public sealed class OutputRefusedException(string path, string message, Exception? inner = null) : IOException(message, inner)
{
    public string OutputPath { get; } = path;
}

/// <summary>A file one of our artifacts may hold: its name, and a check of its content that says we wrote it (null: the name
/// is specific enough, e.g. an epoch-stamped checkpoint file). A <paramref name="Companion"/> (a plot drawn beside an adapter)
/// counts as ours by its name only in a folder where another file proved, by its content, that we wrote the folder.</summary>
public sealed record OwnedFile(Regex Name, Func<string, bool>? WrittenByUs = null, bool Companion = false)
{
    /// <summary>An exact file name.</summary>
    public static OwnedFile Exactly(string name, Func<string, bool>? writtenByUs = null, bool companion = false) =>
        new(new Regex("^" + Regex.Escape(name) + "$"), writtenByUs, companion);
}

/// <summary>What a folder we write looks like — the files (and subfolders) it may hold and how each proves it is ours — so that
/// an existing folder is replaced, or files in it deleted, only when everything in it is ours.</summary>
/// <param name="Description">For messages: "an adapter folder (adapter_config.json + adapter_model.safetensors)".</param>
public sealed record FolderArtifact(string Description, IReadOnlyList<OwnedFile> Files, IReadOnlyList<(Regex Name, FolderArtifact Kind)>? Folders = null)
{
    /// <summary>Null when <paramref name="folder"/> (which exists) is empty or holds only what this kind writes, each entry
    /// checked; otherwise why not, naming the first entry that is not ours.</summary>
    public string? Foreign(string folder, int depth = 0)
    {
        if (depth > 8) return $"'{folder}' is nested too deeply";
        bool proven = false;
        string? companion = null;
        foreach (var entry in Directory.EnumerateFileSystemEntries(folder, "*", new EnumerationOptions { AttributesToSkip = 0, IgnoreInaccessible = false }))
        {
            string name = Path.GetFileName(entry);
            var info = new FileInfo(entry);
            if (info.LinkTarget is not null) return $"it holds '{name}', a symbolic link, which we never write";
            if (Directory.Exists(entry))
            {
                var sub = Folders?.FirstOrDefault(f => f.Name.IsMatch(name));
                if (sub is null) return $"it holds the folder '{name}', which is not part of {Description}";
                if (sub.Value.Kind.Foreign(entry, depth + 1) is string why) return $"in its folder '{name}', {why}";
                continue;
            }
            if (IsLeftover(name)) continue;
            var owned = Files.FirstOrDefault(f => f.Name.IsMatch(name));
            if (owned is null) return $"it holds '{name}', which is not part of {Description}";
            if (owned.Companion) { companion ??= name; continue; }
            bool ours;
            try { ours = owned.WrittenByUs?.Invoke(entry) ?? true; }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException or CheckpointException or InvalidDataException) { ours = false; }
            if (!ours) return $"its '{name}' was not written by MLNet.MemoryTokens";
            proven |= owned.WrittenByUs is not null;
        }
        return companion is not null && !proven ? $"it holds '{companion}' but nothing that shows MLNet.MemoryTokens wrote the folder" : null;
    }

    /// <summary>A temp file <see cref="AtomicFile"/> left behind when a write was interrupted (<c>.name.&lt;32 hex&gt;.tmp</c>) of one of our files.</summary>
    bool IsLeftover(string name)
    {
        var m = LeftoverPattern.Match(name);
        return m.Success && Files.Any(f => f.Name.IsMatch(m.Groups[1].Value));
    }

    static readonly Regex LeftoverPattern = new(@"^\.(.+)\.[0-9a-f]{32}\.tmp$");

    /// <summary>Deletes what this kind recognises in <paramref name="folder"/> (files it may hold, its subfolders of their
    /// kinds), then the folder if that left it empty. Anything else stays; returns false when something did.</summary>
    internal bool DeleteOurs(string folder)
    {
        bool all = true;
        foreach (var entry in Directory.EnumerateFileSystemEntries(folder).ToArray())
        {
            string name = Path.GetFileName(entry);
            if (new FileInfo(entry).LinkTarget is null && Directory.Exists(entry))
            {
                var sub = Folders?.FirstOrDefault(f => f.Name.IsMatch(name));
                if (sub is null || !sub.Value.Kind.DeleteOurs(entry)) all = false;
            }
            else if (IsLeftover(name) || Files.Any(f => f.Name.IsMatch(name))) File.Delete(entry);
            else all = false;
        }
        if (all) Directory.Delete(folder);
        return all;
    }
}

/// <summary>A single file we write, and how its content proves we wrote it.</summary>
public sealed record FileArtifact(string Description, Func<string, bool> WrittenByUs);

/// <summary>Recognisers of our file formats by content, shared by the artifact kinds.</summary>
public static class OwnedContent
{
    /// <summary>A JSON file whose top-level <paramref name="field"/> is a string starting with <paramref name="prefix"/>
    /// (read only if it is a regular file within the text limit).</summary>
    public static bool JsonFieldStartsWith(string path, string field, string prefix)
    {
        using var doc = JsonDocument.Parse(InputFile.ReadAllBytes(path, Limits.MaxTextFileBytes, "JSON file"));
        return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty(field, out var v)
               && v.ValueKind == JsonValueKind.String && v.GetString()!.StartsWith(prefix, StringComparison.Ordinal);
    }

    /// <summary>A JSON object holding every one of <paramref name="fields"/> (how files written before a format field existed are recognised).</summary>
    public static bool JsonHasFields(string path, params string[] fields)
    {
        using var doc = JsonDocument.Parse(InputFile.ReadAllBytes(path, Limits.MaxTextFileBytes, "JSON file"));
        return doc.RootElement.ValueKind == JsonValueKind.Object && fields.All(f => doc.RootElement.TryGetProperty(f, out _));
    }

    /// <summary>A safetensors file whose header metadata <paramref name="key"/> starts with <paramref name="prefix"/>.</summary>
    public static bool SafeTensorsMetadataStartsWith(string path, string key, string prefix) =>
        SafeTensorsFile.ReadMetadata(path).TryGetValue(key, out var v) && v.StartsWith(prefix, StringComparison.Ordinal);

    /// <summary>A file starting with <paramref name="magic"/>.</summary>
    public static bool StartsWith(string path, ReadOnlySpan<byte> magic)
    {
        InputFile.Check(path, long.MaxValue, "file");
        Span<byte> head = stackalloc byte[magic.Length];
        using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1);
        return f.ReadAtLeast(head, head.Length, throwOnEndOfStream: false) == head.Length && head.SequenceEqual(magic);
    }
}
