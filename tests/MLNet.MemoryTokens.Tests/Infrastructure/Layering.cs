using System.Reflection;
using System.Reflection.Emit;
using System.Text.RegularExpressions;

namespace MLNet.MemoryTokens.Tests;

/// <summary>Which source folder of a project uses which, read from the compiled assembly: every type is placed in the folder
/// of the file that declares it (nested and compiler-generated types — lambdas, iterators, closures — go with the type they
/// sit in), and a folder uses another when one of its types names one of the other's in a signature, a base type, a field or
/// any instruction of a method body. Compiled references catch what a reading of <c>using</c> lines would miss: same-namespace
/// and fully qualified names.</summary>
public static partial class Layering
{
    /// <summary>The folder → folders edges of <paramref name="assembly"/>, each with one example "Type → Type".</summary>
    public static Dictionary<(string From, string To), string> FolderEdges(Assembly assembly, string sourceRoot)
    {
        var folderOf = TypeFolders(sourceRoot);
        var edges = new Dictionary<(string, string), string>();
        foreach (var type in assembly.GetTypes())
        {
            var owner = Outermost(type);
            if (owner.FullName is not { } ownerName || !folderOf.TryGetValue(ownerName, out var from)) continue;
            foreach (var used in Uses(type))
            {
                var target = Outermost(used);
                if (target.Assembly != assembly || target.FullName is not { } targetName || !folderOf.TryGetValue(targetName, out var to) || to == from) continue;
                edges.TryAdd((from, to), $"{ownerName} → {targetName}");
            }
        }
        return edges;
    }

    /// <summary>Edges that run against <paramref name="layers"/> (lowest first; a folder may use its own layer and those below),
    /// folders in no layer, and cycles between folders: each as one line, none when the layering holds.</summary>
    public static List<string> Violations(Dictionary<(string From, string To), string> edges, string[][] layers)
    {
        var rank = new Dictionary<string, int>();
        for (int i = 0; i < layers.Length; i++) foreach (var f in layers[i]) rank[f] = i;
        var problems = new List<string>();
        foreach (var ((from, to), example) in edges.OrderBy(e => e.Key))
        {
            foreach (var f in new[] { from, to }.Where(f => !rank.ContainsKey(f))) problems.Add($"folder '{f}' is in no layer");
            if (rank.TryGetValue(from, out var a) && rank.TryGetValue(to, out var b) && b > a) problems.Add($"upward: {from} → {to} ({example})");
            if (Reaches(edges, to, from)) problems.Add($"cycle: {from} → {to} ({example}) and back");
        }
        return problems.Distinct().ToList();
    }

    static bool Reaches(Dictionary<(string From, string To), string> edges, string start, string goal)
    {
        var seen = new HashSet<string> { start };
        var queue = new Queue<string>([start]);
        while (queue.TryDequeue(out var at))
        {
            if (at == goal) return true;
            foreach (var ((from, to), _) in edges) if (from == at && seen.Add(to)) queue.Enqueue(to);
        }
        return false;
    }

    /// <summary>Top-level types by full name → the folder (relative to <paramref name="sourceRoot"/>, "/"-separated, "" for the
    /// root) of the file declaring them.</summary>
    static Dictionary<string, string> TypeFolders(string sourceRoot)
    {
        var map = new Dictionary<string, string>();
        foreach (var file in Directory.EnumerateFiles(sourceRoot, "*.cs", SearchOption.AllDirectories))
        {
            var rel = Path.GetRelativePath(sourceRoot, Path.GetDirectoryName(file)!).Replace('\\', '/');
            if (rel.Split('/').Any(p => p is "bin" or "obj")) continue;
            string folder = rel == "." ? "" : rel, text = File.ReadAllText(file);
            var ns = NamespaceLine().Match(text) is { Success: true } m ? m.Groups[1].Value + "." : "";
            foreach (Match t in TopLevelType().Matches(text))
            {
                int arity = t.Groups[2].Success ? t.Groups[2].Value.Count(c => c == ',') + 1 : 0;
                map[ns + t.Groups[1].Value + (arity > 0 ? $"`{arity}" : "")] = folder;
            }
        }
        return map;
    }

