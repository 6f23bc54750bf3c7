using System.Collections.Concurrent;

namespace MLNet.MemoryTokens.Tuning;

/// <summary>The method table: every <see cref="TuningMethodDefinition"/> (each method's folder defines one; they are found in
/// this assembly when the table is first read), and per method the compute of each backend — the managed engine's, and any
/// another backend registers. The trainer, adapters, the command line and the ML.NET layer ask here instead of switching on
/// the method.</summary>
public static class TuningMethods
{
    /// <summary>The managed engine (this library's own kernels).</summary>
    public const string ManagedBackend = "managed";

    static readonly Lazy<TuningMethodDefinition[]> Definitions = new(Discover);
    static readonly ConcurrentDictionary<(TuningMethod, string), IMethodCompute> Backends = new();

    /// <summary>Every method, in <see cref="TuningMethod"/> order.</summary>
    public static IReadOnlyList<TuningMethodDefinition> All => Definitions.Value;

    public static TuningMethodDefinition Get(TuningMethod method) =>
        Definitions.Value.FirstOrDefault(d => d.Method == method) ?? throw new ArgumentOutOfRangeException(nameof(method), method, "No such tuning method.");

    /// <summary>The method of a command-line name (e.g. "head-class"), or null.</summary>
    public static TuningMethodDefinition? Find(string name) => Definitions.Value.FirstOrDefault(d => d.Name == name);

    /// <summary>How <paramref name="backend"/> computes <paramref name="method"/>.</summary>
    public static IMethodCompute Compute(TuningMethod method, string backend = ManagedBackend)
    {
        if (backend == ManagedBackend) return Get(method).Managed;
        return Backends.TryGetValue((method, backend), out var compute) ? compute
            : throw new InvalidOperationException($"Backend '{backend}' has registered no compute for {Get(method).Name}; the backends that did: {string.Join(", ", Backends.Keys.Where(k => k.Item1 == method).Select(k => k.Item2).Prepend(ManagedBackend))}.");
    }

    /// <summary>Plugs a backend's compute of one method into the table (a backend package does this once per method).</summary>
    public static void RegisterCompute(TuningMethod method, string backend, IMethodCompute compute)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(backend);
        ArgumentNullException.ThrowIfNull(compute);
        if (backend == ManagedBackend) throw new ArgumentException("The managed engine's compute comes with each method.", nameof(backend));
        Get(method);
        Backends[(method, backend)] = compute;
    }

    static TuningMethodDefinition[] Discover()
    {
        var found = typeof(TuningMethodDefinition).Assembly.GetTypes()
            .Where(t => t.IsSubclassOf(typeof(TuningMethodDefinition)) && !t.IsAbstract)
            .Select(t => (TuningMethodDefinition)Activator.CreateInstance(t, nonPublic: true)!)
            .OrderBy(d => d.Method).ToArray();
        var missing = Enum.GetValues<TuningMethod>().Except(found.Select(d => d.Method)).ToArray();
        var twice = found.GroupBy(d => d.Method).Where(g => g.Count() > 1).Select(g => g.Key).Concat(found.GroupBy(d => d.Name).Where(g => g.Count() > 1).Select(g => g.First().Method)).ToArray();
        if (missing.Length > 0 || twice.Length > 0)
            throw new InvalidOperationException($"The method table is inconsistent: no definition for {string.Join(", ", missing)}; more than one for {string.Join(", ", twice)}.");
        return found;
    }
}
