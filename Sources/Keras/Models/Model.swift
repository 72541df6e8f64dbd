import KerasIR
import KerasRuntime

/// A functional model: the layer calls between `inputs` and `outputs`. A
/// model is a layer too, so it can be called on tensors and nested.
/// Training, evaluation and prediction are in Training.swift.
open class Model: Layer {
    open override class var kerasClassName: String { "Functional" }

    public internal(set) var inputs: [KerasTensor] = []
    public internal(set) var outputs: [KerasTensor] = []
    var functional: FunctionalGraph?
    /// Compile state and compiled plans (Training.swift).
    var training: TrainingState?
    /// Set by callbacks (EarlyStopping, TerminateOnNaN) to end fit() after the current batch or epoch.
    public var stopTraining = false

    public init(inputs: [KerasTensor], outputs: [KerasTensor], name: String? = nil) throws {
        super.init(name: name)
        try setGraph(inputs: inputs, outputs: outputs)
    }

    public convenience init(inputs: KerasTensor, outputs: KerasTensor, name: String? = nil) throws {
        try self.init(inputs: [inputs], outputs: [outputs], name: name)
    }

    public convenience init(inputs: [KerasTensor], outputs: KerasTensor, name: String? = nil) throws {
        try self.init(inputs: inputs, outputs: [outputs], name: name)
    }

    /// For subclasses (Sequential) whose graph comes later.
    init(name: String?) {
        super.init(name: name)
    }

    /// Once the model has its graph, input, output and their shapes are its own
    /// (a Sequential without an input shape has none yet, and says it was never called).
    override var ownEndpoints: (inputs: [KerasTensor], outputs: [KerasTensor])? {
        inputs.isEmpty || outputs.isEmpty ? nil : (inputs, outputs)
    }

    func setGraph(inputs: [KerasTensor], outputs: [KerasTensor]) throws {
        guard !inputs.isEmpty, !outputs.isEmpty else { throw KerasError("\(name): a model needs inputs and outputs") }
        for x in inputs where !(x.node.layer is InputLayer) {
            throw KerasError("\(name): model inputs must come from Input(), got \(x)")
        }
        let g = try FunctionalGraph(inputs: inputs, outputs: outputs)
        var names: [String: Int] = [:]
        for l in g.layers { names[l.name, default: 0] += 1 }
        if let (dup, n) = names.first(where: { $0.value > 1 }) {
            throw KerasError("\(name): the name \"\(dup)\" is used \(n) times in the model; all layer names should be unique")
        }
        self.inputs = inputs
        self.outputs = outputs
        self.functional = g
        markBuilt(inputs.map(\.shape))
        training?.invalidatePlans()
    }

    /// Every layer, in the order they were first called (input layers first).
    open var layers: [Layer] { functional?.layers ?? [] }

    open override var sublayers: [Layer] { layers }

    /// The model's layers under `layers`, keyed as Keras keys them.
    open override var weightsTree: WeightsTree {
        WeightsTree(variables: [], children: [("layers", WeightsTree(variables: [], children: WeightsTree.keyed(layers), hasVars: false))], name: name)
    }

    public func getLayer(name: String) throws -> Layer {
        guard let l = layers.first(where: { $0.name == name }) else {
            throw KerasError("\(self.name): no such layer: \(name); existing layers are: \(layers.map(\.name))")
        }
        return l
    }

    /// Zeroes the carried states of every stateful recurrent layer (Keras's reset_states).
    public func resetStates() throws {
        func visit(_ l: Layer) throws {
            if let r = l as? RecurrentLayer { try r.resetStates() }
            for s in l.sublayers { try visit(s) }
            if let m = l as? Model { for inner in m.layers where inner !== m { try visit(inner) } }
        }
        for l in layers { try visit(l) }
    }

    public func getLayer(index: Int) throws -> Layer {
        guard index >= 0 && index < layers.count else {
            throw KerasError("\(name): was asked to retrieve layer at index \(index) but model only has \(layers.count) layers")
        }
        return layers[index]
    }

    func requireGraph(_ what: String) throws -> FunctionalGraph {
        guard let g = functional else {
            throw KerasError("\(name): the model has not been built yet (it has no input shape); call build(inputShape:) or give the first layer an input shape before \(what)")
        }
        return g
    }

