/// Evaluates pure nodes whose inputs are all constants (with the reference
/// rules) and replaces them by constants, up to `maxElements` each. dim_size
/// folds as soon as its input's shape is known, since it reads no data.
public struct ConstantFolding: GraphPass {
    public var name: String { "constant-fold" }
    public var maxElements = 4096
    public init() {}

    public func run(_ graph: inout Graph, registry: OpRegistry) throws -> Bool {
        var changed = false
        for i in graph.nodes.indices {
            let n = graph.nodes[i]
            guard n.kind != .constant, !n.isArgument, let def = registry[n.op], def.isPure(n),
                  let count = n.type.elementCount, count <= maxElements else { continue }
            let rule = def.reference
            let inputs = n.inputs.map { graph.nodes[$0.id] }
            let foldable = n.kind == .dimSize ? inputs[0].type.isFullyKnown : !inputs.isEmpty && inputs.allSatisfy { $0.kind == .constant }
            // Inputs are expanded in full for the reference rule: cap them as well as the result.
            guard foldable, inputs.allSatisfy({ ($0.type.elementCount ?? Int.max) <= maxElements }) || n.kind == .dimSize else { continue }
            let refInputs: [RefTensor]
            if n.kind == .dimSize {
                refInputs = [RefTensor(inputs[0].type.dtype, inputs[0].type.shape, [])]
            } else {
                refInputs = try inputs.map { c in try constantValue(c, registry: registry) }
            }
            guard let value = try? rule(ReferenceContext(inputs: refInputs, attrs: n.attrs, type: n.type, randomCounter: 0)) else { continue }
            let r = value.rounded()
            var m = Node(kind: .constant, inputs: [], type: n.type, name: n.name, layer: n.layer)
            if r.dtype == .f32 {
                let f = r.data.map { Float($0) }
                m.attrs = ["value": .floats(Set(f.map(\.bitPattern)).count == 1 ? [f[0]] : f)]
            } else {
                let v = r.data.map { Int($0) }
                m.attrs = ["value": .ints(Set(v).count == 1 ? [v[0]] : v)]
            }
            graph.nodes[i] = m
            changed = true
        }
        return changed
    }
}

/// The value of a constant node, expanded to its full shape.
func constantValue(_ n: Node, registry: OpRegistry) throws -> RefTensor {
    try registry.lookup("constant").reference(ReferenceContext(inputs: [], attrs: n.attrs, type: n.type, randomCounter: 0))
}
