/// Relu's gradient folded into max pooling's: in a backward pass through
/// relu then max pooling, select(greater(y, 0), max_pool_backward(y, dy), 0)
/// with y the relu's output becomes max_pool_backward(y, dy) {relu_mask}, one
/// kernel that reads each window of y before writing it, so the memory
/// planner may put the gradient in y's storage when y dies there. Needs
/// windows that do not overlap (stride >= pool), as Keras's default pooling
/// has; others are left alone with the reason.
public final class PoolReluGradFusion: DecisionRecordingPass, GraphPass {
    public var name: String { "fuse-pool-relu-grad" }

    public func run(_ graph: inout Graph, registry: OpRegistry) throws -> Bool {
        decisions = []
        let uses = GraphUses(graph)
        func ref(_ i: Int) -> String { uses.ref(i) }
        let nodes = graph.nodes
        func isZero(_ v: Value) -> Bool {
            guard nodes[v.id].kind == .constant, graph.type(of: v).elementCount == 1 else { return false }
            switch nodes[v.id].attrs["value"] {
            case .floats(let f)?: return f.allSatisfy { $0 == 0 }
            case .ints(let k)?: return k.allSatisfy { $0 == 0 }
            default: return false
            }
        }
        var replace: [Int: Node] = [:]
        var drop = Set<Int>()
        for si in nodes.indices where nodes[si].kind == .select {
            let s = nodes[si], ci = s.inputs[0].id, pi = s.inputs[1].id
            guard isZero(s.inputs[2]), nodes[ci].kind == .greater, isZero(nodes[ci].inputs[1]), nodes[pi].kind == .maxPoolBackward,
                  nodes[pi].inputs[0] == nodes[ci].inputs[0], uses.singleUse(ci), uses.singleUse(pi), nodes[pi].type == s.type,
                  (try? nodes[pi].attrs.bool("relu_mask", default: false)) == false else { continue }
            let y = nodes[pi].inputs[0]
            let rank = graph.type(of: y).rank - 2
            guard let window = try? PoolWindow(nodes[pi].attrs, rank: rank, op: "max_pool_backward") else { continue }
            if let a = (0..<rank).first(where: { window.strides[$0] < window.pool[$0] }) {
                decisions.append("not fused \(ref(pi)), \(ref(si)): pooling windows overlap (stride \(window.strides[a]) < pool \(window.pool[a]) on axis \(a))")
                continue
            }
            var attrs = nodes[pi].attrs
            attrs["relu_mask"] = .bool(true)
            replace[si] = Node(kind: .maxPoolBackward, inputs: nodes[pi].inputs, attrs: attrs, type: s.type, name: s.name, layer: s.layer)
            drop.formUnion([ci, pi])
            decisions.append("fused max_pool_backward \(ref(pi)) + greater \(ref(ci)), select \(ref(si)) -> max_pool_backward {relu_mask}")
        }
        if replace.isEmpty { return false }
        for (i, node) in replace { graph.nodes[i] = node }
        graph = rewrite(graph, replace: [:], drop: drop)
        return true
    }
}
