/// Every error the compiler reports to a user: a message that names the
/// layer (when one made the node), the op, and the types involved, e.g.
/// "dense_2: matmul expects inner dimensions to agree, got f32[?,780] and f32[784,512]".
public struct IRError: Error, CustomStringConvertible, Equatable, Sendable {
    public var message: String
    /// Messages quote user data (shapes, values, config text); a multi-megabyte
    /// list is cut to its start and end.
    public init(_ message: String) { self.message = abbreviated(message, limit: 2000) }
    public var description: String { message }

    /// Prefixes the message with the layer name (when known): the form users see.
    public static func at(layer: String?, _ message: String) -> IRError {
        if let layer, !layer.isEmpty { return IRError("\(layer): \(message)") }
        return IRError(message)
    }
}

/// Thrown by shape rules; the builder adds the layer name.
public struct ShapeError: Error, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = abbreviated(message, limit: 2000) }
    public var description: String { message }
}
