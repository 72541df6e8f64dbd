import KerasIR
import KerasRuntime

/// The base of every layer. A layer owns its weights (`addWeight`), builds
/// them from its input shapes, and its `call` emits IR ops for one
/// invocation. Calling a layer on `KerasTensor`s records a node in the
/// functional graph; models replay those nodes into a training or inference
/// graph. Subclass it, override `build` and `call`, and gradients come from
/// the ops you emit.
open class Layer: CustomStringConvertible {
    public let name: String
    public var trainable: Bool
    public private(set) var isBuilt = false
    /// Weights created by this layer itself, in creation order.
    public private(set) var ownVariables: [Variable] = []
    /// Whether the layer passes its input mask through unchanged.
    public var supportsMasking = false
    /// The input shape given at construction (Keras 2 `input_shape` /
    /// `input_dim`), without the batch dimension.
    public var declaredInputShape: [Int?]?
    public var declaredBatchSize: Int?
    /// Regularizer on the layer's output, added to the loss.
    public var activityRegularizer: Regularizer?
    public private(set) var builtInputShapes: [Shape]?
    /// The layer's calls, weakly: a node lives as long as a tensor or a model
    /// refers to it (tensor -> node -> layer is the owning direction, so no
    /// reference cycle keeps a model alive).
    var nodeRefs: [Weak<LayerNode>] = []
    var inboundNodes: [LayerNode] { nodeRefs.compactMap(\.value) }
    /// How many times the layer has been called symbolically.
    public var inboundNodeCount: Int { nodeRefs.count }

    /// The Keras class name ("Dense"); the Swift class name by default.
    open class var kerasClassName: String { String(describing: self) }
    public var kerasClassName: String { Self.kerasClassName }

    public init(name: String? = nil, trainable: Bool = true) {
        self.name = name ?? Naming.unique(kerasSnakeCase(Self.kerasClassName))
        self.trainable = trainable
    }

    // MARK: Subclass API

    /// Creates weights for these input shapes (batch dimension included, nil when unknown).
    open func build(_ inputShapes: [Shape]) throws {}

    /// Emits the layer's computation. `masks` holds the incoming mask of each
    /// input (nil when none).
    open func call(_ inputs: [Value], masks: [Value?], context: CallContext) throws -> [Value] {
        throw KerasError("\(name): \(kerasClassName) does not implement call")
    }

    /// The masks of the outputs: the first input's mask when the layer
    /// supports masking, else none.
    open func computeMask(_ inputs: [Value], outputs: [Value], masks: [Value?], context: CallContext) throws -> [Value?] {
        let passed = supportsMasking ? (masks.first ?? nil) : nil
        return outputs.map { _ in passed }
    }

    /// Layers nested inside this one (wrappers, models); their weights follow this layer's.
    open var sublayers: [Layer] { [] }

    /// Whether a sample's output in training depends on the other samples of
    /// the batch (BatchNormalization's batch statistics). TimeDistributed
    /// folds time into the batch only for layers where it does not.
    open var mixesSamplesInTraining: Bool { sublayers.contains { $0.mixesSamplesInTraining } }

    /// Keras's get_config(): snake_case keys and Keras JSON values. A
    /// declared input shape is not written: Keras 3 rejects Keras 2's
    /// `batch_input_shape` key, and a model's config carries the shape in its
    /// InputLayer (Keras 2's key is still read).
    open var config: JSON {
        ["name": .string(name), "trainable": .bool(trainable), "dtype": dtypePolicyJSON]
    }

    /// Builds the layer from a config (Keras's from_config).
    open class func from(config: JSON) throws -> Layer {
        throw KerasError("\(kerasClassName) cannot be built from a config")
    }

    // MARK: Weights

    /// Creates a weight named `layer/name`, initialized now.
    @discardableResult
    public func addWeight(name: String, shape: [Int], initializer: Initializer = Zeros(), regularizer: Regularizer? = nil,
                          constraint: Constraint? = nil, trainable: Bool = true, dtype: DType = .f32) throws -> Variable {
        let v = try Variable(name: name, path: "\(self.name)/\(name)", shape: shape, dtype: dtype, trainable: trainable,
                             initializer: initializer, regularizer: regularizer, constraint: constraint)
        ownVariables.append(v)
        return v
    }

    /// All weights: trainable then non-trainable, then those of sublayers (Keras order).
    public var weights: [Variable] {
        unique(ownVariables.filter(\.trainable) + ownVariables.filter { !$0.trainable } + sublayers.flatMap(\.weights))
    }

