/// Pairs a softmax cross-entropy with its gradient: when a training step
/// computes both softmax_cross_entropy(z, y) and softmax_cross_entropy_grad
/// (z, y, g), one softmax_cross_entropy_fused call makes the gradient and the
/// per-row loss together, and two views read them from its packed result.
/// The call runs where the gradient did (the loss's readers move after it),
/// so the cotangent must not depend on the loss values; shapes must be known.
public final class LossFusion: DecisionRecordingPass, GraphPass {
    public var name: String { "fuse-loss" }

    public func run(_ graph: inout Graph, registry: OpRegistry) throws -> Bool {
        decisions = []
        let uses = GraphUses(graph)
        func ref(_ i: Int) -> String { uses.ref(i) }
        var g = graph
        var changed = false
        for gi in graph.nodes.indices where graph.nodes[gi].kind == .softmaxCrossEntropyGrad {
            let grad = graph.nodes[gi]
            guard let fi = graph.nodes.indices.first(where: {
                graph.nodes[$0].kind == .softmaxCrossEntropy && graph.nodes[$0].inputs == Array(grad.inputs.prefix(2)) && graph.nodes[$0].attrs == grad.attrs
            }) else {
                decisions.append("not fused \(ref(gi)): no softmax_cross_entropy of the same logits and targets")
                continue
            }
            let z = graph.type(of: grad.inputs[0])
            guard z.isFullyKnown, let classes = z.shape.last else {
                decisions.append("not fused \(ref(fi)), \(ref(gi)): logits \(z) have unknown dimensions, and the packed result needs its size")
                continue
            }
            if depends(grad.inputs[2].id, on: fi, in: graph) {
                decisions.append("not fused \(ref(fi)), \(ref(gi)): the cotangent \(ref(grad.inputs[2].id)) depends on the loss values")
                continue
            }
            let rows = z.shape.dropLast().reduce(1, *)
            let packed = Value(g.nodes.count)
            g.nodes.append(Node(kind: .softmaxCrossEntropyFused, inputs: grad.inputs, attrs: grad.attrs, type: .f32([rows * classes + rows]),
                                layer: graph.nodes[fi].layer ?? grad.layer))
            g.nodes[gi] = Node(kind: .view, inputs: [packed], attrs: ["shape": .ints(z.shape), "offset": .int(0)], type: grad.type,
                               name: grad.name, layer: grad.layer)
            g.nodes[fi] = Node(kind: .view, inputs: [packed], attrs: ["shape": .ints(Array(z.shape.dropLast())), "offset": .int(rows * classes)],
                               type: graph.nodes[fi].type, name: graph.nodes[fi].name, layer: graph.nodes[fi].layer)
            decisions.append("fused softmax_cross_entropy \(ref(fi)) + softmax_cross_entropy_grad \(ref(gi)) -> softmax_cross_entropy_fused")
            changed = true
        }
        guard changed else { return false }
        guard let ordered = topologicallyOrdered(g) else { throw IRError("fuse-loss: the fused graph has a cycle") }
        graph = ordered
        return true
    }

    /// Whether value `v` is computed from node `target`.
    private func depends(_ v: Int, on target: Int, in g: Graph) -> Bool {
        var seen = Set<Int>(), stack = [v]
        while let i = stack.popLast() {
            if i == target { return true }
            for x in g.nodes[i].inputs where x.id >= target && seen.insert(x.id).inserted { stack.append(x.id) }
        }
        return false
    }
}