    open override func call(_ inputs: [Value], masks: [Value?], context: CallContext) throws -> [Value] {
        let g = try requireGraph("calling it")
        return try g.emit(inputValues: inputs, inputMasks: masks, context: context).0
    }

    open override func computeMask(_ inputs: [Value], outputs: [Value], masks: [Value?], context: CallContext) throws -> [Value?] {
        outputs.map { _ in nil }
    }

    open override var config: JSON {
        var c: JSON = ["name": .string(name), "trainable": .bool(trainable)]
        c.set("layers", .array(layers.map(serializeLayerNode)))
        c.set("input_layers", .array(inputs.map { tensorRef($0) }))
        c.set("output_layers", .array(outputs.map { tensorRef($0) }))
        return c
    }

    func tensorRef(_ t: KerasTensor) -> JSON { [.string(t.node.layer.name), JSON(t.node.index), JSON(t.index)] }

    func serializeLayerNode(_ l: Layer) -> JSON {
        let nodes = l.inboundNodes.filter { n in functional?.nodes.contains { $0 === n } ?? false }
        if let op = l as? OperationLayer, let entry = op.savedEntry, let args = op.savedArgs {
            // A keras.ops node: its own class and config, its arguments with the tensors renamed.
            var j = serialized(module: entry["module"]?.stringValue ?? "keras.src.ops", className: entry["class_name"]?.stringValue ?? "?",
                               config: entry["config"] ?? .object([]))
            j.set("name", .string(l.name))
            j.set("inbound_nodes", .array(nodes.map { n in
                var inputs = n.inputs.makeIterator()
                func replace(_ a: JSON) -> JSON {
                    if a["class_name"]?.stringValue == "__keras_tensor__" { return inputs.next().map(kerasTensorJSON) ?? a }
                    if let list = a.arrayValue { return .array(list.map(replace)) }
                    return a
                }
                return ["args": replace(args), "kwargs": .object([])]
            }))
            return j
        }
        var j = serializedLayer(l)
        j.set("name", .string(l.name))
        j.set("inbound_nodes", .array(nodes.map { n in
            var kwargs: JSON = .object([])
            if n.masks.contains(where: { $0 != nil }) {
                let m = n.masks.map { $0.map(kerasTensorJSON) ?? .null }
                kwargs.set("mask", m.count == 1 ? m[0] : .array(m))
            }
            return ["args": .array(n.inputs.count == 1 ? [kerasTensorJSON(n.inputs[0])] : [.array(n.inputs.map(kerasTensorJSON))]),
                    "kwargs": kwargs]
        }))
        return j
    }

    func kerasTensorJSON(_ t: KerasTensor) -> JSON {
        ["class_name": "__keras_tensor__",
         "config": ["shape": JSON(shape: t.shape), "dtype": .string(t.dtype == .f32 ? "float32" : "int32"),
                    "keras_history": [.string(t.node.layer.name), JSON(t.node.index), JSON(t.index)]]]
    }

    // MARK: summary

