/// Appends nodes to a graph, inferring each result's type when the node is
/// created. Layers emit through it; autodiff extends graphs with it.
public final class GraphBuilder {
    public private(set) var graph: Graph
    public let registry: OpRegistry
    /// The layer whose nodes are being emitted; errors and dumps name it.
    public var currentLayer: String?
    private var usedNames: Set<String>

    public init(name: String, registry: OpRegistry = .standard) {
        self.graph = Graph(name: name)
        self.registry = registry
        self.usedNames = []
    }

    /// Continues an existing graph (autodiff, passes).
    public init(extending graph: Graph, registry: OpRegistry = .standard) {
        self.graph = graph
        self.registry = registry
        self.usedNames = Set(graph.nodes.compactMap(\.name))
    }

    public func type(of v: Value) -> TensorType { graph.type(of: v) }

    /// Runs `body` with nodes attributed to `layer`.
    public func withLayer<T>(_ layer: String?, _ body: () throws -> T) rethrows -> T {
        let saved = currentLayer
        currentLayer = layer
        defer { currentLayer = saved }
        return try body()
    }

    /// A name not used yet, based on `base` (base, base_1, base_2, ...).
    public func uniqueName(_ base: String) -> String {
        if !usedNames.contains(base) { return base }
        var i = 1
        while usedNames.contains("\(base)_\(i)") { i += 1 }
        return "\(base)_\(i)"
    }

    /// Creates a node after checking arity and inferring its type. Errors name
    /// the current layer, the op and the input types.
    @discardableResult
    public func emit(_ op: String, _ inputs: [Value], _ attrs: Attributes = [:],
                     declared: TensorType? = nil, name: String? = nil) throws -> Value {
        guard let def = registry[op] else {
            throw IRError.at(layer: currentLayer, "unknown op '\(op)'")
        }
        guard def.arity.accepts(inputs.count) else {
            throw IRError.at(layer: currentLayer, "\(op) takes \(def.arity) inputs, got \(inputs.count)")
        }
        for v in inputs where v.id < 0 || v.id >= graph.nodes.count {
            throw IRError.at(layer: currentLayer, "\(op): input \(v) is not a value of graph @\(graph.name)")
        }
        if op == "assign", let first = inputs.first, graph[first].kind != .parameter {
            throw IRError.at(layer: currentLayer, "assign: target must be a parameter, got \(graph[first].op)")
        }
        let rule = def.shape
        let inputTypes = inputs.map { graph.type(of: $0) }
        let type: TensorType
        do {
            try declared?.checkSize()
            type = try rule(ShapeContext(op: op, inputs: inputTypes, attrs: attrs, declared: declared))
            try type.checkSize()
        } catch let e as ShapeError {
            throw IRError.at(layer: currentLayer, e.message)
        } catch let e as AttributeError {
            throw IRError.at(layer: currentLayer, "\(op): \(e)")
        }
        var finalName: String? = nil
        if let name {
            if name.allSatisfy(\.isNumber) || name.isEmpty {
                throw IRError.at(layer: currentLayer, "\(op): value name '\(name)' must not be a number")
            }
            finalName = uniqueName(name)
            usedNames.insert(finalName!)
        }
        graph.nodes.append(Node(op: op, inputs: inputs, attrs: attrs, type: type, name: finalName,
                                layer: currentLayer))
        return Value(graph.nodes.count - 1)
    }

    public func setOutputs(_ outputs: [Value]) { graph.outputs = outputs }

    /// Continues from a graph that extends this one (autodiff appends nodes).
    public func replaceGraph(_ g: Graph) {
        graph = g
        usedNames = Set(g.nodes.compactMap(\.name))
    }

    // MARK: Arguments and constants

    public func input(_ name: String, _ type: TensorType) throws -> Value {
        if usedNames.contains(name) { throw IRError("input %\(name) is already defined in @\(graph.name)") }
        return try emit("input", [], declared: type, name: name)
    }

    public func parameter(_ name: String, _ type: TensorType) throws -> Value {
        if usedNames.contains(name) { throw IRError("parameter %\(name) is already defined in @\(graph.name)") }
        return try emit("parameter", [], declared: type, name: name)
    }

    /// A scalar f32 constant (broadcasts against anything).
    public func scalar(_ v: Float) -> Value {
        try! emit("constant", [], ["value": .floats([v])], declared: .f32([]))
    }

    public func constant(_ values: [Float], shape: [Int]) throws -> Value {
        try emit("constant", [], ["value": .floats(values)], declared: .f32(shape))
    }

    public func constant(_ values: [Int32], shape: [Int]) throws -> Value {
        try emit("constant", [], ["value": .ints(values.map(Int.init))], declared: .i32(shape))
    }

    // MARK: Elementwise

