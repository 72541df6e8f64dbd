import KerasIR

/// Keras class names (and Keras 2 aliases) to layer types, for building
/// layers and models from configs.
public enum LayerRegistry {
    nonisolated(unsafe) static var types: [String: Layer.Type] = {
        var t: [String: Layer.Type] = [:]
        for type in [InputLayer.self, Dense.self, Activation.self, Dropout.self, GaussianNoise.self, GaussianDropout.self,
                     ActivityRegularization.self, Flatten.self, Reshape.self, Permute.self, RepeatVector.self, Masking.self,
                     Embedding.self, Lambda.self, ReLU.self, ELU.self, LeakyReLU.self, PReLU.self, Softmax.self,
                     Sequential.self, Model.self] as [Layer.Type] {
            t[type.kerasClassName] = type
        }
        t["Functional"] = Model.self
        return t
    }()

    /// Registers a custom layer type under its Keras class name.
    public static func register(_ type: Layer.Type, as name: String? = nil) { types[name ?? type.kerasClassName] = type }

    /// A layer from a serialized object ({"class_name", "config", ...}).
    public static func deserialize(_ json: JSON) throws -> Layer {
        guard let cls = json["class_name"]?.stringValue else {
            throw KerasError("cannot read a layer from \(json.serialized().prefix(200))")
        }
        guard let type = types[cls] else { throw KerasError("unknown layer class '\(cls)'") }
        let layer = try type.from(config: json["config"] ?? .object([]))
        return layer
    }
}