    [GeneratedRegex(@"^namespace\s+([\w.]+)\s*;", RegexOptions.Multiline)]
    private static partial Regex NamespaceLine();

    // a declaration at column 0 (file-scoped namespaces): modifiers, the kind, the name, type parameters
    [GeneratedRegex(@"^(?:(?:public|internal|sealed|static|abstract|readonly|partial|unsafe|file|ref)\s+)*(?:class|struct|interface|enum|record(?:\s+struct|\s+class)?)\s+(\w+)\s*(<[^>]*>)?", RegexOptions.Multiline)]
    private static partial Regex TopLevelType();

    static Type Outermost(Type t)
    {
        while (t.HasElementType) t = t.GetElementType()!;
        if (t.IsGenericType && !t.IsGenericTypeDefinition) t = t.GetGenericTypeDefinition();
        while (t.DeclaringType is { } outer) t = outer;
        return t;
    }

    const BindingFlags All = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;

    /// <summary>Every type <paramref name="type"/> names: base type, interfaces, fields, signatures, and method-body operands.</summary>
    static IEnumerable<Type> Uses(Type type)
    {
        var found = new List<Type>();
        void Add(Type? t)
        {
            if (t is null || t.IsGenericParameter) return;
            if (t.HasElementType) { Add(t.GetElementType()); return; }
            found.Add(t);
            if (t.IsGenericType) foreach (var a in t.GetGenericArguments()) Add(a);
        }
        Add(type.BaseType);
        foreach (var i in type.GetInterfaces()) Add(i);
        foreach (var f in type.GetFields(All)) Add(f.FieldType);
        foreach (var p in type.GetProperties(All)) Add(p.PropertyType);
        var methods = type.GetMethods(All).Cast<MethodBase>().Concat(type.GetConstructors(All));
        foreach (var m in methods)
        {
            if (m is MethodInfo mi) Add(mi.ReturnType);
            foreach (var p in m.GetParameters()) Add(p.ParameterType);
            foreach (var member in BodyOperands(m))
                switch (member)
                {
                    case Type t: Add(t); break;
                    case MethodBase callee:
                        Add(callee.DeclaringType);
                        if (callee is MethodInfo { IsGenericMethod: true } g) foreach (var a in g.GetGenericArguments()) Add(a);
                        break;
                    case FieldInfo field: Add(field.DeclaringType); Add(field.FieldType); break;
                }
        }
        return found;
    }

    static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes).GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!).ToDictionary(o => o.Value);

    static byte[]? IL(MethodBase method)
    {
        try { return method.GetMethodBody()?.GetILAsByteArray(); }
        catch (Exception e) when (e is InvalidOperationException or NotSupportedException) { return null; }
    }

    /// <summary>The members and types a method body's instructions name (calls, field accesses, type tokens).</summary>
    static IEnumerable<MemberInfo> BodyOperands(MethodBase method)
    {
        var il = IL(method);
        if (il is null) yield break;
        var typeArgs = method.DeclaringType is { IsGenericType: true } dt ? dt.GetGenericArguments() : null;
        var methodArgs = method.IsGenericMethod ? method.GetGenericArguments() : null;
        for (int at = 0; at < il.Length;)
        {
            short value = il[at] == 0xFE ? (short)(0xFE00 | il[at + 1]) : il[at];
            at += il[at] == 0xFE ? 2 : 1;
            var op = OpCodesByValue[value];
            int token = op.OperandType is OperandType.InlineMethod or OperandType.InlineField or OperandType.InlineType or OperandType.InlineTok
                ? BitConverter.ToInt32(il, at) : 0;
            at += op.OperandType switch
            {
                OperandType.InlineNone => 0,
                OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
                OperandType.InlineVar => 2,
                OperandType.InlineI8 or OperandType.InlineR => 8,
                OperandType.InlineSwitch => 4 + 4 * BitConverter.ToInt32(il, at),
                _ => 4,
            };
            if (token == 0) continue;
            MemberInfo? member;
            try { member = method.Module.ResolveMember(token, typeArgs, methodArgs); }
            catch (Exception e) when (e is ArgumentException or BadImageFormatException or TypeLoadException) { member = null; }
            if (member is not null) yield return member;
        }
    }
}
