/// Whole-model files: Keras's model JSON and `.keras` archives, and legacy
/// whole-model `.h5` files (their `model_config` attribute and
/// `model_weights` group).

/// A model from `model.to_json()` text (Keras 3's layout, or the Keras 2
/// layouts the layer registry reads). Custom layer classes are looked up in
/// `customObjects` first, by Keras class name.
public func modelFromJSON(_ text: String, customObjects: [String: Layer.Type] = [:], compile: Bool = true) throws -> Model {
    let json: JSON
    do { json = try JSON.parse(text) } catch { throw KerasError("model JSON: \(error)") }
    for (name, type) in customObjects { LayerRegistry.register(type, as: name) }
    let layer = try LayerRegistry.deserialize(json)
    guard let model = layer as? Model else {
        throw KerasError("model JSON describes a \(layer.kerasClassName), not a model (Sequential or Functional)")
    }
    // As Keras's deserialization: a saved compile config compiles the model.
    if compile, let cc = json["compile_config"], cc.objectValue?.isEmpty == false {
        do { try model.compile(fromConfig: cc) } catch { throw KerasError("model JSON: compile_config: \(error)") }
    }
    return model
}

/// A model from YAML (`toYAML()` output, or Keras 2's `model.to_yaml()`):
/// the same objects as the JSON path, in the YAML subset `YAML` reads.
public func modelFromYAML(_ text: String, customObjects: [String: Layer.Type] = [:], compile: Bool = true) throws -> Model {
    try modelFromJSON(YAML.parse(text).serialized(), customObjects: customObjects, compile: compile)
}

extension Model {
    /// The model's architecture (and compile arguments) as YAML: the object
    /// `toJSON()` writes, which `modelFromYAML` reads back.
    public func toYAML() -> String { YAML.emit(kerasSerialized) }
}

/// A model saved by Keras (or this library): a `.keras` archive (config and
/// weights) or a legacy whole-model `.h5` (`model_config` and
/// `model_weights`), told apart by their bytes. The weights are checked
/// against the model before any is set. With `compile`, a model saved
/// compiled comes back compiled, with the optimizer's state from a `.keras`
/// file, so training resumes where it stopped.
public func loadModel(from path: String, customObjects: [String: Layer.Type] = [:], compile: Bool = true) throws -> Model {
    let bytes = try readFileBytes(path)
    if bytes.starts(with: HDF5File.signature) {
        let f = try HDF5File(bytes: bytes, name: path)
        let root = try f.root()
        guard let config = try root.stringAttribute("model_config")?.first else {
            throw KerasError("\(path): an HDF5 file without a model_config attribute holds weights only; build the model and call loadWeights(from:)")
        }
        let model = try modelFromJSON(config, customObjects: customObjects, compile: false)
        let weights = try root.links()["model_weights"] != nil ? try root.child("model_weights") : root
        for (v, t) in try model.legacyAssignments(f, weights, byName: false, skipMismatch: false) { try v.assign(t) }
        if compile, let tc = try root.stringAttribute("training_config")?.first {
            do { try model.compile(fromConfig: try JSON.parse(tc)) } catch { throw KerasError("\(path): training_config: \(error)") }
        }
        return model
    }
    let entries = try ZipArchive.read(bytes, name: path, kind: "keras")
    guard let config = entries.first(where: { $0.0 == "config.json" }) else {
        throw KerasError("\(path): a .keras archive needs config.json (entries: \(entries.map(\.0).joined(separator: ", ")))")
    }
    let text = String(decoding: config.1, as: UTF8.self)
    let model = try modelFromJSON(text, customObjects: customObjects, compile: compile)
    var assignments: [(Variable, Tensor)] = []
    var optimizerState: [(shape: [Int], values: [Float])] = []
    var weightsFile: HDF5File? = nil
    if let h5 = entries.first(where: { $0.0 == "model.weights.h5" }) {
        let f = try HDF5File(bytes: h5.1, name: "\(path)[model.weights.h5]")
        weightsFile = f
        assignments = try model.keras3Assignments(f, skipMismatch: false)
        if compile, let vars = try f.objectIfPresent(at: "optimizer/vars") {
            let names = try vars.childNames().compactMap(Int.init).sorted()
            optimizerState = try names.map { try vars.child(String($0)).floats() }
        }
    }
    if let opt = model.optimizer, !optimizerState.isEmpty {
        try opt.loadKerasState(optimizerState, for: model.trainableWeights, file: weightsFile?.name ?? path)
    }
    for (v, t) in assignments { try v.assign(t) }
    return model
}
