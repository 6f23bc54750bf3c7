using Xunit;
using static TorchSharp.torch;

namespace MLNet.MemoryTokens.TorchSharp.Tests;

public class SmokeTests
{
    [Fact]
    public void TorchLoads()
    {
        var a = ones(2, 2);
        Assert.Equal(4f, a.sum().item<float>());
    }
}
