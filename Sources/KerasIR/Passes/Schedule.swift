/// Orders nodes for execution: the existing topological order, with every
/// parameter update (assign, fused_update, gemm_update) placed right after
/// the last step it needs: its own inputs and every other reader of a
/// parameter it writes. So every read of a parameter's old value happens
/// before it is overwritten, and an update that can run early (a layer's
/// weights updated in its weight-gradient GEMM during the backward pass)
/// frees its operands early. An update whose parameter another update
/// reads runs after all others. Then a value larger than all its operands
/// together (a weight gradient from two activations, kept for the fused
/// optimizer call at the end) is made just before its first reader, so it
/// is not live, and taking memory, while the rest of the backward pass runs.
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
        sinkLargeResults(&order, nodes: nodes, users: users, isUpdate: isUpdate, written: Set(written.joined()))
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

    /// Moves each value whose bytes exceed its operands' to just before its
    /// first reader: its operands may live longer, but by less than it would.
    /// A reader of a parameter that an update writes stays where it is, so
    /// it still reads the old value.
    func sinkLargeResults(_ order: inout [Int], nodes: [Node], users: [[Value]], isUpdate: [Bool], written: Set<Int>) {
        let candidates = nodes.indices.filter { i in
            guard !isUpdate[i], !nodes[i].isArgument, !users[i].isEmpty, let out = nodes[i].type.byteCount,
                  !nodes[i].inputs.contains(where: { written.contains($0.id) }) else { return false }
            let ins = nodes[i].inputs.map { nodes[$0.id].type.byteCount ?? Int.max }.reduce(0) { $0 &+ $1 }
            return out > ins && ins >= 0
        }
        guard !candidates.isEmpty else { return }
        var position = [Int](repeating: 0, count: nodes.count)
        for (k, i) in order.enumerated() { position[i] = k }
        for i in candidates {
            let p = position[i], first = users[i].map { position[$0.id] }.min()!
            guard first > p + 1 else { continue }
            order.remove(at: p)
            order.insert(i, at: first - 1)
            for k in p..<first { position[order[k]] = k }
        }
    }
}