    /// Where Keras 3's .weights.h5 keeps this layer's variables: its own under
    /// `vars`, then nested trackables by attribute name (an RNN's `cell`, a
    /// wrapper's `layer`, a model's `layers`). Layers whose variables Keras
    /// keeps elsewhere than in their own `vars` override it.
    open var weightsTree: WeightsTree {
        WeightsTree(variables: ownVariables.filter(\.trainable) + ownVariables.filter { !$0.trainable }, children: [], name: name)
    }

    public var trainableWeights: [Variable] {
        guard trainable else { return [] }
        return unique(ownVariables.filter(\.trainable) + sublayers.flatMap(\.trainableWeights))
    }

    /// First occurrences only: a layer shared by several models counts once.
    private func unique(_ vs: [Variable]) -> [Variable] {
        var seen = Set<ObjectIdentifier>()
        return vs.filter { seen.insert(ObjectIdentifier($0)).inserted }
    }

    public var nonTrainableWeights: [Variable] {
        let all = weights
        let t = Set(trainableWeights.map(ObjectIdentifier.init))
        return all.filter { !t.contains(ObjectIdentifier($0)) }
    }

    public func countParams() -> Int { weights.reduce(0) { $0 + $1.shape.reduce(1, *) } }

    public func getWeights() -> [Tensor] { weights.map(\.value) }

    /// Sets every weight at once, in `getWeights()` order. A wrong count or
    /// shape throws before anything changes.
    public func setWeights(_ values: [Tensor]) throws {
        let ws = weights
        guard values.count == ws.count else {
            throw KerasError("\(name): setWeights expects \(ws.count) arrays (\(ws.map { formatShape($0.shape.map { $0 }) }.joined(separator: ", "))), got \(values.count)")
        }
        for (w, v) in zip(ws, values) where w.shape != v.shape || w.dtype != v.dtype {
            throw KerasError("\(name): weight \(w.path) has shape \(formatShape(w.shape.map { $0 })), got an array of shape \(formatShape(v.shape.map { $0 }))")
        }
        for (w, v) in zip(ws, values) { try w.assign(v) }
    }

    // MARK: Building and emitting

    /// Keras 2's `weights=`: values every weight takes once the layer is built,
    /// in `getWeights()` order (checked like `setWeights`).
    public var initialWeights: [Tensor]?

    /// Builds once, for the first input shapes seen.
    public func ensureBuilt(_ shapes: [Shape]) throws {
        if isBuilt { return }
        // A failed build (or initial weights that do not fit) leaves no half-made weights behind.
        let before = ownVariables.count
        do {
            try build(shapes)
            if let w = initialWeights { try setWeights(w) }
        } catch {
            ownVariables.removeSubrange(before...)
            throw error
        }
        builtInputShapes = shapes
        isBuilt = true
    }

    /// Marks a layer built without calling `build` (layers built from their parts).
    public func markBuilt(_ shapes: [Shape]) {
        builtInputShapes = shapes
        isBuilt = true
    }

    /// Emits one call with the layer's name on every node, plus its activity
    /// regularization loss. Used by models, Lambda and the conformance runner.
    public func emit(_ inputs: [Value], masks: [Value?], context: CallContext) throws -> (outputs: [Value], masks: [Value?]) {
        let b = context.builder
        guard !inputs.isEmpty else { throw KerasError("\(name): called with no inputs") }
        guard masks.count == inputs.count else {
            throw KerasError("\(name): called with \(inputs.count) input(s) and \(masks.count) mask(s); give one mask (or nil) per input")
        }
        for v in inputs + masks.compactMap({ $0 }) where v.id < 0 || v.id >= b.graph.nodes.count {
            throw KerasError("\(name): input \(v) is not a value of graph @\(b.graph.name)")
        }
        return try b.withLayer(name) {
            if !isBuilt { try ensureBuilt(inputs.map { kerasShape(b.type(of: $0).shape) }) }
            let outs = try call(inputs, masks: masks, context: context)
            let outMasks = try computeMask(inputs, outputs: outs, masks: masks, context: context)
            if let reg = activityRegularizer {
                for o in outs {
                    let batch = try b.dimSize(o, axes: [0])
                    context.addLoss(try b.div(reg.penalty(o, b), batch))
                }
            }
            return (outs, outMasks)
        }
    }

    // MARK: Calling on symbolic tensors

    public func callAsFunction(_ x: KerasTensor, training: Bool? = nil) throws -> KerasTensor {
        let outs = try callAsFunction([x], training: training)
        guard outs.count == 1 else { throw KerasError("\(name): returns \(outs.count) tensors; call it with a list") }
        return outs[0]
    }

