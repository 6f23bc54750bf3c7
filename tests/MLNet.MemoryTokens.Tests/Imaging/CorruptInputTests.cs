using System.Buffers.Binary;
using System.Diagnostics;
using MLNet.MemoryTokens.Imaging;
using Xunit;
using Xunit.Abstractions;

namespace MLNet.MemoryTokens.Tests.Imaging;

/// <summary>
/// Damaged and hostile input: every case must either decode or throw <see cref="ImageDecodeException"/> naming the source,
/// quickly. Cases go through <c>ImageDecoder.DecodeCore</c>, i.e. without the dispatcher's last-resort exception net, so
/// an IndexOutOfRange or NullReference inside a decoder fails the test instead of being papered over.
/// </summary>
public class CorruptInputTests(ITestOutputHelper output)
{
    // Tight limits keep mutated headers (which may declare e.g. 16000 x 6000) from turning into slow, huge decodes.
    static readonly ImageDecoderLimits Limits = new() { MaxWidth = 4096, MaxHeight = 4096, MaxPixels = 1 << 22 };
    static readonly TimeSpan PerCaseBudget = TimeSpan.FromSeconds(2);

    public static TheoryData<string> Files() =>
    [
        "jpeg_420.jpg", "jpeg_prog_sa.jpg", "jpeg_restart3b.jpg", "jpeg_prog_restart.jpg", "jpeg_mixed.jpg", "jpeg_cmyk.jpg",
        "jpeg_exif_6.jpg", "png_adam7_rgb16.png", "png_filters_rgb8.png", "png_pal4.png", "png_adam7_gray2.png",
        "bmp_4.bmp", "bmp_32_v5_bitfields.bmp", "bmp_16_565.bmp", "bmp_24_core.bmp", "pnm_p6.ppm", "pnm_p5_12bit.pgm",
    ];

    [Theory]
    [MemberData(nameof(Files))]
    public void TruncationAtAnyOffset(string file)
    {
        var data = File.ReadAllBytes(ImageAssert.Image(file));
        var cases = Enumerable.Range(0, data.Length).Select(n => ($"first {n} bytes", data[..n]));
        var (decoded, rejected) = RunAll(file, cases);
        output.WriteLine($"{file}: {data.Length} truncations, {decoded} decoded, {rejected} rejected");
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void RandomByteMutations(string file)
    {
        var data = File.ReadAllBytes(ImageAssert.Image(file));
        var rng = new Random(20240611 + file.Length);
        var cases = new List<(string, byte[])>();
        for (int i = 0; i < 300; i++)
        {
            var copy = (byte[])data.Clone();
            int n = 1 + rng.Next(4);
            var what = new List<string>();
            for (int k = 0; k < n; k++)
            {
                // Headers are where most logic lives, so half the mutations hit the first 256 bytes.
                int at = rng.Next(2) == 0 ? rng.Next(Math.Min(256, copy.Length)) : rng.Next(copy.Length);
                copy[at] = (byte)rng.Next(256);
                what.Add($"[{at}]={copy[at]}");
            }
            // PNG's CRCs would reject almost every mutation up front; re-sign the chunks so the decoder proper is exercised.
            if (file.EndsWith(".png")) FixPngCrcs(copy);
            cases.Add((string.Join(" ", what), copy));
        }
        var (decoded, rejected) = RunAll(file, cases);
        output.WriteLine($"{file}: {cases.Count} mutations, {decoded} decoded, {rejected} rejected");
    }

    [Fact]
    public void EmptyInput()
    {
        var e = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode([], "empty.jpg"));
        Assert.Equal("empty.jpg: the file is empty", e.Message);
        Assert.Equal("empty.jpg", e.Source);
        var path = Path.Combine(Path.GetTempPath(), $"mmt-empty-{Guid.NewGuid():N}.png");
        File.WriteAllBytes(path, []);
        try
        {
            e = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Load(path));
            Assert.StartsWith(path + ":", e.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void MissingFileNamesThePath()
    {
        var e = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Load("/nonexistent/dir/photo.jpg"));
        Assert.Equal("/nonexistent/dir/photo.jpg", e.Source);
    }

    [Theory]
    [InlineData("GIF89a\x01\0\x01\0")]
    [InlineData("hello, world")]
    [InlineData("\0\0\0\0\0\0\0\0")]
    public void WrongMagic(string text)
    {
        var data = text.Select(c => (byte)c).ToArray();
        var e = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(data, "odd.bin"));
        Assert.StartsWith("odd.bin: unrecognised image format", e.Message);
        Assert.True(e.IsNotSupported);
    }

