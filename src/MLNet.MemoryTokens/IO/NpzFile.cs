using System.IO.Compression;

namespace MLNet.MemoryTokens.IO;

/// <summary>Reads a numpy <c>.npz</c> archive (<c>numpy.savez</c> or <c>savez_compressed</c>) into F32 tensors named by entry.</summary>
public static class NpzFile
{
    /// <summary>Deflate cannot expand data by more than about 1032:1.</summary>
    const long MaxDeflateRatio = 1100;

    /// <summary>Every <c>&lt;key&gt;.npy</c> entry of <paramref name="path"/>, as key → tensor in archive order.</summary>
    /// <exception cref="CheckpointException">The file is not a zip, or an entry is not a supported .npy array (the entry is named).</exception>
    public static Dictionary<string, Tensor> Read(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ElementConversion.EnsureLittleEndianHost();
        InputFile.Check(path, Limits.MaxCheckpointBytes, "checkpoint");
        ZipArchive? zip = null;
        IReadOnlyList<ZipArchiveEntry> entries;
        try
        {
            zip = ZipFile.OpenRead(path);
            entries = zip.Entries;  // reads the central directory, where damage to the archive itself shows up
        }
        catch (InvalidDataException ex)
        {
            zip?.Dispose();
            throw new CheckpointException(path, $"not a readable .npz (zip) archive: {ex.Message}", inner: ex);
        }

        using (zip)
        {
            var tensors = new Dictionary<string, Tensor>();
            long fileLength = new FileInfo(path).Length;
            foreach (var entry in entries)
            {
                string name = entry.FullName;
                if (name.EndsWith('/')) continue;  // a directory record, no data
                if (name.EndsWith(".pkl", StringComparison.Ordinal))
                    throw new CheckpointException(path,
                        $"zip entry '{name}' is a Python pickle: this looks like a PyTorch .pth/.bin checkpoint, which is not supported (save it as safetensors)", name);
                if (!name.EndsWith(".npy", StringComparison.Ordinal))
                    throw new CheckpointException(path, $"zip entry '{name}' is not a .npy array (an .npz holds only '<name>.npy' entries)", name);

                // Sizes come from the (possibly damaged) central directory: refuse impossible ones before allocating.
                if (entry.CompressedLength > fileLength || entry.Length > entry.CompressedLength * MaxDeflateRatio + 1024)
                    throw new CheckpointException(path,
                        $"zip entry '{name}' declares {entry.Length} bytes from {entry.CompressedLength} compressed, impossible in a {fileLength}-byte file", name);

                string key = name[..^4];
                try
                {
                    using var stream = entry.Open();
                    if (!tensors.TryAdd(key, NpyArray.Read(stream, entry.Length, path, name)))
                        throw new CheckpointException(path, $"the archive holds '{name}' twice", name);
                }
                catch (InvalidDataException ex)  // corrupt deflate data or zip record
                {
                    throw new CheckpointException(path, $"zip entry '{name}' cannot be decompressed: {ex.Message}", name, inner: ex);
                }
            }
            return tensors;
        }
    }
}
