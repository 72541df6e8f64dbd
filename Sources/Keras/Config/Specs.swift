import KerasIR

/// Something that names or is an activation: "relu" or `ActivationFunction.relu`.
public protocol ActivationConvertible {
    func resolveActivation() throws -> ActivationFunction
}
extension String: ActivationConvertible {
    public func resolveActivation() throws -> ActivationFunction { try ActivationFunction.get(self) }
}
extension ActivationFunction: ActivationConvertible {
    public func resolveActivation() throws -> ActivationFunction { self }
}

/// Something that names or is an initializer: "glorot_uniform" or `HeNormal(seed: 1)`.
public protocol InitializerConvertible {
    func resolveInitializer() throws -> Initializer
}
extension String: InitializerConvertible {
    public func resolveInitializer() throws -> Initializer { try Initializers.get(self) }
}
extension Zeros: InitializerConvertible { public func resolveInitializer() -> Initializer { self } }
extension Ones: InitializerConvertible { public func resolveInitializer() -> Initializer { self } }
extension Constant: InitializerConvertible { public func resolveInitializer() -> Initializer { self } }
extension RandomUniform: InitializerConvertible { public func resolveInitializer() -> Initializer { self } }
extension RandomNormal: InitializerConvertible { public func resolveInitializer() -> Initializer { self } }
extension TruncatedNormal: InitializerConvertible { public func resolveInitializer() -> Initializer { self } }
extension VarianceScaling: InitializerConvertible { public func resolveInitializer() -> Initializer { self } }
extension NamedVarianceScaling: InitializerConvertible { public func resolveInitializer() -> Initializer { self } }
extension Orthogonal: InitializerConvertible { public func resolveInitializer() -> Initializer { self } }
extension Identity: InitializerConvertible { public func resolveInitializer() -> Initializer { self } }

/// The activation's serialized form in a layer config (its name).
func activationJSON(_ a: ActivationFunction) -> JSON { .string(a.name) }

/// A Keras 2/3 `input_shape` / `input_dim` given to a layer's constructor.
func declaredShape(inputShape: [Int]?, inputDim: Int?) -> [Int?]? {
    if let inputShape { return inputShape.map { Optional($0) } }
    if let inputDim { return [inputDim] }
    return nil
}
