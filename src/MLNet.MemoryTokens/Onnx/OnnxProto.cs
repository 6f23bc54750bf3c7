namespace MLNet.MemoryTokens.Onnx;

/// <summary>The subset of ONNX's ModelProto this exporter writes, built on <see cref="ProtoMessage"/>; the field numbers are
/// those of onnx/onnx.proto (stable since IR version 3).</summary>
internal static class OnnxProto
{
    /// <summary>TensorProto.DataType values.</summary>
    public const int Float32 = 1, Int8 = 3, Int64 = 7;

    /// <summary>The IR version a runtime must read for an opset (onnx's release table: opset 17–18 → IR 8, 19–20 → 9, 21–22 → 10, 23 → 11).</summary>
    public static int IrVersionFor(int opset) => opset switch { <= 18 => 8, <= 20 => 9, <= 22 => 10, _ => 11 };

    // TensorProto: dims = 1, data_type = 2, name = 8, raw_data = 9
    public static ProtoMessage Tensor(string name, IReadOnlyList<long> dims, float[] data)
    {
        var t = Dims(new ProtoMessage(), dims).Varint(2, Float32).String(8, name);
        return t.RawFloats(9, data);
    }

    public static ProtoMessage Tensor(string name, IReadOnlyList<long> dims, long[] data)
    {
        var bytes = new byte[data.Length * 8];
        for (int i = 0; i < data.Length; i++) System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(i * 8), data[i]);
        return Dims(new ProtoMessage(), dims).Varint(2, Int64).String(8, name).Bytes(9, bytes);
    }

    public static ProtoMessage Tensor(string name, IReadOnlyList<long> dims, sbyte[] data) =>
        Dims(new ProtoMessage(), dims).Varint(2, Int8).String(8, name).Bytes(9, System.Runtime.InteropServices.MemoryMarshal.AsBytes(data.AsSpan()).ToArray());

    static ProtoMessage Dims(ProtoMessage m, IReadOnlyList<long> dims)
    {
        foreach (var d in dims) m.Varint(1, d);   // repeated int64, unpacked (proto2's default)
        return m;
    }

    /// <summary>ValueInfoProto (name = 1, type = 2) of a tensor: TypeProto.tensor_type = 1 → elem_type = 1, shape = 2 →
    /// dim = 1 → dim_value = 1 (a number) or dim_param = 2 (a symbolic name: a dynamic dimension).</summary>
    public static ProtoMessage ValueInfo(string name, int elemType, IEnumerable<object> dims)
    {
        var shape = new ProtoMessage();
        foreach (var d in dims)
            shape.Message(1, d is string param ? new ProtoMessage().String(2, param) : new ProtoMessage().Varint(1, Convert.ToInt64(d)));
        var tensorType = new ProtoMessage().Varint(1, elemType).Message(2, shape);
        return new ProtoMessage().String(1, name).Message(2, new ProtoMessage().Message(1, tensorType));
    }

    // NodeProto: input = 1, output = 2, name = 3, op_type = 4, attribute = 5
    public static ProtoMessage Node(string opType, IEnumerable<string> inputs, IEnumerable<string> outputs, string name, IEnumerable<OnnxAttribute> attributes)
    {
        var n = new ProtoMessage();
        foreach (var i in inputs) n.String(1, i);
        foreach (var o in outputs) n.String(2, o);
        n.String(3, name).String(4, opType);
        foreach (var a in attributes) n.Message(5, a.ToProto());
        return n;
    }

    // GraphProto: node = 1, name = 2, initializer = 5, doc_string = 10, input = 11, output = 12
    public static ProtoMessage Graph(string name, IEnumerable<ProtoMessage> nodes, IEnumerable<ProtoMessage> initializers, IEnumerable<ProtoMessage> inputs,
        IEnumerable<ProtoMessage> outputs, string doc)
    {
        var g = new ProtoMessage();
        foreach (var n in nodes) g.Message(1, n);
        g.String(2, name);
        foreach (var t in initializers) g.Message(5, t);
        g.String(10, doc);
        foreach (var i in inputs) g.Message(11, i);
        foreach (var o in outputs) g.Message(12, o);
        return g;
    }

    /// <summary>ModelProto: ir_version = 1, producer_name = 2, producer_version = 3, doc_string = 6, graph = 7, opset_import = 8
    /// (OperatorSetIdProto: domain = 1, version = 2), metadata_props = 14 (StringStringEntryProto: key = 1, value = 2).
    /// ir_version and producer_name come first, so a reader can tell our files from their first bytes (<see cref="IsOurs"/>).</summary>
    public static ProtoMessage Model(int opset, ProtoMessage graph, string doc, IEnumerable<KeyValuePair<string, string>> metadata)
    {
        var m = new ProtoMessage().Varint(1, IrVersionFor(opset)).String(2, Producer).String(3, ProducerVersion).String(6, doc).Message(7, graph)
            .Message(8, new ProtoMessage().String(1, "").Varint(2, opset));
        foreach (var (k, v) in metadata) m.Message(14, new ProtoMessage().String(1, k).String(2, v));
        return m;
    }

    public const string Producer = "MLNet.MemoryTokens";
    public static string ProducerVersion => typeof(OnnxProto).Assembly.GetName().Version?.ToString() ?? "0";

    /// <summary>Whether a file starts as <see cref="Model"/> writes: field 1 (a small varint), then field 2 = <see cref="Producer"/>.</summary>
    public static bool IsOurs(string path)
    {
        Span<byte> head = stackalloc byte[32];
        int n;
        using (var f = File.OpenRead(path)) n = f.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        var producer = System.Text.Encoding.UTF8.GetBytes(Producer);
        return n >= 4 + producer.Length && head[0] == 0x08 && head[1] < 0x80 && head[2] == 0x12 && head[3] == producer.Length
               && head.Slice(4, producer.Length).SequenceEqual(producer);
    }
}

/// <summary>A node attribute: an int64, a float, a string, or a list of int64.</summary>
internal readonly record struct OnnxAttribute(string Name, object Value)
{
    // AttributeProto: name = 1, f = 2, i = 3, s = 4, ints = 8, type = 20 (FLOAT = 1, INT = 2, STRING = 3, INTS = 7)
    public ProtoMessage ToProto()
    {
        var a = new ProtoMessage().String(1, Name);
        switch (Value)
        {
            case long i: a.Varint(3, i).Varint(20, 2); break;
            case int i: a.Varint(3, i).Varint(20, 2); break;
            case float f: a.Float(2, f).Varint(20, 1); break;
            case string s: a.String(4, s).Varint(20, 3); break;
            case long[] ints:
                foreach (var i in ints) a.Varint(8, i);
                a.Varint(20, 7);
                break;
            default: throw new ArgumentException($"Attribute '{Name}' has an unsupported value type {Value?.GetType().Name}.");
        }
        return a;
    }
}
