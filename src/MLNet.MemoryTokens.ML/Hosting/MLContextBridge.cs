using System.Reflection;
using Microsoft.ML.Runtime;

namespace MLNet.MemoryTokens.ML.Hosting;

/// <summary>Finds the <see cref="IHostEnvironment"/> (the MLContext's environment) behind an ML.NET catalog, and whether
/// that environment has been cancelled.</summary>
/// <remarks>
/// Writing to <c>MLContext.Log</c> is public API: <see cref="IHostEnvironment.Register"/> → <see cref="IChannelProvider.Start"/> →
/// <see cref="IChannel.Info(MessageSensitivity, string)"/>. What is not public is getting from a catalog
/// (<c>mlContext.MulticlassClassification.Trainers</c>) to that environment: ML.NET's own packages use the
/// <c>[BestFriend] internal IInternalCatalog.Environment</c>. This class reads that one property by reflection, and
/// <c>MLContext.CancelExecution()</c>'s flag (the public <c>IsCanceled</c> property of the internal environment class,
/// which AutoML sets when a trial runs out of time). When a later ML.NET renames either, components still work; they just
/// log nowhere and only stop on their own <c>CancellationToken</c>.
/// </remarks>
internal static class MLContextBridge
{
    const string InternalCatalogInterface = "Microsoft.ML.Data.IInternalCatalog";

    /// <summary>The environment behind a catalog, or null when it cannot be found.</summary>
    public static IHostEnvironment? EnvironmentOf(object? catalog)
    {
        if (catalog is null) return null;
        if (catalog is IHostEnvironment env) return env;
        try
        {
            var property = catalog.GetType().GetInterface(InternalCatalogInterface)?.GetProperty("Environment");
            return property?.GetValue(catalog) as IHostEnvironment;
        }
        catch (Exception e) when (e is TargetInvocationException or MemberAccessException or InvalidOperationException)
        {
            return null;
        }
    }

    /// <summary>A probe that turns true once the environment is cancelled (always false when that cannot be observed).</summary>
    public static Func<bool> CancellationProbe(IHostEnvironment? env)
    {
        var property = env?.GetType().GetProperty("IsCanceled", BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic);
        if (env is null || property is null || property.PropertyType != typeof(bool) || property.GetIndexParameters().Length != 0)
            return static () => false;
        return () => (bool)property.GetValue(env)!;
    }
}
