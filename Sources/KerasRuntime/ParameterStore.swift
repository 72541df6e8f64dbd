import KerasIR

/// Persistent storage for parameters and optimizer slots, shared by every
/// plan compiled against it (training and inference, any batch size).
/// Writes are checked before anything changes: a wrong count or shape throws
/// and leaves the stored values as they were.
public final class ParameterStore {
    public final class Buffer {
        public let type: TensorType
        public let pointer: UnsafeMutableRawPointer
        /// Zero-filled storage for a fully known type that fits in memory.
        public init(_ type: TensorType) throws {
            guard type.isFullyKnown else { throw IRError("a parameter buffer needs a known shape, got \(type)") }
            let count = try MemoryLimit.check("parameter buffer \(type)", shape: type.shape)
            self.type = type
            self.pointer = alignedAllocate(bytes: count * 4)
        }

        /// A scalar slot (optimizer step counters, learning rates).
        public static func scalar() -> Buffer { try! Buffer(.f32([])) }

        public var tensor: Tensor { Tensor(type: type, copying: pointer) }

        /// Copies `t` in; its type must match.
        public func store(_ t: Tensor) throws {
            guard t.type == type else { throw IRError("cannot store \(t.type) into a parameter of type \(type)") }
            t.withRawBytes { pointer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        }
        deinit { pointer.deallocate() }
        public var count: Int { type.elementCount! }
    }

    private var buffers: [String: Buffer] = [:]

    public init() {}

    public var names: [String] { buffers.keys.sorted() }
    public func contains(_ name: String) -> Bool { buffers[name] != nil }
    public func type(of name: String) -> TensorType? { buffers[name]?.type }

    /// The buffer for `name`, created zero-filled if absent.
    @discardableResult
    public func declare(_ name: String, _ type: TensorType) throws -> Buffer {
        if let b = buffers[name] {
            guard b.type == type else {
                throw IRError("parameter %\(name) is stored as \(b.type), the graph wants \(type)")
            }
            return b
        }
        guard type.isFullyKnown else { throw IRError("parameter %\(name) needs a known shape, got \(type)") }
        try MemoryLimit.check("parameter %\(name)", shape: type.shape)
        let b = try Buffer(type)
        buffers[name] = b
        return b
    }

    /// Makes `buffer` the storage of `name` (a layer's variable, shared by
    /// every store and plan that uses it). Replacing a different buffer is an error.
    public func adopt(_ name: String, _ buffer: Buffer) throws {
        if let b = buffers[name], b !== buffer {
            throw IRError("parameter %\(name) is already bound to other storage")
        }
        buffers[name] = buffer
    }

    /// Stores a tensor; an existing parameter keeps its type, so the tensor must match it.
    public func set(_ name: String, _ t: Tensor) throws {
        if let b = buffers[name], b.type != t.type {
            throw IRError("parameter %\(name) is \(b.type), cannot store \(t.type)")
        }
        let b = try declare(name, t.type)
        t.withRawBytes { b.pointer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    }

    /// Stores values into an existing parameter.
    public func set(_ name: String, _ values: [Float]) throws {
        guard let b = buffers[name] else { throw IRError("no parameter %\(name)") }
        try set(name, try Tensor(values, shape: b.type.shape))
    }

    public func tensor(_ name: String) throws -> Tensor {
        guard let b = buffers[name] else { throw IRError("no parameter %\(name)") }
        return Tensor(type: b.type, copying: b.pointer)
    }

    public func buffer(_ name: String) -> Buffer? { buffers[name] }
}