    /// Keras's summary table: layer name and type, output shape, parameter
    /// count (and the inputs it is connected to, for functional models), then
    /// the totals.
    public func summary(lineLength: Int? = nil, print write: (String) -> Void = { Swift.print($0) }) {
        let functionalModel = !(self is Sequential)
        var rows: [[String]] = []
        for l in layers {
            let out = l.inboundNodes.first?.outputShapes.map { formatShape($0) }.joined(separator: ", ") ?? "?"
            var row = ["\(l.name) (\(l.kerasClassName == "Operation" ? l.name : l.kerasClassName))", out, formatCount(l.countParams())]
            if functionalModel {
                let sources = l.inboundNodes.first?.inputs.map { "\($0.node.layer.name)[\($0.node.index)][\($0.index)]" } ?? []
                row.append(sources.isEmpty ? "-" : sources.joined(separator: ", "))
            }
            rows.append(row)
        }
        var headers = ["Layer (type)", "Output Shape", "Param #"]
        if functionalModel { headers.append("Connected to") }
        var widths = headers.map(\.count)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = Swift.max(widths[i], c.count) } }
        widths = widths.map { $0 + 2 }
        func line(_ l: String, _ m: String, _ r: String, _ fill: String) -> String {
            l + widths.map { String(repeating: fill, count: $0) }.joined(separator: m) + r
        }
        func cells(_ r: [String], _ sep: String) -> String {
            sep + r.enumerated().map { i, c in
                i == 2 ? " " + String(repeating: " ", count: widths[i] - 2 - c.count) + c + " "
                       : " " + c + String(repeating: " ", count: widths[i] - 2 - c.count) + " "
            }.joined(separator: sep) + sep
        }
        write("Model: \"\(name)\"")
        write(line("┏", "┳", "┓", "━"))
        write(cells(headers, "┃"))
        write(line("┡", "╇", "┩", "━"))
        for (i, r) in rows.enumerated() {
            write(cells(r, "│"))
            write(i == rows.count - 1 ? line("└", "┴", "┘", "─") : line("├", "┼", "┤", "─"))
        }
        let total = countParams()
        let trainableCount = trainableWeights.reduce(0) { $0 + $1.shape.reduce(1, *) }
        write(" Total params: \(formatCount(total)) (\(formatBytes(total * 4)))")
        write(" Trainable params: \(formatCount(trainableCount)) (\(formatBytes(trainableCount * 4)))")
        write(" Non-trainable params: \(formatCount(total - trainableCount)) (\(formatBytes((total - trainableCount) * 4)))")
        // The plans compiled so far (a step run at some batch size), with their planned memory.
        for (key, plan) in (training?.plans ?? [:]).sorted(by: { $0.key < $1.key }) {
            let parts = key.split(separator: "|")
            guard parts.count >= 2 else { continue }
            write(" Planned memory, \(parts[0]) step at batch \(parts[1]): \(formatBytes(plan.memory.arenaBytes)) arena "
                  + "(live lower bound \(formatBytes(plan.memory.liveLowerBound)), \(plan.steps.count) kernels) + \(formatBytes(plan.memory.feedBytes)) inputs")
        }
    }

    open override class func from(config c: JSON) throws -> Layer { try Model.functional(config: c) }

    /// The summary as one string.
    public var summaryText: String {
        var lines: [String] = []
        summary(print: { lines.append($0) })
        return lines.joined(separator: "\n")
    }
}

func formatCount(_ n: Int) -> String {
    let s = String(n)
    var out = ""
    for (i, c) in s.reversed().enumerated() {
        if i > 0 && i % 3 == 0 { out.append(",") }
        out.append(c)
    }
    return String(out.reversed())
}

func formatBytes(_ n: Int) -> String {
    let units = ["B", "KB", "MB", "GB"]
    var v = Double(n), u = 0
    while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
    let r = (v * 100).rounded() / 100
    let whole = Int(r), frac = Int(((r - Double(whole)) * 100).rounded())
    return "\(whole).\(frac < 10 ? "0" : "")\(frac) \(units[u])"
}

/// A linear stack of layers. The graph is built as soon as the input shape
/// is known: from an `InputLayer`, from the first layer's `inputShape` /
/// `inputDim`, or from `build(inputShape:)`.
public final class Sequential: Model {
    public override class var kerasClassName: String { "Sequential" }
    private var stack: [Layer] = []
    private var inputLayer: InputLayer?

    public init(_ layers: [Layer] = [], name: String? = nil) throws {
        super.init(name: name ?? Naming.unique("sequential"))
        for l in layers { try add(l) }
    }

    public override var layers: [Layer] { stack }

    /// Appends a layer; with a known input shape it is called right away,
    /// so a shape mismatch is reported here and the model is left unchanged.
    public func add(_ layer: Layer) throws {
        if let input = layer as? InputLayer {
            guard stack.isEmpty, inputLayer == nil else { throw KerasError("\(name): an InputLayer can only be the first layer") }
            inputLayer = input
            return
        }
        if stack.contains(where: { $0 === layer }) { throw KerasError("\(name): layer \(layer.name) is already in the model") }
        if stack.contains(where: { $0.name == layer.name }) {
            throw KerasError("\(name): all layers added to a Sequential model should have unique names; name '\(layer.name)' is already the name of a layer in this model")
        }
        if stack.isEmpty, inputLayer == nil, let s = layer.declaredInputShape {
            inputLayer = InputLayer(shape: s, batchSize: layer.declaredBatchSize)
        }
        if let out = outputs.first {
            let y = try layer(out)
            stack.append(layer)
            try setGraph(inputs: inputs, outputs: [y])
        } else {
            stack.append(layer)
            if inputLayer != nil {
                do { try rebuild() } catch { stack.removeLast(); throw error }
            }
        }
    }

