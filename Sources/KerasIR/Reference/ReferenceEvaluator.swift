/// Evaluates a graph with every op's naive reference rule in double
/// precision: the oracle for kernels and for gradient checks.
public struct ReferenceEvaluator {
    public var registry: OpRegistry
    public var randomCounter: UInt64

    public init(registry: OpRegistry = .standard, randomCounter: UInt64 = 0) {
        self.registry = registry
        self.randomCounter = randomCounter
    }

    /// Values for every node. `feeds` supplies inputs and parameters by name;
    /// their shapes fix the graph's unknown dimensions.
    public func evaluateAll(_ graph: Graph, feeds: [String: RefTensor]) throws -> [RefTensor] {
        var values: [RefTensor] = []
        values.reserveCapacity(graph.nodes.count)
        for (i, node) in graph.nodes.enumerated() {
            let def = try registry.lookup(node.op)
            if node.isArgument {
                let name = node.name ?? "v\(i)"
                guard let t = feeds[name] else {
                    throw IRError("reference evaluation: no value fed for \(node.op) %\(name)")
                }
                try checkFeed(t, node.type, name)
                values.append(t)
                continue
            }
            let rule = def.reference
            let ins = node.inputs.map { values[$0.id] }
            let concrete = try def.shape(ShapeContext(op: node.op, inputs: ins.map(\.type), attrs: node.attrs,
                                                       declared: node.type))
            // Reference values are doubles: 8 bytes per element.
            try MemoryLimit.check("reference evaluation of \(node.op) \(concrete)",
                                  count: try MemoryLimit.elementCount(concrete.shape, node.op), elementBytes: 8, shape: concrete.shape)
            let out = try rule(ReferenceContext(inputs: ins, attrs: node.attrs, type: concrete,
                                                randomCounter: randomCounter))
            values.append(out)
        }
        return values
    }

    public func evaluate(_ graph: Graph, feeds: [String: RefTensor]) throws -> [RefTensor] {
        let all = try evaluateAll(graph, feeds: feeds)
        return graph.outputs.map { all[$0.id] }
    }

    private func checkFeed(_ t: RefTensor, _ type: TensorType, _ name: String) throws {
        let ok = t.dtype == type.dtype && t.shape.count == type.rank
            && zip(t.shape, type.shape).allSatisfy { $1 == TensorType.unknown || $0 == $1 }
        if !ok { throw IRError("reference evaluation: %\(name) expects \(type), got \(t.type)") }
        if t.data.count != (try MemoryLimit.elementCount(t.shape, "reference evaluation: %\(name)")) {
            throw IRError("reference evaluation: %\(name) has \(t.data.count) values for shape \(t.type)")
        }
        if t.dtype == .i32, let bad = t.data.firstIndex(where: { Int32(exactly: $0) == nil }) {
            throw IRError("reference evaluation: %\(name) is i32 but value \(t.data[bad]) at index \(bad) is not an int32")
        }
    }
}
