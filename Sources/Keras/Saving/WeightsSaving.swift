extension Layer {
    /// Writes every weight, in the format the file name asks for:
    /// `.weights.h5` Keras 3's layout (what `model.load_weights` reads),
    /// `.h5` Keras 2's layout (`layer_names`, `weight_names`), `.npz` a NumPy
    /// archive. Through a temporary file and a rename, so a failed save
    /// leaves any old file as it was.
    public func saveWeights(to path: String) throws {
        let bytes: [UInt8]
        if path.hasSuffix(".weights.h5") {
            bytes = try HDF5Writer.write(keras3WeightsNode())
        } else if path.hasSuffix(".h5") || path.hasSuffix(".hdf5") {
            bytes = try HDF5Writer.write(legacyWeightsNode())
        } else if path.hasSuffix(".npz") {
            bytes = try NumPy.encodeArchive(weights.map { ($0.path, $0.value) })
        } else {
            throw KerasError("\(name): saveWeights(to:) picks the format by extension: .weights.h5 (Keras 3), .h5 (Keras 2 layout) or .npz; got '\(path)'")
        }
        try writeFileAtomically(path, bytes)
    }

    /// Writes weights as `.npz` (the original entry point; see saveWeights(to:)).
    public func saveWeights(_ path: String) throws {
        guard path.hasSuffix(".npz") else {
            throw KerasError("\(name): saveWeights(_:) writes NumPy .npz archives; use saveWeights(to:) for '\(path)'")
        }
        try saveWeights(to: path)
    }

    /// Keras 3's .weights.h5 tree for this layer (or model).
    func keras3WeightsNode() throws -> HDF5Writer.Node {
        func node(_ t: WeightsTree) -> [(String, HDF5Writer.Node)] {
            var children: [(String, HDF5Writer.Node)] = []
            if t.hasVars {
                let vars = t.variables.enumerated().map { i, v in
                    (String(i), HDF5Writer.Node.dataset(shape: v.shape, data: datasetData(v), attributes: []))
                }
                children.append(("vars", .group(attributes: [("name", .strings([t.name], scalar: true, utf8: true))], children: vars)))
            }
            for c in t.children { children.append((c.key, .group(attributes: [], children: node(c.tree)))) }
            return children
        }
        var children = node(weightsTree)
        // A compiled model's optimizer variables follow, as Keras's save_weights writes them.
        if let m = self as? Model, let opt = try m.optimizerNode() { children.append(("optimizer", opt)) }
        return .group(attributes: [], children: children)
    }

    /// Keras 2's layout: one group per layer, named by layer name, with its
    /// `weight_names` (the variables' paths, which nest groups below it).
    func legacyWeightsNode() throws -> HDF5Writer.Node {
        let layers: [Layer] = (self as? Model)?.layers ?? [self]
        var groups: [(String, HDF5Writer.Node)] = []
        for l in layers {
            let vs = l.weights.filter(\.trainable) + l.weights.filter { !$0.trainable }
            let tree = GroupBuilder()
            for v in vs { try tree.insert(v.path.split(separator: "/").map(String.init), .dataset(shape: v.shape, data: datasetData(v), attributes: []), in: l.name) }
            let names: HDF5Writer.Attribute = vs.isEmpty ? .float64s([]) : .strings(vs.map(\.path), scalar: false, utf8: false)
            groups.append((l.name, .group(attributes: [("weight_names", names)], children: tree.nodes)))
        }
        if self is Model {
            groups.append(("top_level_model_weights", .group(attributes: [("weight_names", .float64s([]))], children: [])))
        }
        let attributes: [(String, HDF5Writer.Attribute)] = [
            ("layer_names", .strings(layers.map(\.name), scalar: false, utf8: false)),
            ("backend", .strings(["swift"], scalar: true, utf8: false)),
            ("keras_version", .strings([kerasFormatVersion], scalar: true, utf8: false)),
        ]
        return .group(attributes: attributes, children: groups)
    }
}

/// The Keras version whose file formats this library writes (Keras reads
/// files by version: older numbers trigger Keras 1/2 conversions).
public let kerasFormatVersion = "3.15.1"

func datasetData(_ v: Variable) -> HDF5Writer.Data {
    v.dtype == .i32 ? .i32((try? v.value.ints) ?? []) : .f32(v.value.floats)
}

/// Builds nested groups from slash-separated dataset paths.
final class GroupBuilder {
    var children: [(String, Either)] = []
    enum Either { case group(GroupBuilder), node(HDF5Writer.Node) }

    func insert(_ path: [String], _ leaf: HDF5Writer.Node, in context: String) throws {
        guard let first = path.first, !first.isEmpty else { throw KerasError("\(context): an empty weight path") }
        if path.count == 1 {
            guard !children.contains(where: { $0.0 == first }) else { throw KerasError("\(context): two weights at '\(first)'") }
            children.append((first, .node(leaf)))
            return
        }
        let g: GroupBuilder
        if let existing = children.first(where: { $0.0 == first }) {
            guard case .group(let eg) = existing.1 else { throw KerasError("\(context): '\(first)' is both a weight and a group") }
            g = eg
        } else {
            g = GroupBuilder()
            children.append((first, .group(g)))
        }
        try g.insert(Array(path.dropFirst()), leaf, in: context)
    }

    var nodes: [(String, HDF5Writer.Node)] {
        children.map { name, e in
            switch e {
            case .group(let g): return (name, .group(attributes: [], children: g.nodes))
            case .node(let n): return (name, n)
            }
        }
    }
}
