/// SGD on a weight gradient that is a matmul, w - lr * matmul(a, b), or with
/// momentum m' = m * mu - lr * matmul(a, b) and w + m', every intermediate
/// used once: the update goes into the GEMM's store step (gemm_update, C = w
/// or m with beta = 1 or mu, the momentum tile added into w), so the gradient
/// is never stored and no update pass runs over the weights. Runs before
/// fuse-updates, which takes the remaining assigns.
public final class GemmUpdateFusion: DecisionRecordingPass, GraphPass {
    public var name: String { "fuse-gemm-updates" }

    public func run(_ graph: inout Graph, registry: OpRegistry) throws -> Bool {
        decisions = []
        let uses = GraphUses(graph)
        let nodes = graph.nodes
        func ref(_ i: Int) -> String { uses.ref(i) }
        let assigns = uses.rewritableAssigns(graph)
        let targets = Set(assigns.map { nodes[$0].inputs[0].id })
        // SGD on a GEMM's result (w - lr * matmul, or with momentum m' = m * mu - lr * matmul, w + m'),
        // every intermediate used once: the update goes into the GEMM's store step.
        var gemmUpdates: [Int: Node] = [:]
        var absorbed = Set<Int>()  // assigns done by a gemm_update made at another assign
        func splat(_ v: Value) -> Float? {
            guard nodes[v.id].kind == .constant, case .floats(let f)? = nodes[v.id].attrs["value"], let x = f.first, f.allSatisfy({ $0 == x }) else { return nil }
            return x
        }
        /// (matmul, lr) when `step` is mul(matmul, lr) with both used once there.
        func lrTimesMatmul(_ step: Int) -> (Int, Value)? {
            guard nodes[step].kind == .mul, uses.singleUse(step),
                  let (mm, lr) = [(nodes[step].inputs[0], nodes[step].inputs[1]), (nodes[step].inputs[1], nodes[step].inputs[0])]
                      .first(where: { nodes[$0.0.id].kind == .matmul && graph.type(of: $0.1).elementCount == 1 }),
                  uses.singleUse(mm.id), nodes[mm.id].inputs.allSatisfy({ graph.type(of: $0).rank == 2 }) else { return nil }
            return (mm.id, lr)
        }
        let assignOf = Dictionary(assigns.map { (nodes[$0].inputs[0].id, $0) }, uniquingKeysWith: { a, _ in a })
        for a in assigns where !absorbed.contains(a) && gemmUpdates[a] == nil {
            let p = nodes[a].inputs[0], s = nodes[a].inputs[1].id
            guard nodes[s].kind == .sub else { continue }
            var node: Node? = nil, mmIndex = -1, what = ""
            if nodes[s].inputs[0] == p, uses.singleUse(s), let (mm, lr) = lrTimesMatmul(nodes[s].inputs[1].id) {
                // w' = w - lr * g
                node = Node(kind: .gemmUpdate, inputs: [p] + nodes[mm].inputs + [lr], attrs: [:], type: nodes[a].type, layer: nodes[a].layer)
                mmIndex = mm
                what = "\(ref(p.id)) - \(ref(lr.id)) * matmul \(ref(mm))"
            } else if nodes[nodes[s].inputs[0].id].kind == .mul, uses.singleUse(nodes[s].inputs[0].id),
                      nodes[nodes[s].inputs[0].id].inputs[0] == p, let mu = splat(nodes[nodes[s].inputs[0].id].inputs[1]),
                      let (mm, lr) = lrTimesMatmul(nodes[s].inputs[1].id), uses.users[s].count == 2,
                      let add = uses.users[s].first(where: { $0.id != a })?.id, nodes[add].kind == .add, uses.singleUse(add),
                      let w = nodes[add].inputs.first(where: { $0.id != s }), nodes[add].inputs.contains(Value(s)),
                      let wa = assignOf[w.id], nodes[wa].inputs[1].id == add {
                // m' = m * mu - lr * g; w' = w + m'
                node = Node(kind: .gemmUpdate, inputs: [p, w] + nodes[mm].inputs + [lr], attrs: ["momentum": .float(mu)],
                            type: nodes[a].type, layer: nodes[a].layer)
                mmIndex = mm
                absorbed.insert(wa)
                what = "\(ref(p.id)) * \(mu) - \(ref(lr.id)) * matmul \(ref(mm)), assign \(ref(wa)) = \(ref(w.id)) + it"
            }
            guard var made = node else { continue }
            if let q = nodes[mmIndex].inputs.first(where: { targets.contains($0.id) }) {
                decisions.append("not fused assign \(ref(a)) into matmul \(ref(mmIndex)): it reads \(ref(q.id)), which is updated too")
                if made.inputs.count == 5 { absorbed.remove(assignOf[made.inputs[1].id]!) }
                continue
            }
            let attrs = nodes[mmIndex].attrs
            made.attrs["transpose_a"] = attrs["transpose_a"] ?? .bool(false)
            made.attrs["transpose_b"] = attrs["transpose_b"] ?? .bool(false)
            gemmUpdates[a] = made
            decisions.append("fused assign \(ref(a)) = \(what) -> gemm_update (the update in the GEMM's store step)")
        }
        guard !gemmUpdates.isEmpty else { return false }
        for (a, node) in gemmUpdates { graph.nodes[a] = node }
        graph = rewrite(graph, replace: [:], drop: absorbed)
        _ = try DeadCodeElimination().run(&graph, registry: registry)
        return true
    }
}
