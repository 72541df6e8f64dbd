import KerasIR

/// A symbolic tensor of the functional API: a shape (None for the batch),
/// a dtype, and the layer call that produces it. Arithmetic and `ops`
/// functions on KerasTensors record operation layers, so a Lambda or a
/// functional model can be written with them and differentiated for free.
public final class KerasTensor: CustomStringConvertible {
    public let shape: Shape
    public let dtype: DType
    let node: LayerNode
    let index: Int
    /// The type of the mask travelling with this tensor, if any.
    /// The type of the mask this tensor carries (Embedding(mask_zero), Masking, ...), nil when none.
    public let maskType: TensorType?

    init(shape: Shape, dtype: DType, node: LayerNode, index: Int, maskType: TensorType?) {
        self.shape = shape
        self.dtype = dtype
        self.node = node
        self.index = index
        self.maskType = maskType
    }

    /// The layer that produced this tensor and the node and output index (Keras's keras_history).
    public var kerasHistory: (layer: Layer, nodeIndex: Int, tensorIndex: Int) { (node.layer, node.index, index) }

    public var rank: Int { shape.count }

    public var description: String {
        "<KerasTensor shape=\(formatShape(shape)), dtype=\(dtype == .f32 ? "float32" : "int32"), name=\(node.layer.name)>"
    }
}

/// The layer behind `Input`: it has no inputs and produces the model's input tensor.
public final class InputLayer: Layer {
    public let batchShape: Shape
    public let dtype: DType

    /// The tensor handed out first; it owns this layer, so the layer keeps it only weakly.
    private var tensorRef: Weak<KerasTensor>? = nil

    public init(shape: Shape, batchSize: Int? = nil, dtype: DType = .f32, name: String? = nil) {
        self.batchShape = [batchSize] + shape
        self.dtype = dtype
        super.init(name: name)
        markBuilt([batchShape])
    }

    public override var config: JSON {
        ["batch_shape": JSON(shape: batchShape), "dtype": .string(dtype == .f32 ? "float32" : "int32"),
         "sparse": false, "ragged": false, "name": .string(name), "optional": false]
    }

    public override class func from(config c: JSON) throws -> Layer {
        let shape = try c.shape("batch_shape") ?? c.shape("batch_input_shape")
        guard let shape, !shape.isEmpty else { throw KerasError("InputLayer config needs batch_shape, got \(c.serialized())") }
        let dt = try c.string("dtype", default: "float32")
        return InputLayer(shape: Array(shape.dropFirst()), batchSize: shape[0], dtype: try kerasDType(dt), name: c["name"]?.stringValue)
    }

    /// The input tensor (made again if every reference to it is gone).
    public var tensor: KerasTensor {
        if let t = tensorRef?.value { return t }
        let node = LayerNode(layer: self, inputs: [], training: nil, index: 0)
        let t = KerasTensor(shape: batchShape, dtype: dtype, node: node, index: 0, maskType: nil)
        node.setOutputs([t])
        nodeRefs = [Weak(node)]
        tensorRef = Weak(t)
        return t
    }
}

/// "float32" / "int32" (and Keras 2's spellings) to a dtype.
func kerasDType(_ s: String) throws -> DType {
    switch s {
    case "float32", "float", "f32": return .f32
    case "int32", "int", "i32", "int64", "uint8", "bool": return .i32
    default: throw KerasError("unsupported dtype '\(s)' (float32 or int32)")
    }
}

/// keras.Input: a symbolic input of the given shape (without the batch).
public func Input(shape: Shape, batchSize: Int? = nil, dtype: DType = .f32, name: String? = nil) -> KerasTensor {
    InputLayer(shape: shape, batchSize: batchSize, dtype: dtype, name: name).tensor
}

public func Input(shape: [Int], batchSize: Int? = nil, dtype: DType = .f32, name: String? = nil) -> KerasTensor {
    Input(shape: shape.map { Optional($0) }, batchSize: batchSize, dtype: dtype, name: name)
}
