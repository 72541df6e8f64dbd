import KerasIR

/// Re-infers every type of a graph with concrete input shapes, so that
/// unknown dimensions (the batch) become numbers. Errors name the input or
/// the node (and its layer) whose shape no longer works.
public func specialize(_ g: Graph, inputShapes: [String: [Int]], registry: OpRegistry = .standard) throws -> Graph {
    var out = g
    for name in inputShapes.keys where !g.inputs.contains(where: { g[$0].name == name }) {
        throw IRError("@\(g.name) has no input %\(name)")
    }
    for (i, n) in g.nodes.enumerated() {
        if n.kind == .input {
            let name = n.name ?? "v\(i)"
            guard let shape = inputShapes[name] else { throw IRError("no shape given for input %\(name) \(n.type)") }
            guard shape.count == n.type.rank,
                  zip(shape, n.type.shape).allSatisfy({ $0 >= 0 && ($1 == TensorType.unknown || $0 == $1) }) else {
                throw IRError("input %\(name) expects \(n.type), got shape \(shape)")
            }
            out.nodes[i].type = TensorType(n.type.dtype, shape)
            do { try out.nodes[i].type.checkSize() } catch let e as ShapeError { throw IRError("input %\(name): \(e.message)") }
            continue
        }
        if n.kind == .parameter { continue }
        let def = try registry.lookup(n.op)
        let types = n.inputs.map { out.nodes[$0.id].type }
        do {
            out.nodes[i].type = try def.shape(ShapeContext(op: n.op, inputs: types, attrs: n.attrs, declared: n.type))
            try out.nodes[i].type.checkSize()
        } catch let e as ShapeError {
            throw IRError.at(layer: n.layer, e.message)
        } catch let e as AttributeError {
            throw IRError.at(layer: n.layer, "\(n.op): \(e)")
        }
        guard out.nodes[i].type.isFullyKnown else {
            throw IRError.at(layer: n.layer, "\(n.op) result \(out.nodes[i].type) is still unknown with the given input shapes")
        }
    }
    return out
}

/// The graph with every unknown dimension of every input set to `batchSize`.
public func specialize(_ g: Graph, batchSize: Int, registry: OpRegistry = .standard) throws -> Graph {
    guard batchSize > 0 else { throw IRError("batch size must be positive, got \(batchSize)") }
    return try specialize(g, inputShapes: batchShapes(g, batchSize), registry: registry)
}

/// Each input's shape with its unknown dimensions set to `batchSize`.
func batchShapes(_ g: Graph, _ batchSize: Int) -> [String: [Int]] {
    var shapes: [String: [Int]] = [:]
    for v in g.inputs { shapes[g[v].name ?? "v\(v.id)"] = g.type(of: v).shape.map { $0 == TensorType.unknown ? batchSize : $0 } }
    return shapes
}
