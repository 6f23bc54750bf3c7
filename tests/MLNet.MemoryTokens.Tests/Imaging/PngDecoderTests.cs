using MLNet.MemoryTokens.Imaging;
using Xunit;

namespace MLNet.MemoryTokens.Tests.Imaging;

public class PngDecoderTests
{
    public static TheoryData<string> Fixtures() =>
    [
        // Written by PIL.
        "png_L", "png_LA", "png_RGB", "png_RGBA", "png_P", "png_P4", "png_1bit", "png_I16",
        // Written by the fixture script's own encoder: other depths, every filter type, split IDATs, Adam7.
        "png_rgb16", "png_rgba16", "png_la16", "png_gray1", "png_gray2", "png_gray4", "png_pal2", "png_pal4",
        "png_filters_rgb8", "png_adam7_rgb8", "png_adam7_rgba8", "png_adam7_la8", "png_adam7_rgb16", "png_adam7_gray1",
        "png_adam7_gray2", "png_adam7_pal4", "png_adam7_tiny", "png_adam7_1x1",
    ];

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void DecodesExactly(string name)
    {
        var expected = ImageAssert.ReadExpectedPpm(ImageAssert.Image(name + ".expected.ppm"));
        ImageAssert.Equal(expected, ImageDecoder.Load(ImageAssert.Image(name + ".png")), name);
    }

    [Fact]
    public void SixteenBitKeepsTheHighByte()
    {
        // png_I16's samples are v = 257·g ^ noise(0..255): the high byte is g whatever the noise.
        var image = ImageDecoder.Load(ImageAssert.Image("png_I16.png"));
        var expected = ImageAssert.ReadExpectedPpm(ImageAssert.Image("png_L.expected.ppm"));
        ImageAssert.Equal(expected, image, "png_I16 vs its 8-bit source");
    }

    [Fact]
    public void CrcMismatchNamesTheChunk()
    {
        var data = File.ReadAllBytes(ImageAssert.Image("png_RGB.png"));
        int idat = IndexOf(data, "IDAT"u8);
        data[idat + 10] ^= 0x01; // a byte inside the IDAT payload
        var e = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(data, "bad.png"));
        Assert.Contains("bad.png", e.Message);
        Assert.Contains("CRC mismatch in chunk 'IDAT'", e.Message);
    }

    [Fact]
    public void DecompressionBombIsCutOffAtTheImageSize()
    {
        // An 8x8 grey image whose IDAT inflates to 64 MB: only the 72 bytes the image needs are ever produced.
        var zeros = new byte[64 << 20];
        var png = PngBuilder.Build(8, 8, bitDepth: 8, colorType: 0, raw: zeros);
        Assert.True(png.Length < 200_000, $"bomb is {png.Length} bytes");
        var before = GC.GetAllocatedBytesForCurrentThread();
        var image = ImageDecoder.Decode(png, "bomb.png");
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal((8, 8), (image.Width, image.Height));
        Assert.All(image.Pixels, p => Assert.Equal(0, p));
        Assert.True(allocated < 8 << 20, $"decoding the bomb allocated {allocated} bytes");
    }

    [Fact]
    public void HugeDeclaredSizeIsRejectedBeforeAllocating()
    {
        var png = PngBuilder.Build(1_000_000, 1_000_000, bitDepth: 8, colorType: 2, raw: new byte[16]);
        var e = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(png, "huge.png"));
        Assert.Contains("huge.png", e.Message);
        Assert.Contains("exceeds the decoder limits", e.Message);
    }

    [Fact]
    public void TruncatedImageDataIsAnError()
    {
        var png = PngBuilder.Build(16, 16, bitDepth: 8, colorType: 2, raw: new byte[100]); // needs 16 * 49 bytes
        var e = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(png, "short.png"));
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void InvalidFilterTypeIsAnError()
    {
        var raw = new byte[2 * (1 + 2)];
        raw[3] = 7; // second row's filter byte
        var png = PngBuilder.Build(2, 2, bitDepth: 8, colorType: 0, raw: raw);
        var e = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(png, "filter.png"));
        Assert.Contains("invalid filter type 7 in row 1", e.Message);
    }

    [Fact]
    public void UnknownCriticalChunkIsNotSupported()
    {
        var png = PngBuilder.Build(1, 1, bitDepth: 8, colorType: 0, raw: new byte[2], extraChunk: "ABCD"u8.ToArray());
        var e = Assert.Throws<ImageDecodeException>(() => ImageDecoder.Decode(png, "chunk.png"));
        Assert.True(e.IsNotSupported);
        Assert.Contains("'ABCD'", e.Message);
    }

    static int IndexOf(byte[] data, ReadOnlySpan<byte> what) => data.AsSpan().IndexOf(what);
}

/// <summary>Builds minimal PNGs in memory for the error-path tests.</summary>
internal static class PngBuilder
{
    public static byte[] Build(int width, int height, int bitDepth, int colorType, byte[] raw, byte[]? extraChunk = null)
    {
        using var ms = new MemoryStream();
        ms.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        var ihdr = new byte[13];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = (byte)bitDepth;
        ihdr[9] = (byte)colorType;
        Chunk(ms, "IHDR"u8, ihdr);
        if (extraChunk is not null) Chunk(ms, extraChunk, []);
        using (var z = new MemoryStream())
        {
            using (var zs = new System.IO.Compression.ZLibStream(z, System.IO.Compression.CompressionLevel.SmallestSize, leaveOpen: true))
                zs.Write(raw);
            Chunk(ms, "IDAT"u8, z.ToArray());
        }
        Chunk(ms, "IEND"u8, []);
        return ms.ToArray();
    }

    static void Chunk(Stream s, ReadOnlySpan<byte> type, byte[] body)
    {
        Span<byte> len = stackalloc byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(len, body.Length);
        s.Write(len);
        var typed = new byte[4 + body.Length];
        type.CopyTo(typed);
        body.CopyTo(typed, 4);
        s.Write(typed);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(len, Crc32.Compute(typed));
        s.Write(len);
    }
}
