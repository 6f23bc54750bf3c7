using MLNet.MemoryTokens.Data;
using MLNet.MemoryTokens.Training;
using MLNet.MemoryTokens.Tuning;
using Xunit;
using static MLNet.MemoryTokens.Tests.Safety.SafetyFixtures;

namespace MLNet.MemoryTokens.Tests.Safety;

/// <summary>Training that goes wrong stops with a clear message and keeps what the user had; a data set that cannot make a
/// classifier is refused before training.</summary>
public class TrainingSafetyTests
{

    [Fact]
    public void TheGuardStopsASustainedRiseNotANoisyHealthyRun()
    {
        var healthy = new DivergenceGuard(classes: 3, factor: 3);
        var rng = new Random(1);
        for (int i = 0; i < 500; i++) healthy.Observe(Math.Max(0.05, 1.1 * Math.Exp(-i / 100.0) + rng.NextDouble() * 1.5), i + 1, 1, i + 1, 1e-3f);
        var guard = new DivergenceGuard(classes: 3, factor: 3);
        var ex = Assert.Throws<TrainingDivergedException>(() =>
        {
            for (int i = 0; i < 100; i++) guard.Observe(1.1 + 2.0 * i, i + 1, 1, i + 1, 1f);
        });
        // losses 1.1, 3.1, 5.1, …: smoothed 1.1, 1.30, 1.68, 2.22, 2.91, 3.73 — the first above 3 × ln 3 … 3 × 1.1 = 3.3 is step 6
        Assert.Contains("at step 6 (epoch 1, batch 6)", ex.Message);
    }

}
