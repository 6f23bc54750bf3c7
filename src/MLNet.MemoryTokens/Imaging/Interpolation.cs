namespace MLNet.MemoryTokens.Imaging;

/// <summary>Resampling filter for image resizing (PIL semantics: <c>Image.NEAREST</c>, <c>BILINEAR</c>, <c>BICUBIC</c>).</summary>
public enum Interpolation { Nearest, Bilinear, Bicubic }
