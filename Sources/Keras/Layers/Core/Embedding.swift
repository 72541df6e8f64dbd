import KerasIR

/// Rows of an `input_dim x output_dim` table looked up by integer ids.
/// With `maskZero`, id 0 still looks up row 0 and the mask is `ids != 0`.
public final class Embedding: Layer {
    public let inputDim: Int
    public let outputDim: Int
    public let maskZero: Bool
    let initSpec: InitializerConvertible
    public var embeddingsRegularizer: Regularizer?
    public var embeddingsConstraint: Constraint?
    public private(set) var embeddings: Variable?

    public init(inputDim: Int, outputDim: Int, embeddingsInitializer: InitializerConvertible = "uniform",
                embeddingsRegularizer: Regularizer? = nil, activityRegularizer: Regularizer? = nil,
                embeddingsConstraint: Constraint? = nil, maskZero: Bool = false, inputLength: Int? = nil,
                weights: [Tensor]? = nil, name: String? = nil) {
        self.inputDim = inputDim
        self.outputDim = outputDim
        self.maskZero = maskZero
        self.initSpec = embeddingsInitializer
        self.embeddingsRegularizer = embeddingsRegularizer
        self.embeddingsConstraint = embeddingsConstraint
        super.init(name: name)
        self.activityRegularizer = activityRegularizer
        if let inputLength { declaredInputShape = [inputLength] }
        initialWeights = weights
    }

    public override func build(_ shapes: [Shape]) throws {
        guard inputDim > 0, outputDim > 0 else {
            throw KerasError("\(name): input_dim and output_dim must be positive, got \(inputDim) and \(outputDim)")
        }
        embeddings = try addWeight(name: "embeddings", shape: [inputDim, outputDim], initializer: initSpec.resolveInitializer(),
                                   regularizer: embeddingsRegularizer, constraint: embeddingsConstraint)
    }

    public override func call(_ inputs: [Value], masks: [Value?], context: CallContext) throws -> [Value] {
        let b = context.builder
        var ids = inputs[0]
        if b.type(of: ids).dtype != .i32 { ids = try b.cast(ids, to: .i32) }
        return [try b.emit("gather", [context.read(embeddings!), ids])]
    }

    public override func computeMask(_ inputs: [Value], outputs: [Value], masks: [Value?], context: CallContext) throws -> [Value?] {
        guard maskZero else { return [nil] }
        let b = context.builder
        var ids = inputs[0]
        if b.type(of: ids).dtype != .i32 { ids = try b.cast(ids, to: .i32) }
        return [try b.compare("not_equal", ids, b.constant([Int32(0)], shape: []))]
    }

    public override var config: JSON {
        var c = super.config
        c.set("input_dim", JSON(inputDim))
        c.set("quantization_config", .null)  // Keras 3 writes it; this library does not quantize
        c.set("output_dim", JSON(outputDim))
        c.set("embeddings_initializer", (try? Initializers.serialize(initSpec.resolveInitializer())) ?? .null)
        c.set("embeddings_regularizer", embeddingsRegularizer?.serialized ?? .null)
        c.set("activity_regularizer", activityRegularizer?.serialized ?? .null)
        c.set("embeddings_constraint", embeddingsConstraint?.serialized ?? .null)
        c.set("mask_zero", JSON(maskZero))
        return c
    }

    public override class func from(config c: JSON) throws -> Layer {
        guard let i = try c.optionalInt("input_dim"), let o = try c.optionalInt("output_dim") else {
            throw KerasError("Embedding config needs input_dim and output_dim")
        }
        let l = Embedding(inputDim: i, outputDim: o,
                          embeddingsInitializer: AnyInitializer(try c["embeddings_initializer"].map(Initializers.get) ?? RandomUniform()),
                          embeddingsRegularizer: try Regularizers.get(c["embeddings_regularizer"]),
                          activityRegularizer: try Regularizers.get(c["activity_regularizer"]),
                          embeddingsConstraint: try Constraints.get(c["embeddings_constraint"]),
                          maskZero: try c.bool("mask_zero", default: false), name: c["name"]?.stringValue)
        l.trainable = try c.bool("trainable", default: true)
        // input_dim is the vocabulary, not the input shape: only the shape keys and
        // Keras 2's input_length say how long a sequence is.
        if let s = try c.shape("batch_input_shape") ?? c.shape("batch_shape") {
            l.declaredBatchSize = s.first ?? nil
            l.declaredInputShape = Array(s.dropFirst())
        } else if let s = try c.shape("input_shape") {
            l.declaredInputShape = s
        } else if let n = try c.optionalInt("input_length") {
            l.declaredInputShape = [n]
        }
        return l
    }
}