    [Fact]
    public void StreamSourceIsNamed()
    {
        using var stream = new MemoryStream([0xFF, 0xD8, 0xFF, 0xD9]);
        var e = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(stream));
        Assert.StartsWith("<stream>: JPEG:", e.Message);
    }

    [Fact]
    public void HugeDeclaredDimensionsAreRejectedWithoutAllocating()
    {
        var jpeg = File.ReadAllBytes(ImageAssert.Image("jpeg_444.jpg"));
        int sof = jpeg.AsSpan().IndexOf([(byte)0xFF, (byte)0xC0]);
        BinaryPrimitives.WriteUInt16BigEndian(jpeg.AsSpan(sof + 5), 65535);
        BinaryPrimitives.WriteUInt16BigEndian(jpeg.AsSpan(sof + 7), 65535);

        var bmp = File.ReadAllBytes(ImageAssert.Image("bmp_24_pil.bmp"));
        BinaryPrimitives.WriteInt32LittleEndian(bmp.AsSpan(18), int.MaxValue);
        BinaryPrimitives.WriteInt32LittleEndian(bmp.AsSpan(22), int.MinValue);

        var pnm = "P6\n999999999 999999999\n255\n\0\0\0"u8.ToArray();
        var png = PngBuilder.Build(int.MaxValue, 3, 8, 2, new byte[10]);

        foreach (var (name, data) in new[] { ("huge.jpg", jpeg), ("huge.bmp", bmp), ("huge.ppm", pnm), ("huge.png", png) })
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            var e = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(data, name));
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.StartsWith(name + ":", e.Message);
            Assert.Contains("exceeds the decoder limits", e.Message);
            Assert.True(allocated < 1 << 20, $"{name}: allocated {allocated} bytes before rejecting");
        }
    }

    [Fact]
    public void LimitsAreConfigurable()
    {
        var small = new ImageDecoderLimits { MaxPixels = 100 };
        var e = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Load(ImageAssert.Image("png_RGB.png"), small));
        Assert.Contains("23x19 exceeds the decoder limits", e.Message);
    }

    [Fact]
    public void HuffmanCodesThatNeverMatchStillTerminate()
    {
        // Tables whose only code is sixteen 0 bits, fed nothing but 1 bits: no symbol ever decodes. libjpeg substitutes a
        // zero symbol per attempt; so do we, and the decode ends after the fixed number of blocks.
        var jpeg = JpegBuilder.Gray(width: 256, height: 256,
            dcCounts: OneCodeOfLength(16), acCounts: OneCodeOfLength(16),
            entropy: Enumerable.Repeat(new byte[] { 0xFF, 0x00 }, 20_000).SelectMany(b => b).ToArray());
        var sw = Stopwatch.StartNew();
        var image = ImageDecoder.Decode(jpeg, "nomatch.jpg");
        Assert.Equal((256, 256), (image.Width, image.Height));
        Assert.True(sw.Elapsed < PerCaseBudget, $"took {sw.Elapsed}");
    }

    [Fact]
    public void OverfullHuffmanTableIsRejected()
    {
        var counts = new byte[16];
        counts[0] = 3; // three 1-bit codes cannot exist
        var jpeg = JpegBuilder.Gray(16, 16, dcCounts: counts, acCounts: OneCodeOfLength(1), entropy: new byte[8]);
        var e = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(jpeg, "overfull.jpg"));
        Assert.Contains("overfull.jpg: JPEG: DHT table DC0 has invalid code lengths", e.Message);
    }

    [Fact]
    public void EndlessScansAreCapped()
    {
        var jpeg = JpegBuilder.Gray(16, 16, OneCodeOfLength(1), OneCodeOfLength(1), new byte[2], progressive: true, scans: 5000);
        var e = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(jpeg, "scans.jpg"));
        Assert.Contains("more than 1000 scans", e.Message);
    }

    static byte[] OneCodeOfLength(int length)
    {
        var counts = new byte[16];
        counts[length - 1] = 1;
        return counts;
    }

    /// <summary>Runs every case through the decoders with a watchdog; returns how many decoded and how many were rejected.</summary>
    static (int Decoded, int Rejected) RunAll(string source, IEnumerable<(string What, byte[] Data)> cases)
    {
        var failures = new List<string>();
        int decoded = 0, rejected = 0;
        string current = "(none)";
        var worker = Task.Run(() =>
        {
            foreach (var (what, data) in cases)
            {
                current = what;
                var sw = Stopwatch.StartNew();
                try
                {
                    var image = ImageDecoder.DecodeCore(data, source, Limits, applyExif: true);
                    if (image.Pixels.Length != image.Width * image.Height * 3) failures.Add($"{what}: inconsistent image");
                    decoded++;
                }
                catch (ImageDecodeException e)
                {
                    rejected++;
                    if (!e.Message.StartsWith(source + ": ")) failures.Add($"{what}: message does not name the source: {e.Message}");
                }
                catch (Exception e)
                {
                    failures.Add($"{what}: {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
                }
                if (sw.Elapsed > PerCaseBudget) failures.Add($"{what}: took {sw.Elapsed.TotalSeconds:F1} s");
                if (failures.Count > 10) break;
            }
        });
        if (!worker.Wait(TimeSpan.FromMinutes(2))) Assert.Fail($"{source}: decoder hung on case {current}");
        Assert.True(failures.Count == 0, $"{source}: {failures.Count} bad cases:\n" + string.Join("\n", failures));
        return (decoded, rejected);
    }

    static void FixPngCrcs(byte[] png)
    {
        int pos = 8;
        while (pos + 12 <= png.Length)
        {
            long length = BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(pos));
            if (pos + 12 + length > png.Length) break;
            BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan(pos + 8 + (int)length), Crc32.Compute(png.AsSpan(pos + 4, 4 + (int)length)));
            pos += 12 + (int)length;
        }
    }
}

