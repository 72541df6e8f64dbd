import Keras
import KerasIR
import KerasRuntime

/// Runs a layer case: builds the layer from its Keras config, loads the
/// weights, and compares the output, the masks, the added loss and the
/// gradients of sum(output * cotangent) with respect to the float inputs and
/// the trainable weights.
struct LayerCaseRunner {
    let dir: String
    let json: JSON
    let tolerance: Float

    func run() throws -> CaseResult {
        guard let className = json["layer"]?.stringValue else { return .fail("case.json has no layer") }
        let layer: Layer
        do {
            let serializedLayer = json["keras_serialized"] ?? ["class_name": .string(className), "config": json["keras_config"] ?? .object([])]
            layer = try LayerRegistry.deserialize(serializedLayer)
        } catch let e as KerasError where e.message.hasPrefix("unknown layer class") {
            let missing = e.message.split(separator: "'").dropFirst().first.map(String.init) ?? className
            return .skip("\(missing) not implemented")
        }
        let training = json["training"]?.boolValue ?? false
        guard let inputDescs = json["inputs"]?.arrayValue, !inputDescs.isEmpty else {
            return .fail("case.json key 'inputs' must be a non-empty list of tensor descriptors")
        }
        let inputs = try inputDescs.map { try TensorFile($0).load(from: dir) }

        let b = GraphBuilder(name: "case")
        let xs = try inputs.enumerated().map { try b.input("x\($0.offset)", $0.element.type) }
        let ctx = CallContext(builder: b, training: training)
        let (outs, masks) = try layer.emit(xs, masks: xs.map { _ in nil }, context: ctx)

        // Weights in get_weights() order.
        let weightFiles = try (json["weights"]?.arrayValue ?? []).map { try TensorFile($0).load(from: dir) }
        try layer.setWeights(weightFiles)

        var outputsToCheck: [(Value, Tensor, String)] = []
        let outputDescs: [JSON] = json["output"]?.arrayValue ?? (json["output"].map { [$0] } ?? [])
        guard outputDescs.count == outs.count else {
            return .fail("layer returned \(outs.count) outputs, the case has \(outputDescs.count)")
        }
        for (i, d) in outputDescs.enumerated() {
            outputsToCheck.append((outs[i], try TensorFile(d).load(from: dir), outs.count == 1 ? "output" : "output_\(i)"))
        }
        if let m = json["output_mask"], !m.isNull {
            guard let mask = masks.first ?? nil else { return .fail("layer produced no mask (output_mask)") }
            outputsToCheck.append((try b.cast(mask, to: .i32), try TensorFile(m).load(from: dir), "output_mask"))
        }
        if let a = json["activity_loss"], !a.isNull {
            guard !ctx.addedLosses.isEmpty else { return .fail("layer added no loss (activity_loss)") }
            var total = ctx.addedLosses[0]
            for l in ctx.addedLosses.dropFirst() { total = try b.add(total, l) }
            let want: Tensor
            if let v = a.doubleValue { want = Tensor(Float(v)) } else { want = try TensorFile(a).load(from: dir) }
            outputsToCheck.append((try b.reshape(total, want.shape), want, "activity_loss"))
        }

        // Gradients of sum(output * C).
        var gradChecks: [(Int, Tensor, String)] = []
        if let cotJSON = json["cotangent"], !cotJSON.isNull {
            let cots = try (cotJSON.arrayValue ?? [cotJSON]).map { try TensorFile($0).load(from: dir) }
            var loss: Value? = nil
            for (o, c) in zip(outs, cots) {
                let cv = try b.constant(c.floats, shape: c.shape)
                let term = try b.reduceSum(b.mul(o, cv), axes: Array(0..<c.shape.count))
                loss = try loss.map { try b.add($0, term) } ?? term
            }
            var wrt: [Value] = []
            var wants: [(Tensor, String)] = []
            for g in json["grad_inputs"]?.arrayValue ?? [] {
                let i = try g.int("input_index", default: 0)
                guard i >= 0 && i < xs.count else {
                    return .fail("grad_inputs: input_index \(i) is outside the case's \(xs.count) input(s)")
                }
                wrt.append(xs[i])
                wants.append((try TensorFile(g).load(from: dir), "grad_input_\(i)"))
            }
            let ws = layer.weights
            for g in json["grad_weights"]?.arrayValue ?? [] {
                let i = try g.int("weight_index", default: 0)
                guard i >= 0 && i < ws.count else {
                    return .fail("grad_weights: weight_index \(i) is outside the layer's \(ws.count) weight(s)")
                }
                guard let p = ctx.parameter(of: ws[i]) else { return .fail("weight \(i) is not used by the layer's graph") }
                wrt.append(p)
                wants.append((try TensorFile(g).load(from: dir), "grad_weight_\(i)"))
            }
            if let loss, !wrt.isEmpty {
                var g = b.graph
                let grads = try Autodiff.gradients(of: loss, wrt: wrt, in: &g)
                b.replaceGraph(g)
                for (k, v) in grads.enumerated() { gradChecks.append((v.id, wants[k].0, wants[k].1)) }
            }
        }

        // State a training call updates (moving statistics), compared after the run.
        if !ctx.updates.isEmpty { try ctx.emitUpdates() }
        var updateChecks: [(Variable, Tensor, String)] = []
        let ws = layer.weights
        for u in json["updated_weights"]?.arrayValue ?? [] {
            let i = try u.int("weight_index", default: 0)
            guard i >= 0 && i < ws.count else {
                return .fail("updated_weights: weight_index \(i) is outside the layer's \(ws.count) weight(s)")
            }
            updateChecks.append((ws[i], try TensorFile(u).load(from: dir), "updated_weight_\(i)"))
        }
        if !updateChecks.isEmpty && ctx.updates.isEmpty { return .fail("the layer updated no weight (updated_weights)") }

        b.setOutputs(outputsToCheck.map(\.0) + gradChecks.map { Value($0.0) })
        let store = ParameterStore()
        for v in ctx.variablesRead { try store.adopt(v.path, v.buffer) }
        let plan = try ExecutionPlan(b.graph, inputShapes: Dictionary(uniqueKeysWithValues: inputs.enumerated().map { ("x\($0.offset)", $0.element.shape) }),
                                     store: store)
        let results = try plan.run(Dictionary(uniqueKeysWithValues: inputs.enumerated().map { ("x\($0.offset)", $0.element) }))
        var failures: [String] = []
        for (k, (_, want, what)) in outputsToCheck.enumerated() {
            if let f = compare(results[k], want, tol: tolerance, what: what) { failures.append(f) }
        }
        for (k, (_, want, what)) in gradChecks.enumerated() {
            if let f = compare(results[outputsToCheck.count + k], want, tol: tolerance, what: what) { failures.append(f) }
        }
        for (v, want, what) in updateChecks {
            if let f = compare(v.value, want, tol: tolerance, what: what) { failures.append(f) }
        }
        return failures.isEmpty ? .pass : .fail(failures.joined(separator: "; "))
    }
}