    /// Removes the last layer.
    public func pop() throws {
        guard !stack.isEmpty else { throw KerasError("\(name): there are no layers in the model") }
        stack.removeLast()
        try rebuild()
    }

    /// Builds the graph for inputs of this shape (without the batch).
    public func build(inputShape: Shape, batchSize: Int? = nil) throws {
        inputLayer = InputLayer(shape: inputShape, batchSize: batchSize)
        try rebuild()
    }

    private func rebuild() throws {
        guard let inputLayer else { return }
        for l in stack { l.nodeRefs.removeAll() }
        var x = inputLayer.tensor
        for l in stack { x = try l(x) }
        if stack.isEmpty {
            inputs = []
            outputs = []
            functional = nil
            return
        }
        try setGraph(inputs: [inputLayer.tensor], outputs: [x])
    }

    public override var config: JSON {
        var layerList: [JSON] = []
        if let inputLayer { layerList.append(serialized(module: "keras.layers", className: "InputLayer", config: inputLayer.config)) }
        for l in stack {
            var j = serializedLayer(l)
            if let s = l.builtInputShapes?.first { j.set("build_config", ["input_shape": JSON(shape: s)]) }
            layerList.append(j)
        }
        return ["name": .string(name), "trainable": .bool(trainable), "dtype": dtypePolicyJSON, "layers": .array(layerList)]
    }

    public override class func from(config c: JSON) throws -> Layer {
        // Keras <= 2.1 wrote a Sequential's config as the bare list of its layers.
        guard let list = c.arrayValue ?? c["layers"]?.arrayValue else { throw KerasError("Sequential config needs layers") }
        let m = try Sequential(name: c["name"]?.stringValue)
        for j in list { try m.add(try LayerRegistry.deserialize(j)) }
        return m
    }
}

// MARK: - Functional models from Keras JSON

