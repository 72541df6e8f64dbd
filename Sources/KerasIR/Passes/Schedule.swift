/// Orders nodes for execution: the existing topological order, with every
/// parameter update (assign, fused_update, gemm_update) placed right after
/// the last step it needs: its own inputs and every other reader of a
/// parameter it writes. So every read of a parameter's old value happens
/// before it is overwritten, and an update that can run early (a layer's
/// weights updated in its weight-gradient GEMM during the backward pass)
/// frees its operands early. An update whose parameter another update
/// reads runs after all others.
public struct Schedule: GraphPass {
    public var name: String { "schedule" }
    public init() {}

    public func run(_ graph: inout Graph, registry: OpRegistry) throws -> Bool {
        let nodes = graph.nodes
        let written: [[Int]] = try nodes.map { n in try registry[n.op]?.writtenParameters?(n).map { n.inputs[$0].id } ?? [] }
        let isUpdate = nodes.indices.map { registry[nodes[$0].op]?.updatesParameters == true }
        if !isUpdate.contains(true) { return false }
        let users = graph.users()
        // Arguments first (a parameter made late, an optimizer's slot, is still there from the start).
        var order = nodes.indices.filter { nodes[$0].isArgument } + nodes.indices.filter { !isUpdate[$0] && !nodes[$0].isArgument }
        var position = [Int](repeating: -1, count: nodes.count)
        for (k, i) in order.enumerated() { position[i] = k }
        var last: [Int] = []
        for u in nodes.indices where isUpdate[u] {
            let readers = written[u].flatMap { users[$0].map(\.id) }.filter { $0 != u }
            if readers.contains(where: { isUpdate[$0] }) { last.append(u); continue }
            let after = (nodes[u].inputs.map(\.id) + readers).map { position[$0] }.max() ?? -1
            order.insert(u, at: after + 1)
            for (k, i) in order.enumerated().dropFirst(after + 1) { position[i] = k }
        }
        order += last
        if order == Array(nodes.indices) { return false }
        var newIndex = [Int](repeating: 0, count: nodes.count)
        for (k, i) in order.enumerated() { newIndex[i] = k }
        var out = Graph(name: graph.name)
        for i in order {
            var n = nodes[i]
            n.inputs = n.inputs.map { Value(newIndex[$0.id]) }
            out.nodes.append(n)
        }
        out.outputs = graph.outputs.map { Value(newIndex[$0.id]) }
        graph = out
        return true
    }
}
