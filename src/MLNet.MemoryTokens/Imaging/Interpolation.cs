namespace MLNet.MemoryTokens.Imaging;

/// <summary>Resampling filter for image resizing (PIL semantics).</summary>
public enum Interpolation { Nearest, Bilinear, Bicubic }
