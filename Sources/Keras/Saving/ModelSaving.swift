import KerasRuntime
#if canImport(Glibc)
import Glibc
#endif

extension Model {
    /// Keras 3's serialized model (`model.to_json()`'s object): module,
    /// class_name, config, registered_name, build_config, compile_config.
    public var kerasSerialized: JSON {
        let functional = !(self is Sequential)
        var j = serialized(module: functional ? "keras.src.models.functional" : "keras", className: kerasClassName, config: config)
        if functional { j.set("registered_name", "Functional") }
        let shape: JSON = !functional && isBuilt ? (inputs.first.map { JSON(shape: $0.shape) } ?? .null) : .null
        j.set("build_config", ["input_shape": shape])
        j.set("compile_config", isCompiled ? training!.compileConfig : [:])
        return j
    }

    /// `model.to_json()`: the model's architecture and compile arguments, which
    /// Keras's `model_from_json` and `modelFromJSON` read back.
    public func toJSON(indent: Int? = nil) -> String { kerasSerialized.serialized(indent: indent) }

    /// The optimizer's group of a .weights.h5 (`optimizer/vars/<i>`), when compiled.
    func optimizerNode() throws -> HDF5Writer.Node? {
        guard let opt = optimizer, let state = try opt.kerasState(for: trainableWeights) else { return nil }
        let vars = state.enumerated().map { (String($0.offset), $0.element) }
        return .group(attributes: [], children: [
            ("vars", .group(attributes: [("name", .strings([opt.name], scalar: true, utf8: true))], children: vars)),
        ])
    }

    /// Saves the whole model: `.keras` (Keras 3's archive: metadata.json,
    /// config.json, model.weights.h5 with the optimizer's state when
    /// compiled) or `.h5` (Keras 2's whole-model file: model_config,
    /// training_config, model_weights). Through a temporary file and a rename.
    public func save(to path: String) throws {
        if path.hasSuffix(".keras") {
            let weights = try HDF5Writer.write(try keras3WeightsNode())
            let meta: JSON = ["keras_version": .string(kerasFormatVersion), "date_saved": .string(savedDate())]
            let zip = try ZipArchive.write([("metadata.json", Array(meta.serialized().utf8)), ("config.json", Array(toJSON().utf8)),
                                            ("model.weights.h5", weights)], kind: "keras")
            try writeFileAtomically(path, zip)
        } else if path.hasSuffix(".h5") || path.hasSuffix(".hdf5") {
            let config: JSON = ["class_name": .string(kerasClassName), "config": self.config]
            var attributes: [(String, HDF5Writer.Attribute)] = [
                ("backend", .strings(["swift"], scalar: true, utf8: true)),
                ("keras_version", .strings([kerasFormatVersion], scalar: true, utf8: true)),
                ("model_config", .strings([config.serialized()], scalar: true, utf8: false)),
            ]
            if let t = training, t.isCompiled {
                // Keras 2's training_config: the compile arguments plus optimizer_config.
                var tc = t.compileConfig
                tc.set("optimizer_config", ["class_name": .string(type(of: t.optimizer).kerasClassName), "config": t.optimizer.config])
                attributes.append(("training_config", .strings([tc.serialized()], scalar: true, utf8: false)))
            }
            let file = HDF5Writer.Node.group(attributes: attributes, children: [("model_weights", try legacyWeightsNode())])
            try writeFileAtomically(path, try HDF5Writer.write(file))
        } else {
            throw KerasError("\(name): save(to:) writes .keras or .h5 files, got '\(path)' (weights alone: saveWeights(to:) with .weights.h5)")
        }
    }

