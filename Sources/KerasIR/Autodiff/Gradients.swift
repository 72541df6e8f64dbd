/// Reverse-mode autodiff as a graph-to-graph transformation: appends to the
/// graph the nodes that compute d(y)/d(x) for each requested x, built from
/// each op's VJP rule, and returns those values. Fan-out is accumulated with
/// `add`; inputs that y does not depend on get zeros.
public enum Autodiff {
    public static func gradients(of y: Value, wrt xs: [Value], in graph: inout Graph,
                                 registry: OpRegistry = .standard) throws -> [Value] {
        let yType = graph.type(of: y)
        guard yType.dtype == .f32, yType.elementCount == 1 else {
            throw IRError("gradients: the differentiated value must be an f32 scalar, got \(yType)")
        }
        for x in xs {
            guard x.id >= 0 && x.id < graph.nodes.count else { throw IRError("gradients: \(x) is not in @\(graph.name)") }
            guard graph.type(of: x).dtype == .f32 else {
                throw IRError("gradients: cannot differentiate with respect to \(graph.type(of: x)) value %\(graph[x].name ?? String(x.id))")
            }
        }
        let count = y.id + 1
        // Values on a path from some x to y.
        var fromX = [Bool](repeating: false, count: count)
        let xSet = Set(xs.map(\.id))
        for i in 0..<count {
            fromX[i] = xSet.contains(i) || graph.nodes[i].inputs.contains { $0.id < count && fromX[$0.id] }
        }
        var toY = [Bool](repeating: false, count: count)
        toY[y.id] = true
        for i in stride(from: y.id, through: 0, by: -1) where toY[i] {
            for v in graph.nodes[i].inputs { toY[v.id] = true }
        }

        let b = GraphBuilder(extending: graph, registry: registry)
        var cotangent: [Int: Value] = [:]
        cotangent[y.id] = try b.withLayer(graph[y].layer) {
            try b.constant([Float(1)], shape: yType.shape)
        }

        for i in stride(from: y.id, through: 0, by: -1) {
            guard fromX[i], toY[i], let g = cotangent[i] else { continue }
            let node = graph.nodes[i]
            if node.inputs.isEmpty { continue }
            let def = try registry.lookup(node.op)
            guard case .vjp(let rule) = def.differentiability else { continue }
            let grads = try b.withLayer(node.layer) {
                try rule(b, VJPArguments(inputs: node.inputs, output: Value(i), attrs: node.attrs), g)
            }
            guard grads.count == node.inputs.count else {
                throw IRError.at(layer: node.layer, "gradients: VJP of \(node.op) returned \(grads.count) cotangents for \(node.inputs.count) inputs")
            }
            for (input, grad) in zip(node.inputs, grads) {
                guard let grad, fromX[input.id] else { continue }
                let want = graph.type(of: input), got = b.type(of: grad)
                guard want.rank == got.rank, zip(want.shape, got.shape).allSatisfy({ $0 == $1 || $0 == TensorType.unknown || $1 == TensorType.unknown }) else {
                    throw IRError.at(layer: node.layer, "gradients: VJP of \(node.op) produced \(got) for an input of type \(want)")
                }
                if let existing = cotangent[input.id] {
                    cotangent[input.id] = try b.withLayer(node.layer) { try b.add(existing, grad) }
                } else {
                    cotangent[input.id] = grad
                }
            }
        }

        var result: [Value] = []
        for x in xs {
            if let g = cotangent[x.id] { result.append(g); continue }
            let t = graph.type(of: x)
            if t.isFullyKnown {
                result.append(try b.constant([Float(0)], shape: t.shape))
            } else {
                result.append(try b.broadcast(b.scalar(0), like: x))
            }
        }
        graph = b.graph
        return result
    }
}
