namespace MLNet.MemoryTokens.Onnx;

/// <summary>Builds one ONNX graph: inputs, float32 initializers, int64 constants, nodes in topological order (the order they
/// are added), outputs. Each op returns the name of its output value; names are unique and say where they come from.</summary>
internal sealed class OnnxGraph
{
    readonly List<ProtoMessage> _nodes = new(), _initializers = new(), _inputs = new(), _outputs = new();
    readonly HashSet<string> _values = new(StringComparer.Ordinal);
    readonly Dictionary<string, string> _constants = new(StringComparer.Ordinal);
    int _next;

    /// <summary>Prefix of the names of values and nodes added now (e.g. "blocks.3/attn").</summary>
    public string Scope { get; set; } = "";

    public int NodeCount => _nodes.Count;

    /// <summary>A float32 graph input; a string dimension is symbolic (dynamic).</summary>
    public string Input(string name, params object[] dims)
    {
        Claim(name);
        _inputs.Add(OnnxProto.ValueInfo(name, OnnxProto.Float32, dims));
        return name;
    }

    /// <summary>Exposes <paramref name="value"/> as the graph output <paramref name="name"/> (float32).</summary>
    public void Output(string value, string name, params object[] dims)
    {
        Claim(name);
        _nodes.Add(OnnxProto.Node("Identity", [value], [name], name + "/output", []));
        _outputs.Add(OnnxProto.ValueInfo(name, OnnxProto.Float32, dims));
    }

    /// <summary>A float32 initializer; the array is written as it is at save time (not copied).</summary>
    public string Weight(string name, float[] data, params int[] dims)
    {
        long n = 1;
        foreach (var d in dims) n *= d;
        if (n != data.Length) throw new ArgumentException($"Initializer '{name}': {data.Length} values for shape [{string.Join(", ", dims)}].");
        Claim(name);
        _initializers.Add(OnnxProto.Tensor(name, dims.Select(d => (long)d).ToArray(), data));
        return name;
    }

    /// <summary>An int8 initializer (quantised weights, zero points).</summary>
    public string Int8Weight(string name, sbyte[] data, params int[] dims)
    {
        Claim(name);
        _initializers.Add(OnnxProto.Tensor(name, dims.Select(d => (long)d).ToArray(), data));
        return name;
    }

    /// <summary>An int64 constant (shapes, axes, indices), shared by every node that needs the same values.</summary>
    public string Ints(params long[] values) => IntTensor([values.Length], values);

    /// <summary>A scalar int64 constant (rank 0: Gather with it drops the axis).</summary>
    public string IntScalar(long value) => IntTensor([], [value]);

    string IntTensor(long[] dims, long[] values)
    {
        string key = $"i64[{string.Join(",", dims)}]:{string.Join(",", values)}";
        if (_constants.TryGetValue(key, out var name)) return name;
        name = $"const/{_constants.Count}";
        Claim(name);
        _initializers.Add(OnnxProto.Tensor(name, dims, values));
        return _constants[key] = name;
    }

    /// <summary>A float32 scalar constant (rank 0, broadcasts).</summary>
    public string Scalar(float value)
    {
        string key = $"f32:{BitConverter.SingleToUInt32Bits(value):x8}";
        if (_constants.TryGetValue(key, out var name)) return name;
        name = $"const/{_constants.Count}";
        Claim(name);
        _initializers.Add(OnnxProto.Tensor(name, [], [value]));
        return _constants[key] = name;
    }

    /// <summary>A node with one output.</summary>
    public string Op(string opType, string[] inputs, params OnnxAttribute[] attributes) => Op(opType, 1, inputs, attributes)[0];

    /// <summary>A node with <paramref name="outputs"/> outputs.</summary>
    public string[] Op(string opType, int outputs, string[] inputs, params OnnxAttribute[] attributes)
    {
        foreach (var i in inputs)
            if (!_values.Contains(i)) throw new InvalidOperationException($"ONNX graph: '{opType}' reads '{i}', which nothing defined before it.");
        string node = $"{(Scope.Length > 0 ? Scope + "/" : "")}{opType}_{_next++}";
        var names = Enumerable.Range(0, outputs).Select(k => outputs == 1 ? node : $"{node}:{k}").ToArray();
        foreach (var n in names) Claim(n);
        _nodes.Add(OnnxProto.Node(opType, inputs, names, node, attributes));
        return names;
    }

    void Claim(string name)
    {
        if (!_values.Add(name)) throw new InvalidOperationException($"ONNX graph: the value name '{name}' is used twice.");
    }

    public ProtoMessage ToProto(string name, string doc) => OnnxProto.Graph(name, _nodes, _initializers, _inputs, _outputs, doc);

    // ---------------------------------------------------------------- the ops the ViT uses

    public static OnnxAttribute A(string name, object value) => new(name, value);

    public string MatMul(string a, string b) => Op("MatMul", [a, b]);
    public string Add(string a, string b) => Op("Add", [a, b]);
    public string Mul(string a, string b) => Op("Mul", [a, b]);
    public string Div(string a, string b) => Op("Div", [a, b]);
    public string Reshape(string x, params long[] shape) => Op("Reshape", [x, Ints(shape)]);
    public string Transpose(string x, params long[] perm) => Op("Transpose", [x], A("perm", perm));
    public string Concat(int axis, params string[] xs) => xs.Length == 1 ? xs[0] : Op("Concat", xs, A("axis", (long)axis));
    /// <summary>x[..., start:end, ...] along <paramref name="axis"/>.</summary>
    public string Slice(string x, int axis, long start, long end) => Op("Slice", [x, Ints(start), Ints(end), Ints(axis)]);
    /// <summary>Index <paramref name="index"/> of <paramref name="axis"/>, the axis dropped.</summary>
    public string Take(string x, int axis, long index) => Op("Gather", [x, IntScalar(index)], A("axis", (long)axis));
    public string Expand(string x, string shape) => Op("Expand", [x, shape]);
    public string Softmax(string x) => Op("Softmax", [x], A("axis", -1L));
    public string[] Split(string x, int axis, params long[] sizes) => Op("Split", sizes.Length, [x, Ints(sizes)], A("axis", (long)axis));
    public string LayerNorm(string x, string weight, string bias, float eps) =>
        Op("LayerNormalization", [x, weight, bias], A("axis", -1L), A("epsilon", eps));
    /// <summary>y = x Wᵀ + b for x [B, K], W [C, K] as stored (Gemm with transB).</summary>
    public string Gemm(string x, string weight, string bias) => Op("Gemm", [x, weight, bias], A("transB", 1L));

    /// <summary>x / max(‖x‖₂, 1e-12) over the last axis (F.normalize), for x [B, F].</summary>
    public string L2Normalize(string x)
    {
        var sumSq = Op("ReduceSum", [Mul(x, x), Ints(-1)], A("keepdims", 1L));
        return Div(x, Op("Max", [Op("Sqrt", [sumSq]), Scalar(1e-12f)]));
    }
}