    /// Records a call in the functional graph. The output shapes come from
    /// emitting the call into a scratch graph, so shape errors surface here,
    /// naming this layer.
    /// `masks` gives a tensor to use as the mask of each input (Keras's
    /// `layer(x, mask=m)`); nil entries keep the mask an input carries.
    @_disfavoredOverload
    public func callAsFunction(_ xs: [KerasTensor], training: Bool? = nil, masks explicit: [KerasTensor?]? = nil) throws -> [KerasTensor] {
        guard !xs.isEmpty else { throw KerasError("\(name): called with no inputs") }
        if let explicit, explicit.count != xs.count {
            throw KerasError("\(name): called with \(xs.count) input(s) and \(explicit.count) mask(s)")
        }
        try ensureBuilt(xs.map(\.shape))
        let b = GraphBuilder(name: "trace_\(name)")
        var values: [Value] = []
        var masks: [Value?] = []
        for (i, x) in xs.enumerated() {
            values.append(try b.input("in\(i)", TensorType(x.dtype, irShape(x.shape))))
            let maskType = explicit?[i].map { TensorType($0.dtype, irShape($0.shape)) } ?? x.maskType
            masks.append(try maskType.map { try b.input("mask\(i)", $0) })
        }
        let ctx = CallContext(builder: b, training: training ?? false, isTracing: true)
        let (outs, outMasks) = try emit(values, masks: masks, context: ctx)
        let node = LayerNode(layer: self, inputs: xs, training: training, index: nodeRefs.count,
                             masks: explicit ?? xs.map { _ in nil })
        let tensors = outs.enumerated().map { i, v in
            KerasTensor(shape: kerasShape(b.type(of: v).shape), dtype: b.type(of: v).dtype, node: node, index: i,
                        maskType: outMasks[i].map { b.type(of: $0) })
        }
        node.setOutputs(tensors)
        nodeRefs.append(Weak(node))
        return tensors
    }

    /// The output shapes for these input shapes, inferred by tracing a call
    /// through the IR's shape rules (the layer is built if it was not).
    public func computeOutputShape(_ inputShapes: [Shape]) throws -> [Shape] {
        try ensureBuilt(inputShapes)
        let b = GraphBuilder(name: "shape_\(name)")
        let xs = try inputShapes.enumerated().map { try b.input("in\($0.offset)", .f32(irShape($0.element))) }
        let ctx = CallContext(builder: b, training: false, isTracing: true)
        return try emit(xs, masks: xs.map { _ in nil }, context: ctx).outputs.map { kerasShape(b.type(of: $0).shape) }
    }

    public func computeOutputShape(_ inputShape: Shape) throws -> Shape { try computeOutputShape([inputShape])[0] }

    // MARK: Node accessors

    private func single(_ what: String) throws -> LayerNode {
        let live = inboundNodes
        guard !live.isEmpty else { throw KerasError("\(name): layer has never been called and thus has no defined \(what)") }
        guard live.count == 1 else {
            throw KerasError("\(name): layer has multiple inbound nodes, hence the notion of \"layer \(what)\" is ill-defined; use \(what)At(_:)")
        }
        return live[0]
    }

    private func node(_ i: Int, _ what: String) throws -> LayerNode {
        guard i >= 0 && i < nodeRefs.count, let n = nodeRefs[i].value else {
            throw KerasError("\(name): asked for \(what) at node \(i), but the layer has only \(inboundNodes.count) inbound nodes")
        }
        return n
    }

    private func firstOutput(_ n: LayerNode, _ what: String) throws -> KerasTensor {
        guard let t = n.output(0) else { throw KerasError("\(name): the \(what) tensor is no longer referenced by anything") }
        return t
    }

    private static func one(_ ts: [KerasTensor]) -> Any { ts.count == 1 ? ts[0] : ts }

    /// A node's first input; an InputLayer's node has none, and its input is its output (as in Keras).
    private func firstInput(_ n: LayerNode, _ what: String) throws -> KerasTensor {
        if let x = n.inputs.first { return x }
        return try firstOutput(n, what)
    }

    /// A model's own inputs and outputs, which its input/output properties
    /// report whatever nodes it has (Keras's Functional.input and output);
    /// nil for a layer, whose properties come from its one inbound node.
    var ownEndpoints: (inputs: [KerasTensor], outputs: [KerasTensor])? { nil }

