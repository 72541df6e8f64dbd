/// An SSA value: the result of node `id` in its graph.
public struct Value: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var id: Int
    public init(_ id: Int) { self.id = id }
    public static func < (a: Value, b: Value) -> Bool { a.id < b.id }
    public var description: String { "v\(id)" }
}

/// One operation with a single result. Inputs always refer to earlier nodes,
/// so the node array is a topological order.
public struct Node: Hashable, Sendable {
    public var op: String
    public var inputs: [Value]
    public var attrs: Attributes
    public var type: TensorType
    /// SSA name for printing (graph arguments and values a user named).
    public var name: String?
    /// The Keras layer that emitted this node, shown at the end of its line.
    public var layer: String?

    public init(op: String, inputs: [Value], attrs: Attributes = [:], type: TensorType,
                name: String? = nil, layer: String? = nil) {
        self.op = op
        self.inputs = inputs
        self.attrs = attrs
        self.type = type
        self.name = name
        self.layer = layer
    }

    /// A node of a standard op, named by its kind.
    public init(kind: OpKind, inputs: [Value], attrs: Attributes = [:], type: TensorType, name: String? = nil, layer: String? = nil) {
        self.init(op: kind.rawValue, inputs: inputs, attrs: attrs, type: type, name: name, layer: layer)
    }

    public var isArgument: Bool { kind == .input || kind == .parameter }
}

/// A graph: nodes in topological order and the values it returns. Graph
/// arguments are the `input` (fed per run) and `parameter` (persistent) nodes.
public struct Graph: Hashable, Sendable {
    public var name: String
    public var nodes: [Node]
    public var outputs: [Value]

    public init(name: String, nodes: [Node] = [], outputs: [Value] = []) {
        self.name = name
        self.nodes = nodes
        self.outputs = outputs
    }

    public subscript(v: Value) -> Node {
        get { nodes[v.id] }
        set { nodes[v.id] = newValue }
    }

    public func type(of v: Value) -> TensorType { nodes[v.id].type }

    public var values: [Value] { nodes.indices.map(Value.init) }
    public var inputs: [Value] { values.filter { nodes[$0.id].kind == .input } }
    public var parameters: [Value] { values.filter { nodes[$0.id].kind == .parameter } }
    public var arguments: [Value] { values.filter { nodes[$0.id].isArgument } }

    /// The value named `name` (arguments and named nodes).
    public func value(named name: String) -> Value? {
        nodes.firstIndex { $0.name == name }.map(Value.init)
    }

    /// For each value, the nodes that read it (in node order, repeated when a
    /// node reads a value twice).
    public func users() -> [[Value]] {
        var users = [[Value]](repeating: [], count: nodes.count)
        for (i, n) in nodes.enumerated() {
            for x in n.inputs { users[x.id].append(Value(i)) }
        }
        return users
    }
}
