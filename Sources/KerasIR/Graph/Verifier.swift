/// Checks a graph's invariants: known ops with the right arity, inputs that
/// refer to earlier nodes, types that agree with the shape rules, unique
/// non-numeric names, valid outputs, and assigns that target parameters.
/// The pass pipeline runs it after every pass in debug and test builds.
public enum Verifier {
    public static func verify(_ g: Graph, registry: OpRegistry = .standard) throws {
        var names = Set<String>()
        var assigned = Set<Int>()
        for (i, n) in g.nodes.enumerated() {
            let at = "@\(g.name) node \(i) (\(n.op))"
            guard let def = registry[n.op] else { throw IRError("\(at): unknown op '\(n.op)'") }
            guard def.arity.accepts(n.inputs.count) else {
                throw IRError("\(at): takes \(def.arity) inputs, has \(n.inputs.count)")
            }
            for v in n.inputs where v.id < 0 || v.id >= i {
                throw IRError("\(at): input \(v) is not defined before it")
            }
            for v in n.inputs where registry[g.nodes[v.id].op]?.updatesParameters == true {
                throw IRError("\(at): reads the result of \(g.nodes[v.id].op) node \(v.id); only graph outputs may")
            }
            if let name = n.name {
                guard !name.isEmpty, !name.allSatisfy(\.isNumber) else { throw IRError("\(at): bad value name '\(name)'") }
                guard names.insert(name).inserted else { throw IRError("\(at): value name %\(name) is defined twice") }
            }
            if let written = def.writtenParameters {
                for k in try written(n) {
                    guard k >= 0, k < n.inputs.count, g.nodes[n.inputs[k].id].kind == .parameter else {
                        throw IRError("\(at): \(n.op) target must be a parameter")
                    }
                    guard assigned.insert(n.inputs[k].id).inserted else {
                        throw IRError("\(at): parameter %\(g.nodes[n.inputs[k].id].name ?? "?") is assigned twice")
                    }
                }
            }
            let rule = def.shape
            let inferred: TensorType
            do {
                inferred = try rule(ShapeContext(op: n.op, inputs: n.inputs.map { g.nodes[$0.id].type },
                                                 attrs: n.attrs, declared: n.type))
            } catch let e as ShapeError {
                throw IRError.at(layer: n.layer, "\(at): \(e.message)")
            } catch let e as AttributeError {
                throw IRError.at(layer: n.layer, "\(at): \(e)")
            }
            guard inferred == n.type else {
                throw IRError("\(at): has type \(n.type) but its shape rule gives \(inferred)")
            }
        }
        for v in g.outputs where v.id < 0 || v.id >= g.nodes.count {
            throw IRError("@\(g.name): output \(v) is not a node")
        }
    }
}
