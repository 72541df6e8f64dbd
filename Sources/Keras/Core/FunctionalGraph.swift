import KerasIR

/// The layer calls between some input tensors and some output tensors, in
/// an order where every call comes after the calls it depends on.
struct FunctionalGraph {
    let inputs: [KerasTensor]
    let outputs: [KerasTensor]
    /// Layer calls in execution order (input layers excluded).
    let nodes: [LayerNode]
    /// Every distinct layer, in Keras's order (kerasLayerOrder).
    let layers: [Layer]

    init(inputs: [KerasTensor], outputs: [KerasTensor]) throws {
        self.inputs = inputs
        self.outputs = outputs
        let inputIDs = Set(inputs.map(ObjectIdentifier.init))
        var order: [LayerNode] = []
        var state: [ObjectIdentifier: Int] = [:]  // 1 visiting, 2 done
        func visit(_ t: KerasTensor) throws {
            if inputIDs.contains(ObjectIdentifier(t)) { return }
            let n = t.node
            let id = ObjectIdentifier(n)
            if state[id] == 2 { return }
            if n.inputs.isEmpty {
                throw KerasError("graph disconnected: cannot reach \(t) (from layer \(n.layer.name)) from the model's inputs")
            }
            if state[id] == 1 { throw KerasError("the layer graph has a cycle at \(n.layer.name)") }
            state[id] = 1
            for x in n.inputs + n.masks.compactMap({ $0 }) { try visit(x) }
            state[id] = 2
            order.append(n)
        }
        for o in outputs { try visit(o) }
        nodes = order
        layers = FunctionalGraph.kerasLayerOrder(inputs: inputs, outputs: outputs)
    }

    /// Keras's order of a functional model's layers (its map_graph): by
    /// decreasing depth from the outputs, ties by first visit in a
    /// depth-first walk from the outputs. Weight lists, legacy .h5 files and
    /// the keys of .weights.h5 groups all follow it.
    static func kerasLayerOrder(inputs: [KerasTensor], outputs: [KerasTensor]) -> [Layer] {
        let inputIDs = Set(inputs.map(ObjectIdentifier.init))
        var firstVisit: [ObjectIdentifier: Int] = [:]
        var layerOf: [ObjectIdentifier: Layer] = [:]
        var finished = Set<ObjectIdentifier>()
        var post: [LayerNode] = []
        func parents(_ n: LayerNode) -> [KerasTensor] { n.inputs + n.masks.compactMap { $0 } }
        func walk(_ t: KerasTensor) {
            let n = t.node, id = ObjectIdentifier(n)
            if finished.contains(id) { return }
            if inputIDs.contains(ObjectIdentifier(t)) && !n.inputs.isEmpty { finished.insert(id); return }
            let lid = ObjectIdentifier(n.layer)
            if firstVisit[lid] == nil { firstVisit[lid] = firstVisit.count; layerOf[lid] = n.layer }
            finished.insert(id)  // the graph is acyclic (checked by the execution order above)
            if !n.inputs.isEmpty { for x in parents(n) { walk(x) } }
            post.append(n)
        }
        for o in outputs { walk(o) }
        let inGraph = Set(post.map(ObjectIdentifier.init))
        var nodeDepth: [ObjectIdentifier: Int] = [:], layerDepth: [ObjectIdentifier: Int] = [:]
        for n in post.reversed() {
            let id = ObjectIdentifier(n), lid = ObjectIdentifier(n.layer)
            let depth = max(nodeDepth[id] ?? 0, layerDepth[lid] ?? 0)
            layerDepth[lid] = depth
            nodeDepth[id] = depth
            for x in parents(n) where inGraph.contains(ObjectIdentifier(x.node)) {
                nodeDepth[ObjectIdentifier(x.node), default: 0] = max(depth + 1, nodeDepth[ObjectIdentifier(x.node)] ?? 0)
            }
        }
        // Inputs that reach no output still belong to the model.
        for t in inputs where layerDepth[ObjectIdentifier(t.node.layer)] == nil && t.node.inputs.isEmpty {
            let lid = ObjectIdentifier(t.node.layer)
            layerDepth[lid] = 0
            firstVisit[lid] = -1
            layerOf[lid] = t.node.layer
        }
        return layerDepth.keys.sorted { a, b in
            layerDepth[a]! != layerDepth[b]! ? layerDepth[a]! > layerDepth[b]! : firstVisit[a]! < firstVisit[b]!
        }.map { layerOf[$0]! }
    }

    /// Replays every call into `context`'s graph, starting from values for
    /// the inputs (and their masks). Returns the outputs' values and masks.
    func emit(inputValues: [Value], inputMasks: [Value?], context: CallContext) throws -> ([Value], [Value?]) {
        var env: [ObjectIdentifier: (Value, Value?)] = [:]
        for (i, t) in inputs.enumerated() { env[ObjectIdentifier(t)] = (inputValues[i], inputMasks[i]) }
        for n in nodes {
            let args = try n.inputs.map { t -> (Value, Value?) in
                guard let v = env[ObjectIdentifier(t)] else { throw KerasError("\(n.layer.name): input \(t) was not computed") }
                return v
            }
            // A mask given at call time replaces the one the input carries.
            let argMasks = try zip(args, n.masks).map { arg, explicit -> Value? in
                guard let m = explicit else { return arg.1 }
                guard let v = env[ObjectIdentifier(m)] else { throw KerasError("\(n.layer.name): mask \(m) was not computed") }
                return v.0
            }
            let ctx = n.training.map { t in t == context.training ? context : context.with(training: t) } ?? context
            let (outs, masks) = try n.layer.emit(args.map(\.0), masks: argMasks, context: ctx)
            guard outs.count == n.outputCount else {
                throw KerasError("\(n.layer.name): returned \(outs.count) outputs, \(n.outputCount) when it was called")
            }
            for i in 0..<outs.count { if let t = n.output(i) { env[ObjectIdentifier(t)] = (outs[i], masks[i]) } }
        }
        let results = try outputs.map { t -> (Value, Value?) in
            guard let v = env[ObjectIdentifier(t)] else { throw KerasError("output \(t) was not computed") }
            return v
        }
        return (results.map(\.0), results.map(\.1))
    }
}

