/// Batch normalization's statistics in one pass: reduce_mean(x) and
/// reduce_mean(square(x - mean)) over every axis but the last become one
/// `moments` call (mean and variance per channel), read through two views,
/// instead of a mean, a full-size squared-deviation tensor and a second
/// reduction. Needs the channel count known; other axis sets are left alone
/// with the reason.
public final class MomentsFusion: DecisionRecordingPass, GraphPass {
    public var name: String { "fuse-moments" }

    public func run(_ graph: inout Graph, registry: OpRegistry) throws -> Bool {
        decisions = []
        let uses = GraphUses(graph)
        func ref(_ i: Int) -> String { uses.ref(i) }
        let nodes = graph.nodes
        var g = graph
        var changed = false
        for vi in nodes.indices where nodes[vi].kind == .reduceMean {
            let si = nodes[vi].inputs[0].id
            guard nodes[si].kind == .square, uses.singleUse(si) else { continue }
            let di = nodes[si].inputs[0].id
            guard nodes[di].kind == .sub else { continue }
            let x = nodes[di].inputs[0], mi = nodes[di].inputs[1].id
            guard nodes[mi].kind == .reduceMean, nodes[mi].inputs[0] == x, nodes[mi].attrs == nodes[vi].attrs else { continue }
            let xt = graph.type(of: x)
            let axes = (try? normalizeAxes(try nodes[vi].attrs.ints("axes"), rank: xt.rank, op: "reduce_mean")) ?? []
            guard Set(axes) == Set(0..<(xt.rank - 1)), xt.rank >= 2, let c = xt.shape.last, c != TensorType.unknown else {
                decisions.append("not fused \(ref(mi)), \(ref(vi)): moments reduce every axis but the last of \(xt), not axes \(axes)")
                continue
            }
            let packed = Value(g.nodes.count)
            g.nodes.append(Node(kind: .moments, inputs: [x], type: .f32([2, c]), layer: nodes[mi].layer))
            for (i, offset) in [(mi, 0), (vi, c)] {
                g.nodes[i] = Node(kind: .view, inputs: [packed], attrs: ["shape": .ints(nodes[i].type.shape), "offset": .int(offset)],
                                  type: nodes[i].type, name: nodes[i].name, layer: nodes[i].layer)
            }
            decisions.append("fused reduce_mean \(ref(mi)) + sub \(ref(di)), square \(ref(si)), reduce_mean \(ref(vi)) -> moments")
            changed = true
        }
        guard changed else { return false }
        guard var ordered = topologicallyOrdered(g) else { throw IRError("fuse-moments: the fused graph has a cycle") }
        _ = try DeadCodeElimination().run(&ordered, registry: registry)
        graph = ordered
        return true
    }
}
