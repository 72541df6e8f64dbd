#if canImport(Glibc)
import Glibc
#endif

extension Layer {
    /// Loads weights from a Keras 3 `.weights.h5`, a Keras 2-layout `.h5`
    /// (weights only, or a whole model's `model_weights`), a `.keras` archive
    /// (its `model.weights.h5`) or a NumPy `.npz`, told apart by their bytes.
    /// `byName` (legacy .h5 only, as in Keras) matches layers by name and
    /// skips the rest; `skipMismatch` skips a layer whose weights differ in
    /// count or shape, with a warning, instead of failing. Every weight is
    /// checked before any changes: a failed load lists every missing,
    /// unexpected or mis-shaped weight and leaves the model as it was.
    public func loadWeights(from path: String, byName: Bool = false, skipMismatch: Bool = false) throws {
        let bytes = try readFileBytes(path)
        let assignments: [(Variable, Tensor)]
        var optimizerFile: HDF5File? = nil
        if bytes.starts(with: HDF5File.signature) {
            let f = try HDF5File(bytes: bytes, name: path)
            assignments = try hdf5Assignments(f, byName: byName, skipMismatch: skipMismatch)
            optimizerFile = f
        } else if bytes.starts(with: [0x50, 0x4b]) {
            let entries = try ZipArchive.read(bytes, name: path, kind: path.hasSuffix(".npz") ? "npz" : "keras")
            if let h5 = entries.first(where: { $0.0 == "model.weights.h5" }) {
                let f = try HDF5File(bytes: h5.1, name: "\(path)[model.weights.h5]")
                assignments = try keras3Assignments(f, skipMismatch: skipMismatch)
            } else {
                assignments = try npzAssignments(bytes, path: path)
            }
        } else {
            throw KerasError("\(name): \(path) is not a weights file (neither HDF5, a .keras archive nor .npz)")
        }
        if let f = optimizerFile { try loadOptimizerState(f) }
        for (v, t) in assignments { try v.assign(t) }
    }

    func hdf5Assignments(_ f: HDF5File, byName: Bool, skipMismatch: Bool) throws -> [(Variable, Tensor)] {
        let root = try f.root()
        if try root.attributes()["layer_names"] != nil || root.attributes()["layer_names0"] != nil {
            return try legacyAssignments(f, root, byName: byName, skipMismatch: skipMismatch)
        }
        if try root.links()["model_weights"] != nil {
            return try legacyAssignments(f, try root.child("model_weights"), byName: byName, skipMismatch: skipMismatch)
        }
        guard !byName else {
            throw KerasError("\(name): \(f.name): by_name loading applies to legacy .h5 files; this is a Keras 3 .weights.h5, which matches by structure")
        }
        return try keras3Assignments(f, skipMismatch: skipMismatch)
    }

    /// Keras 3's layout: the dataset at every path of `weightsTree`.
    func keras3Assignments(_ f: HDF5File, skipMismatch: Bool) throws -> [(Variable, Tensor)] {
        let tree = weightsTree
        var problems: [String] = [], out: [(Variable, Tensor)] = []
        let expected = tree.datasets()
        for (path, v) in expected {
            guard let o = try f.objectIfPresent(at: path), o.isDataset else { problems.append("missing \(path) (for \(v.path) \(formatShape(v.shape.map { $0 })))"); continue }
            let (shape, values) = try o.floats()
            guard shape == v.shape else {
                let what = "\(path) has shape \(formatShape(shape.map { $0 })), \(v.path) is \(formatShape(v.shape.map { $0 }))"
                if skipMismatch { warn("\(name): skipping \(what)") } else { problems.append(what) }
                continue
            }
            out.append((v, try Tensor(values, shape: shape)))
        }
        // Datasets the model has no variable for.
        let known = Set(expected.map(\.path))
        for group in tree.groups() {
            guard let vars = try f.objectIfPresent(at: group + "vars") else { continue }
            for k in try vars.childNames() where !known.contains(group + "vars/" + k) { problems.append("unexpected \(group)vars/\(k)") }
        }
        guard problems.isEmpty else {
            throw KerasError("\(name): \(f.name) does not fit this model; nothing was loaded: " + problems.joined(separator: "; "))
        }
        return out
    }