    public func add(_ a: Value, _ b: Value) throws -> Value { try emit("add", [a, b]) }
    public func sub(_ a: Value, _ b: Value) throws -> Value { try emit("sub", [a, b]) }
    public func mul(_ a: Value, _ b: Value) throws -> Value { try emit("mul", [a, b]) }
    public func div(_ a: Value, _ b: Value) throws -> Value { try emit("div", [a, b]) }
    public func maximum(_ a: Value, _ b: Value) throws -> Value { try emit("maximum", [a, b]) }
    public func minimum(_ a: Value, _ b: Value) throws -> Value { try emit("minimum", [a, b]) }
    public func pow(_ a: Value, _ b: Value) throws -> Value { try emit("pow", [a, b]) }
    public func mul(_ a: Value, _ s: Float) throws -> Value { try mul(a, scalar(s)) }
    public func add(_ a: Value, _ s: Float) throws -> Value { try add(a, scalar(s)) }

    public func unary(_ op: String, _ x: Value, _ attrs: Attributes = [:]) throws -> Value {
        try emit(op, [x], attrs)
    }
    public func neg(_ x: Value) throws -> Value { try unary("neg", x) }
    public func exp(_ x: Value) throws -> Value { try unary("exp", x) }
    public func log(_ x: Value) throws -> Value { try unary("log", x) }
    public func sqrt(_ x: Value) throws -> Value { try unary("sqrt", x) }
    public func square(_ x: Value) throws -> Value { try unary("square", x) }
    public func abs(_ x: Value) throws -> Value { try unary("abs", x) }
    public func sign(_ x: Value) throws -> Value { try unary("sign", x) }
    public func relu(_ x: Value) throws -> Value { try unary("relu", x) }
    public func sigmoid(_ x: Value) throws -> Value { try unary("sigmoid", x) }
    public func tanh(_ x: Value) throws -> Value { try unary("tanh", x) }

    public func compare(_ op: String, _ a: Value, _ b: Value) throws -> Value { try emit(op, [a, b]) }
    public func greater(_ a: Value, _ b: Value) throws -> Value { try emit("greater", [a, b]) }
    public func select(_ c: Value, _ a: Value, _ b: Value) throws -> Value { try emit("select", [c, a, b]) }

    // MARK: Reductions, shapes, contractions

    public func reduceSum(_ x: Value, axes: [Int], keepDims: Bool = false) throws -> Value {
        try emit("reduce_sum", [x], ["axes": .ints(axes), "keepdims": .bool(keepDims)])
    }
    public func reduceMean(_ x: Value, axes: [Int], keepDims: Bool = false) throws -> Value {
        try emit("reduce_mean", [x], ["axes": .ints(axes), "keepdims": .bool(keepDims)])
    }
    public func reduceMax(_ x: Value, axes: [Int], keepDims: Bool = false) throws -> Value {
        try emit("reduce_max", [x], ["axes": .ints(axes), "keepdims": .bool(keepDims)])
    }
    public func softmax(_ x: Value, axis: Int = -1) throws -> Value { try emit("softmax", [x], ["axis": .int(axis)]) }
    public func logSoftmax(_ x: Value, axis: Int = -1) throws -> Value { try emit("log_softmax", [x], ["axis": .int(axis)]) }

    /// conv(x, w) channels-last with the given geometry.
    public func conv(_ x: Value, _ w: Value, _ geometry: ConvGeometry) throws -> Value { try emit("conv", [x, w], geometry.attrs) }
    /// The transposed convolution of x by w (conv_backward_data) to spatial size `outputSize`.
    public func convTranspose(_ x: Value, _ w: Value, _ geometry: ConvGeometry, outputSize: [Int]) throws -> Value {
        var attrs = geometry.attrs
        attrs["input_shape"] = .ints(outputSize)
        return try emit("conv_backward_data", [x, w], attrs)
    }
    /// max_pool or avg_pool over the given window.
    public func pool(_ x: Value, max: Bool, _ window: PoolWindow) throws -> Value {
        try emit(max ? "max_pool" : "avg_pool", [x], window.attrs)
    }

    public func matmul(_ a: Value, _ b: Value, transposeA: Bool = false, transposeB: Bool = false) throws -> Value {
        try emit("matmul", [a, b], ["transpose_a": .bool(transposeA), "transpose_b": .bool(transposeB)])
    }
    public func reshape(_ x: Value, _ shape: [Int]) throws -> Value { try emit("reshape", [x], ["shape": .ints(shape)]) }
    public func transpose(_ x: Value, _ perm: [Int]) throws -> Value { try emit("transpose", [x], ["perm": .ints(perm)]) }
    /// Broadcasts `x` to the shape of `like` (whose values are not read).
    public func broadcast(_ x: Value, like: Value) throws -> Value { try emit("broadcast_to", [x, like]) }
    public func cast(_ x: Value, to dtype: DType) throws -> Value { try emit("cast", [x], ["dtype": .string(dtype.rawValue)]) }
    /// The number of elements along `axes` of `x` as an f32 scalar, known once
    /// the graph is compiled at a concrete batch size.
    public func dimSize(_ x: Value, axes: [Int]) throws -> Value { try emit("dim_size", [x], ["axes": .ints(axes)]) }
    public func assign(_ parameter: Value, _ value: Value) throws -> Value { try emit("assign", [parameter, value]) }
}
