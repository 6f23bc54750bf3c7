namespace MLNet.MemoryTokens.Cli.Commands;

/// <summary>Expands command-line image arguments (files and folders) into a sorted file list.</summary>
internal static class ImageFiles
{
    static readonly HashSet<string> Extensions = new(StringComparer.OrdinalIgnoreCase) { ".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".pnm" };

    public static List<string> Expand(IEnumerable<string> inputs)
    {
        var files = new List<string>();
        foreach (var input in inputs)
        {
            if (Directory.Exists(input))
                files.AddRange(MLNet.MemoryTokens.IO.FolderWalk.Files(input)   // each folder once: a symlink loop does not repeat images
                    .Where(f => Extensions.Contains(Path.GetExtension(f))).Order(StringComparer.Ordinal));
            else if (File.Exists(input)) files.Add(input);
            else throw new FileNotFoundException($"Image file or folder '{input}' does not exist.", input);
        }
        return files;
    }
}
