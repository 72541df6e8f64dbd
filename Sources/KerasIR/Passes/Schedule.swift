/// Orders nodes for execution: the existing topological order, with every
/// parameter update (assign, fused_update) moved to the end so that all
/// reads of a parameter's old value happen before it is overwritten.
public struct Schedule: GraphPass {
    public var name: String { "schedule" }
    public init() {}

    public func run(_ graph: inout Graph, registry: OpRegistry) throws -> Bool {
        let isUpdate = graph.nodes.map { registry[$0.op]?.updatesParameters == true }
        let assigns = graph.nodes.indices.filter { isUpdate[$0] }
        let lastNonAssign = graph.nodes.indices.last { !isUpdate[$0] } ?? -1
        if assigns.allSatisfy({ $0 > lastNonAssign }) { return false }
        let order = graph.nodes.indices.filter { !isUpdate[$0] } + assigns
        var newIndex = [Int](repeating: 0, count: graph.nodes.count)
        for (k, i) in order.enumerated() { newIndex[i] = k }
        var out = Graph(name: graph.name)
        for i in order {
            var n = graph.nodes[i]
            n.inputs = n.inputs.map { Value(newIndex[$0.id]) }
            out.nodes.append(n)
        }
        out.outputs = graph.outputs.map { Value(newIndex[$0.id]) }
        graph = out
        return true
    }
}
