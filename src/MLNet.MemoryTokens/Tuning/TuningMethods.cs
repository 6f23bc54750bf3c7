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
    static readonly ConcurrentDictionary<(TuningMethod, string), Func<ComputeOptions, IMethodCompute>> Backends = new();

    /// <summary>Every method, in <see cref="TuningMethod"/> order.</summary>
    public static IReadOnlyList<TuningMethodDefinition> All => Definitions.Value;

    public static TuningMethodDefinition Get(TuningMethod method) =>
        Definitions.Value.FirstOrDefault(d => d.Method == method) ?? throw new ArgumentOutOfRangeException(nameof(method), method, "No such tuning method.");

    /// <summary>The method of a command-line name (e.g. "head-class"), or null.</summary>
    public static TuningMethodDefinition? Find(string name) => Definitions.Value.FirstOrDefault(d => d.Name == name);

    /// <summary>How <paramref name="backend"/> computes <paramref name="method"/> (on its default device).</summary>
    public static IMethodCompute Compute(TuningMethod method, string backend = ManagedBackend) => Compute(method, new ComputeOptions { Backend = backend });

    /// <summary>How <paramref name="compute"/>'s backend computes <paramref name="method"/> on its device and precision. The
    /// managed engine refuses a GPU or bf16; a backend that never registered, or registered no compute for this method,
    /// is named with the backends that did.</summary>
    public static IMethodCompute Compute(TuningMethod method, ComputeOptions compute)
    {
        ArgumentNullException.ThrowIfNull(compute);
        compute.Validate();
        if (compute.IsManaged) return Get(method).Managed;
        if (Backends.TryGetValue((method, compute.Backend), out var factory)) return factory(compute);
        var backends = Backends.Keys.Select(k => k.Item2).Distinct().Order().ToArray();
        var forMethod = Backends.Keys.Where(k => k.Item1 == method).Select(k => k.Item2).Order().Prepend(ManagedBackend);
        throw new InvalidOperationException(backends.Contains(compute.Backend)
            ? $"Backend '{compute.Backend}' has registered no compute for {Get(method).Name}; the backends that did: {string.Join(", ", forMethod)}."
            : $"No compute backend named '{compute.Backend}' is registered (registered: {string.Join(", ", backends.Prepend(ManagedBackend))}). " +
              "A backend package registers itself once at start-up, e.g. MLNet.MemoryTokens.TorchSharp: TorchSharpBackend.Register().");
    }

    /// <summary>The backends that registered a compute for at least one method, the managed engine first.</summary>
    public static IReadOnlyList<string> RegisteredBackends => Backends.Keys.Select(k => k.Item2).Distinct().Order().Prepend(ManagedBackend).ToArray();

    /// <summary>Plugs a backend's compute of one method into the table (a backend package does this once per method).</summary>
    public static void RegisterCompute(TuningMethod method, string backend, IMethodCompute compute)
    {
        ArgumentNullException.ThrowIfNull(compute);
        RegisterCompute(method, backend, _ => compute);
    }

    /// <summary>Plugs a backend's compute of one method into the table as a factory of the device and precision asked for
    /// (<see cref="ComputeOptions"/>): a GPU backend binds its compute to a device.</summary>
    public static void RegisterCompute(TuningMethod method, string backend, Func<ComputeOptions, IMethodCompute> compute)
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