    /// Compiles from a saved compile_config (optimizer, loss, metrics).
    func compile(fromConfig cc: JSON) throws {
        guard let opt = cc["optimizer"].flatMap({ $0.isNull ? nil : $0 }) ?? cc["optimizer_config"], !opt.isNull,
              let loss = cc["loss"], !loss.isNull else { return }
        let losses = try (loss.arrayValue ?? [loss]).map { try Loss.get($0) }
        let metrics = (cc["metrics"]?.arrayValue ?? []).compactMap(\.stringValue)
        let weights = cc["loss_weights"]?.arrayValue?.compactMap { $0.doubleValue.map(Float.init) }
        try compile(optimizer: try Optimizers.get(opt), loss: losses, metrics: metrics, lossWeights: weights)
    }
}

extension Optimizer {
    /// The optimizer's variables in the order Keras saves them for a model
    /// whose trainable weights are `variables`: iteration (int32), learning
    /// rate, then the slots by `kerasSlotGroups`. Before the first step only
    /// the first two exist, as in Keras. Nil when Keras's layout is unknown.
    func kerasState(for variables: [Variable]) throws -> [HDF5Writer.Node]? {
        guard let groups = kerasSlotGroups else {
            warn("\(name): the optimizer's state is not saved (Keras's layout for \(Self.kerasClassName) is not implemented)")
            return nil
        }
        var out: [HDF5Writer.Node] = [.dataset(shape: [], data: .i32([Int32(clamping: iterations)]), attributes: []),
                                      .dataset(shape: [], data: .f32([currentLearningRate]), attributes: [])]
        guard !slots.isEmpty else { return out }
        for group in groups {
            for v in variables {
                for slot in group {
                    let values = slots["\(name)/\(v.path)/\(slot)"]?.tensor.floats ?? [Float](repeating: 0, count: v.value.count)
                    out.append(.dataset(shape: v.shape, data: .f32(values), attributes: []))
                }
            }
        }
        return out
    }

    /// Restores what kerasState wrote (or Keras saved) for `variables`,
    /// after checking every array's count and shape.
    func loadKerasState(_ arrays: [(shape: [Int], values: [Float])], for variables: [Variable], file: String) throws {
        guard arrays.count >= 2 else { throw KerasError("\(file): optimizer/vars holds \(arrays.count) arrays; at least iteration and learning_rate were expected") }
        var slotValues: [(String, [Float])] = []
        if arrays.count > 2 {
            guard let groups = kerasSlotGroups else {
                throw KerasError("\(file): cannot restore a \(Self.kerasClassName)'s state (Keras's layout for it is not implemented)")
            }
            let expected = groups.reduce(0) { $0 + $1.count } * variables.count
            guard arrays.count - 2 == expected else {
                throw KerasError("\(file): optimizer/vars holds \(arrays.count - 2) slot arrays; \(Self.kerasClassName) over \(variables.count) trainable weights has \(expected)")
            }
            var k = 2
            for group in groups {
                for v in variables {
                    for slot in group {
                        guard arrays[k].shape == v.shape else {
                            throw KerasError("\(file): optimizer/vars/\(k) (\(slot) of \(v.path)) has shape \(arrays[k].shape), the weight \(v.shape)")
                        }
                        slotValues.append(("\(name)/\(v.path)/\(slot)", arrays[k].values))
                        k += 1
                    }
                }
            }
        }
        for (key, values) in slotValues {
            let v = variables.first { key.hasPrefix("\(name)/\($0.path)/") }!
            if slots[key] == nil { slots[key] = try ParameterStore.Buffer(v.type) }
            try slots[key]!.store(try Tensor(values, shape: v.shape))
        }
        iterationsBuffer.pointer.storeBytes(of: arrays[0].values.first ?? 0, as: Float.self)
        if case .constant = learningRate, let lr = arrays[1].values.first { currentLearningRate = lr }
    }
}

/// Keras's date_saved format, UTC: "YYYY-MM-DD@HH:MM:SS".
func savedDate() -> String {
    var t = time(nil)
    var tmv = tm()
    gmtime_r(&t, &tmv)
    func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
    return "\(tmv.tm_year + 1900)-\(two(tmv.tm_mon + 1))-\(two(tmv.tm_mday))@\(two(tmv.tm_hour)):\(two(tmv.tm_min)):\(two(tmv.tm_sec))"
}
