using MLNet.MemoryTokens.Kernels;
using Xunit;

namespace MLNet.MemoryTokens.Tests.Kernels;

public class LinearTests
{
    [Theory]
    [InlineData(1, 5)]
    [InlineData(255, 17)]
    [InlineData(1000, 33)]    // several row blocks, summed in parallel
    public void ColumnSumsAddEveryRowToTheSums(int rows, int cols)
    {
        var m = Numerics.Random(rows * cols, 7);
        var sums = Numerics.Random(cols, 8);
        var expected = new double[cols];
        for (int c = 0; c < cols; c++)
        {
            expected[c] = sums[c];
            for (int r = 0; r < rows; r++) expected[c] += m[r * cols + c];
        }
        Linear.ColumnSums(sums, m, rows, cols);
        Numerics.AssertClose(expected.Select(v => (float)v).ToArray(), sums, 1e-5 * Math.Sqrt(rows), 1e-5, "column sums");
        var again = Numerics.Random(cols, 8);
        Linear.ColumnSums(again, m, rows, cols);
        Assert.Equal(sums, again);   // deterministic: fixed blocks, added in block order
        Assert.Throws<ArgumentException>(() => Linear.ColumnSums(new float[cols], m, rows + 1, cols));   // m too small
    }
}