extension Model {
    /// Rebuilds a functional model from its config: creates every layer,
    /// then replays the recorded calls (inbound_nodes) in dependency order.
    static func functional(config c: JSON) throws -> Model {
        guard let layerList = c["layers"]?.arrayValue else { throw KerasError("Functional config needs layers") }
        // Layers, and the keras.ops nodes Keras writes for masks (built per call below).
        var order: [(Layer?, JSON, [JSON])] = []
        for entry in layerList {
            let l = OperationNodes.isOperation(entry) ? nil : try LayerRegistry.deserialize(entry)
            order.append((l, entry, entry["inbound_nodes"]?.arrayValue ?? []))
        }
        // tensors[(layer name, node index)] = outputs of that call
        var tensors: [String: [KerasTensor]] = [:]
        for (l, _, _) in order { if let i = l as? InputLayer { tensors["\(i.name)#0"] = [i.tensor] } }

        func resolve(_ ref: JSON) -> KerasTensor?? {
            // nil: not a tensor reference; .some(nil): not computed yet
            guard ref["class_name"]?.stringValue == "__keras_tensor__", let h = ref["config"]?["keras_history"]?.arrayValue, h.count == 3,
                  let name = h[0].stringValue, let node = h[1].intValue, let idx = h[2].intValue else { return nil }
            guard let outs = tensors["\(name)#\(node)"], idx >= 0, idx < outs.count else { return .some(nil) }
            return .some(outs[idx])
        }

        // Keras 1/2 wrote a node as a list of [layer name, node index, tensor index(, kwargs)]: the same call in Keras 3's form.
        func normalized(_ node: JSON) -> JSON {
            guard let list = node.arrayValue else { return node }
            let refs = list.compactMap(\.arrayValue).filter { $0.count >= 3 }
            let tensors: [JSON] = refs.map { r in ["class_name": "__keras_tensor__", "config": ["keras_history": .array(Array(r.prefix(3)))]] }
            let kwargs = refs.first.flatMap { $0.count > 3 && $0[3].objectValue != nil ? $0[3] : nil } ?? .object([])
            return ["args": tensors.count == 1 ? .array(tensors) : .array([.array(tensors)]), "kwargs": kwargs]
        }
        var pending: [(Layer?, JSON, Int, JSON)] = order.flatMap { l, entry, nodes in
            l is InputLayer ? [] : nodes.enumerated().map { (l, entry, $0.offset, normalized($0.element)) }
        }
        func entryName(_ l: Layer?, _ entry: JSON) -> String { l?.name ?? entry["name"]?.stringValue ?? entry["config"]?["name"]?.stringValue ?? "?" }
        while !pending.isEmpty {
            var progressed = false
            var rest: [(Layer?, JSON, Int, JSON)] = []
            for (l, entry, k, node) in pending {
                let args = node["args"]?.arrayValue ?? []
                var inputs: [KerasTensor] = []
                var ready = true
                let flat = args.flatMap { $0.arrayValue ?? [$0] }
                for a in flat {
                    if let r = resolve(a) { if let t = r { inputs.append(t) } else { ready = false } }
                }
                // kwargs mask: a tensor (or one per input) used as the inputs' masks.
                var masks: [KerasTensor?]? = nil
                if let m = node["kwargs"]?["mask"], !m.isNull {
                    let refs = m.arrayValue ?? [m]
                    var resolved: [KerasTensor?] = []
                    for r in refs {
                        if r.isNull { resolved.append(nil); continue }
                        guard let t = resolve(r) else { throw KerasError("Functional config: \(entryName(l, entry)) has a mask that is not a tensor") }
                        if let t { resolved.append(t) } else { ready = false }
                    }
                    masks = resolved
                }
                if !ready || inputs.isEmpty { rest.append((l, entry, k, node)); continue }
                let training = node["kwargs"]?["training"]?.boolValue
                let outs: [KerasTensor]
                if let l {
                    if let masks, masks.count != inputs.count {
                        throw KerasError("Functional config: \(l.name) has \(inputs.count) input(s) and \(masks.count) mask(s)")
                    }
                    outs = try l(inputs, training: training, masks: masks)
                } else {
                    outs = try OperationNodes.layer(entry, args: args, node: k)(inputs, training: training)
                }
                tensors["\(entryName(l, entry))#\(k)"] = outs
                progressed = true
            }
            if !progressed {
                throw KerasError("Functional config: cannot resolve the inputs of " + rest.map { entryName($0.0, $0.1) }.joined(separator: ", "))
            }
            pending = rest
        }
        func refs(_ key: String) throws -> [KerasTensor] {
            guard var list = c[key]?.arrayValue else { throw KerasError("Functional config needs \(key)") }
            if list.count == 3, list[0].stringValue != nil { list = [.array(list)] }
            return try list.map { r in
                guard let a = r.arrayValue, a.count == 3, let n = a[0].stringValue, let node = a[1].intValue, let i = a[2].intValue,
                      let outs = tensors["\(n)#\(node)"], i >= 0, i < outs.count else {
                    throw KerasError("Functional config: bad tensor reference \(r.serialized()) in \(key)")
                }
                return outs[i]
            }
        }
        return try Model(inputs: try refs("input_layers"), outputs: try refs("output_layers"), name: c["name"]?.stringValue)
    }
}

/// A layer inside a model's config as Keras writes it: layers under
/// "keras.layers", a nested Sequential under "keras", a nested functional
/// model under "keras.src.models.functional" with registered_name "Functional".
func serializedLayer(_ l: Layer) -> JSON {
    if l is Sequential { return serialized(module: "keras", className: "Sequential", config: l.config) }
    if l is Model {
        var j = serialized(module: "keras.src.models.functional", className: "Functional", config: l.config)
        j.set("registered_name", "Functional")
        return j
    }
    return serialized(module: "keras.layers", className: l.kerasClassName, config: l.config)
}