    /// A compiled model takes the optimizer's variables a .weights.h5 holds (Keras does the same).
    func loadOptimizerState(_ f: HDF5File) throws {
        guard let m = self as? Model, let opt = m.optimizer, let vars = try f.objectIfPresent(at: "optimizer/vars") else { return }
        let arrays = try vars.childNames().compactMap(Int.init).sorted().map { try vars.child(String($0)).floats() }
        guard arrays.count > 2 || opt.iterations == 0 else { return }
        // As Keras: an optimizer state that does not fit is skipped with a warning; the weights still load.
        do { try opt.loadKerasState(arrays, for: m.trainableWeights, file: f.name) } catch { warn("\(name): skipping the optimizer's saved state: \(error)") }
    }

    /// Keras 2's layout: `layer_names`, and per layer group its `weight_names` in weight order.
    func legacyAssignments(_ f: HDF5File, _ group: HDF5Object, byName: Bool, skipMismatch: Bool) throws -> [(Variable, Tensor)] {
        var names = try group.stringAttribute("layer_names") ?? []
        var chunk = 0
        while let more = try group.stringAttribute("layer_names\(chunk)") { names += more; chunk += 1 }
        var fileLayers: [(name: String, weights: [(String, HDF5Object)])] = []
        for n in names {
            let g = try group.child(n)
            let weightNames = try g.stringAttribute("weight_names") ?? []
            fileLayers.append((n, try weightNames.map { w in (w, try w.split(separator: "/").reduce(g) { try $0.child(String($1)) }) }))
        }
        // Keras's legacy order: a layer's trainable weights, then its non-trainable ones.
        let modelLayers: [Layer] = (self as? Model)?.layers ?? [self]
        func legacyWeights(_ l: Layer) -> [Variable] { l.weights.filter(\.trainable) + l.weights.filter { !$0.trainable } }
        var pairs: [(Layer, (name: String, weights: [(String, HDF5Object)]))] = []
        if byName {
            let byLayer = Dictionary(fileLayers.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
            pairs = modelLayers.compactMap { l in byLayer[l.name].map { (l, $0) } }
        } else {
            let withWeights = modelLayers.filter { !$0.weights.isEmpty }, fileWith = fileLayers.filter { !$0.weights.isEmpty }
            guard withWeights.count == fileWith.count else {
                throw KerasError("\(name): \(f.name) holds weights for \(fileWith.count) layers (\(fileWith.map(\.name).joined(separator: ", "))), this model has \(withWeights.count) layers with weights (\(withWeights.map(\.name).joined(separator: ", "))); nothing was loaded")
            }
            pairs = Array(zip(withWeights, fileWith))
        }
        var problems: [String] = [], out: [(Variable, Tensor)] = []
        for (l, fl) in pairs {
            let vs = legacyWeights(l)
            var values: [(Variable, Tensor)] = []
            var mismatch: String? = vs.count == fl.weights.count ? nil
                : "layer \(l.name) has \(vs.count) weights, the file's \(fl.name) has \(fl.weights.count)"
            if mismatch == nil {
                for (v, (wname, o)) in zip(vs, fl.weights) {
                    let (shape, data) = try o.floats()
                    if shape != v.shape {
                        mismatch = "\(fl.name)/\(wname) has shape \(formatShape(shape.map { $0 })), \(v.path) is \(formatShape(v.shape.map { $0 }))"
                        break
                    }
                    values.append((v, try Tensor(data, shape: shape)))
                }
            }
            if let m = mismatch {
                if skipMismatch { warn("\(name): skipping \(m)") } else { problems.append(m) }
                continue
            }
            out += values
        }
        guard problems.isEmpty else {
            throw KerasError("\(name): \(f.name) does not fit this model; nothing was loaded: " + problems.joined(separator: "; "))
        }
        return out
    }
}

func warn(_ message: String) { fputs("warning: \(message)\n", stderr) }