/// <summary>Assembles small grey JPEGs from explicit tables for the hostile-input tests.</summary>
internal static class JpegBuilder
{
    public static byte[] Gray(int width, int height, byte[] dcCounts, byte[] acCounts, byte[] entropy, bool progressive = false, int scans = 1)
    {
        var ms = new MemoryStream();
        void Segment(byte marker, byte[] body)
        {
            ms.Write([0xFF, marker, (byte)((body.Length + 2) >> 8), (byte)(body.Length + 2)]);
            ms.Write(body);
        }
        ms.Write([0xFF, 0xD8]);
        Segment(0xDB, [0x00, .. Enumerable.Repeat((byte)1, 64)]);
        Segment(progressive ? (byte)0xC2 : (byte)0xC0, [8, (byte)(height >> 8), (byte)height, (byte)(width >> 8), (byte)width, 1, 1, 0x11, 0]);
        byte[] Symbols(byte[] counts) => [.. Enumerable.Range(0, counts.Sum(c => c)).Select(i => (byte)i)];
        Segment(0xC4, [0x00, .. dcCounts, .. Symbols(dcCounts)]);
        Segment(0xC4, [0x10, .. acCounts, .. Symbols(acCounts)]);
        for (int s = 0; s < scans; s++)
        {
            Segment(0xDA, progressive ? [1, 1, 0x00, 0, 0, 0] : [1, 1, 0x00, 0, 63, 0]);
            ms.Write(entropy);
        }
        ms.Write([0xFF, 0xD9]);
        return ms.ToArray();
    }
}
