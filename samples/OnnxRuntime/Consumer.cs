using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using SkiaSharp;

namespace OnnxRuntimeSample;

/// <summary>The README's consumer: an exported task in ONNX Runtime, with nothing from MLNet.MemoryTokens — the input size,
/// mean/std and class labels come from the model's metadata.</summary>
public static class Consumer
{
    public static string Predict(string modelPath, string imagePath, string output)
    {
        using var session = new InferenceSession(modelPath);
        var meta = session.ModelMetadata.CustomMetadataMap;
        var pre = JsonDocument.Parse(meta["mmt.preprocess"]).RootElement;
        int s = pre.GetProperty("input_size").GetInt32();
        float[] mean = pre.GetProperty("mean").Deserialize<float[]>()!, std = pre.GetProperty("std").Deserialize<float[]>()!;
        using var src = SKImage.FromEncodedData(imagePath);   // shorter side to s / crop_fraction, then the centre s × s
        float k = s / pre.GetProperty("crop_fraction").GetSingle() / Math.Min(src.Width, src.Height);
        using var image = new SKBitmap(s, s);
        using (var canvas = new SKCanvas(image)) canvas.DrawImage(src, SKRect.Create((s - src.Width * k) / 2, (s - src.Height * k) / 2, src.Width * k, src.Height * k), new SKSamplingOptions(SKCubicResampler.CatmullRom));
        var x = new DenseTensor<float>([1, 3, s, s]);
        for (int y = 0; y < s; y++) for (int i = 0; i < s; i++) { var p = image.GetPixel(i, y); x[0, 0, y, i] = (p.Red / 255f - mean[0]) / std[0]; x[0, 1, y, i] = (p.Green / 255f - mean[1]) / std[1]; x[0, 2, y, i] = (p.Blue / 255f - mean[2]) / std[2]; }
        using var results = session.Run([NamedOnnxValue.CreateFromTensor("images", x)], [output]);
        var logits = results[0].AsEnumerable<float>().ToArray();
        return JsonSerializer.Deserialize<string[]>(meta[$"mmt.labels.{output}"])![Array.IndexOf(logits, logits.Max())];
    }
}
