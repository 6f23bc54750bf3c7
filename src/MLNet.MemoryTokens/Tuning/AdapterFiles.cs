using MLNet.MemoryTokens.IO;

namespace MLNet.MemoryTokens.Tuning;

/// <summary>What an adapter folder on disk is: its two files, and how each proves we wrote it (the config's <c>format</c>
/// field, the weights' <c>format</c> metadata). A folder with anything else in it is never replaced by a save.</summary>
public static class AdapterFiles
{
    /// <summary>The format every adapter this library writes names itself with (its version after the slash).</summary>
    public const string FormatPrefix = "mlnet-memorytokens-adapter/";

    /// <summary>The adapter format this version writes.</summary>
    public const string CurrentFormat = FormatPrefix + "1";

    /// <summary>An adapter folder: <c>adapter_config.json</c> (first: it is written last, when the folder is complete) and
    /// <c>adapter_model.safetensors</c>, each checked for our format marker (a Hugging Face PEFT adapter has the same file names).</summary>
    public static FolderArtifact Folder { get; } = new(
        $"an adapter folder ({Adapter.ConfigFile} + {Adapter.WeightsFile}) written by MLNet.MemoryTokens",
        [
            OwnedFile.Exactly(Adapter.ConfigFile, p => OwnedContent.JsonFieldStartsWith(p, "format", FormatPrefix)),
            OwnedFile.Exactly(Adapter.WeightsFile, p => OwnedContent.SafeTensorsMetadataStartsWith(p, "format", FormatPrefix)),
            // the training curve `mmt train --plot` draws beside the adapter: ours by name in a folder the two files above prove ours
            new OwnedFile(new System.Text.RegularExpressions.Regex(@"^training_curve\.(png|svg)$"), Companion: true),
        ]);
}