    public var input: KerasTensor {
        get throws { if let e = ownEndpoints { return e.inputs[0] }; return try firstInput(try single("input"), "input") }
    }
    public var output: KerasTensor {
        get throws { if let e = ownEndpoints { return e.outputs[0] }; return try firstOutput(try single("output"), "output") }
    }
    public var inputShape: Shape {
        get throws { if let e = ownEndpoints { return e.inputs[0].shape }; return try firstInput(try single("input_shape"), "input_shape").shape }
    }
    public var outputShape: Shape {
        get throws { if let e = ownEndpoints { return e.outputs[0].shape }; return try single("output_shape").outputShapes[0] }
    }
    public func inputAt(_ i: Int) throws -> KerasTensor { try firstInput(try node(i, "input"), "input") }
    public func outputAt(_ i: Int) throws -> KerasTensor { try firstOutput(try node(i, "output"), "output") }
    public func inputShapeAt(_ i: Int) throws -> Shape { try firstInput(try node(i, "input_shape"), "input_shape").shape }
    public func outputShapeAt(_ i: Int) throws -> Shape { try node(i, "output_shape").outputShapes.first ?? outputAt(i).shape }

    /// The mask of the layer's input / output as a tensor (Keras 2's
    /// `input_mask` / `output_mask`), nil when it carries none. Like `input`
    /// and `output`, an error when the layer was never called or was called
    /// several times.
    public var inputMask: KerasTensor? { get throws { try MaskOf.tensor(try input) } }
    public var outputMask: KerasTensor? { get throws { try MaskOf.tensor(try output) } }
    public func inputMaskAt(_ i: Int) throws -> KerasTensor? { try MaskOf.tensor(try inputAt(i)) }
    public func outputMaskAt(_ i: Int) throws -> KerasTensor? { try MaskOf.tensor(try outputAt(i)) }

    public var description: String { "<\(kerasClassName) name=\(name), built=\(isBuilt)>" }

    // MARK: Config helpers for subclasses

    /// name and trainable from a config.
    public static func baseArguments(_ c: JSON) throws -> (name: String?, trainable: Bool) {
        (c["name"]?.stringValue, try c.bool("trainable", default: true))
    }

    /// Applies batch_input_shape / input_shape / input_dim from a config.
    public func applyInputShape(from c: JSON) throws {
        if let s = try c.shape("batch_input_shape") ?? c.shape("batch_shape") {
            declaredBatchSize = s.first ?? nil
            declaredInputShape = Array(s.dropFirst())
        } else if let s = try c.shape("input_shape") {
            declaredInputShape = s
        } else if let d = try c.optionalInt("input_dim") {
            declaredInputShape = [d]
        }
    }
}

let dtypePolicyJSON: JSON = serialized(module: "keras", className: "DTypePolicy", config: ["name": "float32"])

/// A weak reference.
struct Weak<T: AnyObject> {
    weak var value: T?
    init(_ v: T) { value = v }
}

/// One call of a layer in the functional graph. It owns its layer and its
/// input tensors; its outputs own it, so it refers to them weakly.
final class LayerNode {
    let layer: Layer
    let inputs: [KerasTensor]
    private var outputRefs: [Weak<KerasTensor>] = []
    private(set) var outputShapes: [Shape] = []

    func setOutputs(_ ts: [KerasTensor]) {
        outputRefs = ts.map(Weak.init)
        outputShapes = ts.map(\.shape)
    }
    var outputCount: Int { outputRefs.count }
    func output(_ i: Int) -> KerasTensor? { i < outputRefs.count ? outputRefs[i].value : nil }
    /// The training argument given at call time, if any (it overrides the model's).
    let training: Bool?
    let index: Int
    /// Tensors given as the inputs' masks at call time (nil: the input's own).
    let masks: [KerasTensor?]

    init(layer: Layer, inputs: [KerasTensor], training: Bool?, index: Int, masks: [KerasTensor?]? = nil) {
        self.layer = layer
        self.inputs = inputs
        self.training = training
        self.index = index
        self.masks = masks ?? inputs.map { _ in nil }
    }
}

/// A graph node whose value is its input's mask, so a mask can be used as a
/// tensor (`layer.outputMask`).
final class MaskOf: Layer {
    override class var kerasClassName: String { "MaskOf" }

    static func tensor(_ t: KerasTensor) throws -> KerasTensor? {
        guard t.maskType != nil else { return nil }
        return try MaskOf(name: Naming.unique("mask_of"))(t)
    }

    override func call(_ inputs: [Value], masks: [Value?], context: CallContext) throws -> [Value] {
        guard let m = masks.first ?? nil else { throw KerasError("\(name): the input carries no mask") }
        return [m]
    }
}
