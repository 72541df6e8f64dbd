import KerasIR
import KerasRuntime

/// A layer's weight: a named, shaped buffer with its initializer,
/// regularizer and constraint. The buffer is what every compiled plan reads
/// and writes, so a model's plans and the layer always agree on its value.
public final class Variable: CustomStringConvertible {
    /// The short name ("kernel").
    public let name: String
    /// The Keras variable path ("dense/kernel"); also the IR parameter name.
    public internal(set) var path: String
    public let shape: [Int]
    public let dtype: DType
    public var trainable: Bool
    public let initializer: Initializer?
    public let regularizer: Regularizer?
    public let constraint: Constraint?
    public let buffer: ParameterStore.Buffer

    init(name: String, path: String, shape: [Int], dtype: DType = .f32, trainable: Bool,
         initializer: Initializer?, regularizer: Regularizer?, constraint: Constraint?) throws {
        guard shape.allSatisfy({ $0 >= 0 }) else { throw KerasError("\(path): weight shape \(shape) must be known") }
        // The initial values and the buffer exist together while it is initialized.
        try MemoryLimit.check(path, shape: shape, copies: initializer == nil ? 1 : 2)
        do { try TensorType(dtype, shape).checkSize() } catch let e as ShapeError { throw KerasError("\(path): \(e.message)") }
        self.name = name
        self.path = path
        self.shape = shape
        self.dtype = dtype
        self.trainable = trainable
        self.initializer = initializer
        self.regularizer = regularizer
        self.constraint = constraint
        self.buffer = try ParameterStore.Buffer(TensorType(dtype, shape))
        if let initializer {
            let values = try initializer.values(shape: shape)
            try buffer.store(try Tensor(values, shape: shape))
        }
    }

    public var type: TensorType { TensorType(dtype, shape) }

    /// A copy of the current value.
    public var value: Tensor { buffer.tensor }

    /// Replaces the value; a tensor of another shape is an error and changes nothing.
    public func assign(_ t: Tensor) throws {
        guard t.shape == shape, t.dtype == dtype else {
            throw KerasError("\(path): cannot assign a value of shape \(t.shape) to a weight of shape \(shape)")
        }
        try buffer.store(t)
    }

    public var description: String { "<Variable path=\(path), shape=\(formatShape(shape.map { $0 }))>" }
}
