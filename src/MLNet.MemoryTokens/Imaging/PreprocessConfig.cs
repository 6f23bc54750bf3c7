namespace MLNet.MemoryTokens.Imaging;

/// <summary>How a pretrained checkpoint expects its images: timm's pretrained config as data.</summary>
public sealed record PreprocessConfig
{
    public int InputSize { get; init; } = 224;
    /// <summary>Resize the shorter side to floor(InputSize / CropFraction), then center-crop InputSize.</summary>
    public double CropFraction { get; init; } = 0.9;
    public Interpolation Interpolation { get; init; } = Interpolation.Bicubic;
    public float[] Mean { get; init; } = [0.5f, 0.5f, 0.5f];
    public float[] Std { get; init; } = [0.5f, 0.5f, 0.5f];

    public static PreprocessConfig ImageNetDefault => new() { CropFraction = 0.875, Mean = [0.485f, 0.456f, 0.406f], Std = [0.229f, 0.224f, 0.225f] };
}
