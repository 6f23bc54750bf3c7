namespace MLNet.MemoryTokens.IO;

/// <summary>Resolves a timm model id (e.g. <c>vit_tiny_patch16_224.augreg_in21k_ft_in1k</c>) to a local safetensors file,
/// downloading it from the Hugging Face hub into a cache on first use.</summary>
public static class ModelHub
{
    /// <summary>The cache root: env MMT_CACHE_DIR, else ~/.cache/mlnet-memorytokens.</summary>
    public static string CacheDirectory =>
        Environment.GetEnvironmentVariable("MMT_CACHE_DIR") is { Length: > 0 } dir ? dir
        : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "mlnet-memorytokens");

    /// <summary>True when the string names an existing file rather than a model id.</summary>
    public static bool IsPath(string pathOrId) => File.Exists(pathOrId);

    /// <summary>Where the cached file for an id lives (whether or not it is there yet).</summary>
    public static string CachedPath(string id) => Path.Combine(CacheDirectory, "hub", Sanitize(id), "model.safetensors");

    /// <summary>The hub's base address: env MMT_HUB_ENDPOINT (a mirror), else https://huggingface.co.</summary>
    public static string Endpoint => (Environment.GetEnvironmentVariable("MMT_HUB_ENDPOINT") is { Length: > 0 } e ? e : "https://huggingface.co").TrimEnd('/');

    public static string DownloadUrl(string id)
    {
        var repo = id.Contains('/') ? id : "timm/" + id;
        return $"{Endpoint}/{repo}/resolve/main/model.safetensors";
    }

    /// <summary>A path as given, or the cached file for an id (downloaded first when missing).</summary>
    public static string Resolve(string pathOrId, TimeSpan? timeout = null)
    {
        if (IsPath(pathOrId)) return Path.GetFullPath(pathOrId);
        if (pathOrId.IndexOfAny(['\\']) >= 0 || pathOrId.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) || pathOrId.EndsWith(".npz", StringComparison.OrdinalIgnoreCase))
            throw new FileNotFoundException($"Checkpoint file '{pathOrId}' does not exist.", pathOrId);
        var cached = CachedPath(pathOrId);
        if (File.Exists(cached)) return cached;
        var url = DownloadUrl(pathOrId);
        try
        {
            using var http = new HttpClient { Timeout = timeout ?? TimeSpan.FromMinutes(10) };
            using var response = http.GetAsync(url, HttpCompletionOption.ResponseHeadersRead).GetAwaiter().GetResult();
            response.EnsureSuccessStatusCode();
            Directory.CreateDirectory(Path.GetDirectoryName(cached)!);
            using var body = response.Content.ReadAsStream();
            AtomicFile.Write(cached, s => body.CopyTo(s));
            return cached;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
        {
            throw new IOException(
                $"Model '{pathOrId}' is neither a file nor in the cache ({cached}), and downloading it from {url} failed: {e.Message} " +
                "Give the checkpoint as a path (--model path/to/model.safetensors), or put the file at the cache path above.", e);
        }
    }

    static string Sanitize(string id) => string.Concat(id.Select(c => char.IsLetterOrDigit(c) || c is '.' or '-' or '_' ? c : '_'));
}
