using System.Buffers.Binary;

namespace MLNet.MemoryTokens.Tests.Data;

/// <summary>Builds IDX files in memory, so the error tests can damage them byte by byte.</summary>
public static class IdxBytes
{
    public static byte[] Images(int count, int height, int width, Func<int, int, int, int> pixel)
    {
        var bytes = new byte[16 + count * height * width];
        Header(bytes, 3, count, height, width);
        int at = 16;
        for (int i = 0; i < count; i++)
            for (int y = 0; y < height; y++)
                for (int x = 0; x < width; x++)
                    bytes[at++] = (byte)pixel(i, y, x);
        return bytes;
    }

    public static byte[] Labels(params byte[] labels)
    {
        var bytes = new byte[8 + labels.Length];
        Header(bytes, 1, labels.Length);
        labels.CopyTo(bytes, 8);
        return bytes;
    }

    static void Header(byte[] bytes, int rank, params int[] shape)
    {
        bytes[2] = 0x08;
        bytes[3] = (byte)rank;
        for (int d = 0; d < shape.Length; d++) BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4 + 4 * d), shape[d]);
    }
}
