using System.Runtime.ExceptionServices;
using MLNet.MemoryTokens.Kernels;

namespace MLNet.MemoryTokens.ML.Hosting;

/// <summary>The engine's parallel loop, with a failing item's own exception rethrown (not wrapped in an AggregateException),
/// so a bad image or pixel value reaches the user with its message.</summary>
internal static class ParallelRows
{
    public static void For(int count, Action<int> body) => Unwrap(() => { Parallelism.For(0, count, body); return 0; });

    /// <summary>Runs <paramref name="work"/> (which may use the engine's parallel loops) and rethrows the first inner
    /// exception of an AggregateException as itself: an unreadable image then surfaces as the ImageDecodeException naming it.</summary>
    public static T Unwrap<T>(Func<T> work)
    {
        try { return work(); }
        catch (AggregateException e) when (e.InnerExceptions.Count >= 1)
        {
            ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
            throw;   // not reached
        }
    }
}
