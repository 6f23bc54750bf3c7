using System.Text.RegularExpressions;
using MLNet.MemoryTokens.IO;
using MLNet.MemoryTokens.Tuning;

namespace MLNet.MemoryTokens.ML;

/// <summary>What a multi-task folder written by <see cref="MultiTaskScoringTransformer.SaveAdapters"/> holds: its manifest
/// (with our format marker; folders written before the marker are recognised by the manifest's fields) and one adapter
/// folder per task. Saving replaces only such a folder, or an empty one.</summary>
internal static class MultiTaskFolder
{
    public const string ManifestFile = "multitask.json";
    public const string FormatPrefix = "mlnet-memorytokens-multitask/";
    public const string CurrentFormat = FormatPrefix + "1";

    public static FolderArtifact Kind { get; } = new(
        $"a multi-task folder ({ManifestFile} + task folders) written by MLNet.MemoryTokens",
        [OwnedFile.Exactly(ManifestFile, p => OwnedContent.JsonFieldStartsWith(p, "format", FormatPrefix) || OwnedContent.JsonHasFields(p, "image_column", "tasks", "mode"))],
        [(new Regex(@"^task\d+$"), AdapterFiles.Folder)]);
}
