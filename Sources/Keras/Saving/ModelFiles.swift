/// Whole-model files: Keras's model JSON and `.keras` archives, and legacy
/// whole-model `.h5` files (their `model_config` attribute and
/// `model_weights` group).

/// A model from `model.to_json()` text (Keras 3's layout, or the Keras 2
/// layouts the layer registry reads). Custom layer classes are looked up in
/// `customObjects` first, by Keras class name.
public func modelFromJSON(_ text: String, customObjects: [String: Layer.Type] = [:]) throws -> Model {
    let json: JSON
    do { json = try JSON.parse(text) } catch { throw KerasError("model JSON: \(error)") }
    for (name, type) in customObjects { LayerRegistry.register(type, as: name) }
    let layer = try LayerRegistry.deserialize(json)
    guard let model = layer as? Model else {
        throw KerasError("model JSON describes a \(layer.kerasClassName), not a model (Sequential or Functional)")
    }
    return model
}

/// A model saved by Keras (or this library): a `.keras` archive (config and
/// weights) or a legacy whole-model `.h5` (`model_config` and
/// `model_weights`), told apart by their bytes. The weights are checked
/// against the model before any is set.
public func loadModel(from path: String, customObjects: [String: Layer.Type] = [:]) throws -> Model {
    let bytes = try readFileBytes(path)
    if bytes.starts(with: HDF5File.signature) {
        let f = try HDF5File(bytes: bytes, name: path)
        let root = try f.root()
        guard let config = try root.stringAttribute("model_config")?.first else {
            throw KerasError("\(path): an HDF5 file without a model_config attribute holds weights only; build the model and call loadWeights(from:)")
        }
        let model = try modelFromJSON(config, customObjects: customObjects)
        let weights = try root.links()["model_weights"] != nil ? try root.child("model_weights") : root
        for (v, t) in try model.legacyAssignments(f, weights, byName: false, skipMismatch: false) { try v.assign(t) }
        return model
    }
    let entries = try ZipArchive.read(bytes, name: path, kind: "keras")
    guard let config = entries.first(where: { $0.0 == "config.json" }) else {
        throw KerasError("\(path): a .keras archive needs config.json (entries: \(entries.map(\.0).joined(separator: ", ")))")
    }
    let model = try modelFromJSON(String(decoding: config.1, as: UTF8.self), customObjects: customObjects)
    if let h5 = entries.first(where: { $0.0 == "model.weights.h5" }) {
        let f = try HDF5File(bytes: h5.1, name: "\(path)[model.weights.h5]")
        for (v, t) in try model.keras3Assignments(f, skipMismatch: false) { try v.assign(t) }
    }
    return model
}
