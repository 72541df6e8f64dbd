/// Folds matmul or conv -> add(bias or residual) -> activation chains into
/// one gemm_bias_act or conv_bias_act (a GEMM or convolution whose store step
/// adds the bias and applies the activation to each tile while it is in cache). Each decision, taken or refused, is recorded with its reason
/// in `decisions`; the pipeline logs them and KERAS_DUMP=fusion prints them.
public final class Fusion: DecisionRecordingPass, GraphPass {
    public var name: String { "fusion" }

    static let activations: Set<String> = ["relu", "sigmoid", "tanh", "gelu", "gelu_tanh", "swish", "softplus", "softsign",
                                           "elu", "selu", "leaky_relu", "hard_sigmoid"]

    public func run(_ graph: inout Graph, registry: OpRegistry) throws -> Bool {
        decisions = []
        let uses = GraphUses(graph)
        let users = uses.users, outputs = uses.outputs
        func ref(_ i: Int) -> String { uses.ref(i) }
        func singleUse(_ i: Int) -> Bool { uses.singleUse(i) }

        var replaceWith: [Int: Node] = [:]   // node index -> fused node taking its place
        var drop = Set<Int>()
        for (i, n) in graph.nodes.enumerated() where n.kind == .add {
            // which operand is the matmul or convolution?
            guard let (mmIndex, other) = [(n.inputs[0].id, n.inputs[1]), (n.inputs[1].id, n.inputs[0])]
                .first(where: { [.matmul, .conv].contains(graph.nodes[$0.0].kind) })
            else { continue }
            let mm = graph.nodes[mmIndex]
            let isConv = mm.kind == .conv
            let ta = (try? mm.attrs.bool("transpose_a", default: false)) ?? false
            let tb = (try? mm.attrs.bool("transpose_b", default: false)) ?? false
            let w = graph.type(of: mm.inputs[1])
            guard isConv || (!ta && w.rank == 2) else {
                decisions.append("not fused \(ref(mmIndex)): matmul with transpose_a or a batched right operand")
                continue
            }
            guard singleUse(mmIndex) else {
                decisions.append("not fused \(ref(mmIndex)) -> \(ref(i)): producer has \(users[mmIndex].count) consumers")
                continue
            }
            let ot = graph.type(of: other), out = n.type
            let isBias = ot.rank == 1 && ot.shape == [out.shape.last!]
            let isResidual = ot == out && out.isFullyKnown
            guard isBias || isResidual, drop.insert(mmIndex).inserted else {
                decisions.append(ot == out
                    ? "not fused \(ref(mmIndex)) -> \(ref(i)): the residual \(ot) has unknown dimensions, so the kernel cannot know it matches the result row for row"
                    : "not fused \(ref(mmIndex)) -> \(ref(i)): \(ot) is neither a bias nor a residual of \(out)")
                continue
            }
            var attrs: Attributes = isConv ? mm.attrs : ["transpose_b": .bool(tb)]
            attrs["bias"] = .bool(isBias); attrs["residual"] = .bool(isResidual); attrs["act"] = .string("none")
            let fused = isConv ? "conv_bias_act" : "gemm_bias_act"
            var target = i
            var what = "\(mm.op) \(ref(mmIndex)) + \(isBias ? "bias" : "residual") \(ref(i))"
            if singleUse(i), let u = users[i].first, Fusion.activations.contains(graph.nodes[u.id].op) {
                let act = graph.nodes[u.id]
                attrs["act"] = .string(act.op)
                for k in act.attrs.sortedKeys { attrs["act_" + k] = act.attrs[k] }
                drop.insert(i)
                target = u.id
                what += " + \(act.op) \(ref(u.id))"
            } else if let u = users[i].first, users[i].count == 1, Fusion.activations.contains(graph.nodes[u.id].op), outputs.contains(i) {
                decisions.append("activation \(ref(u.id)) not fused: \(ref(i)) is a graph output")
            } else if users[i].count > 1 {
                decisions.append("activation not fused after \(ref(i)): it has \(users[i].count) consumers")
            }
            let t = graph.nodes[target]
            replaceWith[target] = Node(op: fused, inputs: [mm.inputs[0], mm.inputs[1], other], attrs: attrs, type: t.type,
                                       name: t.name, layer: t.layer ?? mm.layer)
            decisions.append("fused \(what) -> \(fused)")
        }
        if replaceWith.isEmpty { return false }
        for (i, node) in replaceWith { graph.nodes[i] = node }
        // The replaced chain's earlier members are now unused; drop them.
        graph = rewrite(graph, replace: [:], drop: drop.filter { replaceWith[$0] == nil })
        return true
    }
}
