/// Merges pure nodes with the same op, inputs, attributes and type.
public struct CommonSubexpressionElimination: GraphPass {
    public var name: String { "cse" }
    public init() {}

    private struct Key: Hashable {
        var op: String
        var inputs: [Int]
        var attrs: Attributes
        var type: TensorType
    }

    public func run(_ graph: inout Graph, registry: OpRegistry) throws -> Bool {
        var seen: [Key: Int] = [:]
        var replace: [Int: Int] = [:]
        for (i, n) in graph.nodes.enumerated() {
            guard let def = registry[n.op], def.isPure(n), !n.isArgument else { continue }
            let key = Key(op: n.op, inputs: n.inputs.map { replace[$0.id] ?? $0.id }, attrs: n.attrs, type: n.type)
            if let earlier = seen[key] {
                // Two distinct user names are both kept.
                if n.name != nil && graph.nodes[earlier].name != nil { continue }
                replace[i] = earlier
            } else {
                seen[key] = i
            }
        }
        if replace.isEmpty { return false }
        graph = rewrite(graph, replace: replace, drop: [])
        return true
    }
}
