import KerasIR

/// Runs a recurrent layer forwards and a copy of it backwards over the same
/// sequence and merges the two (`mergeMode` concat, sum, mul, ave, or nil
/// for both outputs). With return_sequences the backward outputs are put
/// back in time order first; with return_state the forward then the
/// backward states follow the output. Initial states follow the sequence,
/// the forward layer's then the backward layer's (layer([x, h_f, c_f, h_b,
/// c_b]) for LSTM), as Keras splits initial_state in halves. Weights: the
/// forward layer's, then the backward layer's.
public final class Bidirectional: Layer {
    public let forwardLayer: RecurrentLayer
    public let backwardLayer: RecurrentLayer
    public let mergeMode: String?

    public init(_ layer: RecurrentLayer, mergeMode: String? = "concat", backwardLayer: RecurrentLayer? = nil, name: String? = nil) throws {
        if let m = mergeMode, !["concat", "sum", "mul", "ave"].contains(m) {
            throw KerasError("Bidirectional: merge_mode must be one of concat, sum, mul, ave or None, got '\(m)'")
        }
        self.mergeMode = mergeMode
        let base = layer.name.hasPrefix("forward_") ? String(layer.name.dropFirst(8)) : layer.name
        self.forwardLayer = try Bidirectional.copy(layer, name: "forward_" + base, goBackwards: layer.goBackwards)
        if let backwardLayer {
            guard backwardLayer.goBackwards != layer.goBackwards else {
                throw KerasError("Bidirectional: backward_layer.go_backwards must be the opposite of layer.go_backwards")
            }
            guard backwardLayer.returnSequences == layer.returnSequences, backwardLayer.returnState == layer.returnState else {
                throw KerasError("Bidirectional: the forward and backward layers must agree on return_sequences and return_state")
            }
            self.backwardLayer = backwardLayer
        } else {
            self.backwardLayer = try Bidirectional.copy(layer, name: "backward_" + base, goBackwards: !layer.goBackwards)
        }
        super.init(name: name)
        supportsMasking = true
    }

    /// A fresh layer of the same class and arguments, renamed.
    static func copy(_ layer: RecurrentLayer, name: String, goBackwards: Bool) throws -> RecurrentLayer {
        var c = layer.config
        c.set("name", .string(name))
        c.set("go_backwards", .bool(goBackwards))
        guard let l = try LayerRegistry.deserialize(["class_name": .string(layer.kerasClassName), "config": c]) as? RecurrentLayer else {
            throw KerasError("Bidirectional: cannot copy \(layer.name)")
        }
        // Keras zeroes masked outputs of sequences so that the two directions line up.
        l.zeroOutputForMask = layer.returnSequences
        return l
    }

    public override var sublayers: [Layer] { [forwardLayer, backwardLayer] }
    public override var weightsTree: WeightsTree {
        WeightsTree(variables: [], children: [("forward_layer", forwardLayer.weightsTree), ("backward_layer", backwardLayer.weightsTree)], name: name)
    }

    /// The inputs each direction takes: the sequence, then its half of the initial states.
    private func split<T>(_ inputs: [T]) throws -> (forward: [T], backward: [T]) {
        let states = inputs.count - 1, wanted = forwardLayer.stateCount + backwardLayer.stateCount
        guard states == 0 || states == wanted else {
            throw KerasError("\(name): takes a sequence and optionally \(wanted) initial states (the forward layer's \(forwardLayer.stateCount), then the backward layer's \(backwardLayer.stateCount)), got \(inputs.count) inputs")
        }
        guard states > 0 else { return ([inputs[0]], [inputs[0]]) }
        return ([inputs[0]] + inputs[1...forwardLayer.stateCount], [inputs[0]] + inputs[(1 + forwardLayer.stateCount)...])
    }

    public override func build(_ shapes: [Shape]) throws {
        let (f, bw) = try split(shapes)
        try forwardLayer.ensureBuilt(f)
        try backwardLayer.ensureBuilt(bw)
    }

    public override func call(_ inputs: [Value], masks: [Value?], context: CallContext) throws -> [Value] {
        let b = context.builder
        let (f, bw) = try split(inputs)
        let mask = masks.first ?? nil
        let forward = try forwardLayer.emit(f, masks: [mask] + f.dropFirst().map { _ in nil }, context: context).outputs
        var backward = try backwardLayer.emit(bw, masks: [mask] + bw.dropFirst().map { _ in nil }, context: context).outputs
        if forwardLayer.returnSequences { backward[0] = try reverseTime(backward[0], b) }
        let y = forward[0], yRev = backward[0]
        let merged: [Value]
        switch mergeMode {
        case "concat"?: merged = [try b.emit("concat", [y, yRev], ["axis": .int(b.type(of: y).rank - 1)])]
        case "sum"?: merged = [try b.add(y, yRev)]
        case "mul"?: merged = [try b.mul(y, yRev)]
        case "ave"?: merged = [try b.mul(b.add(y, yRev), 0.5)]
        default: merged = [y, yRev]
        }
        return merged + forward.dropFirst() + backward.dropFirst()
    }

    /// A sequence output keeps the input mask (Keras's Bidirectional.compute_mask).
    public override func computeMask(_ inputs: [Value], outputs: [Value], masks: [Value?], context: CallContext) throws -> [Value?] {
        outputs.enumerated().map { i, _ in forwardLayer.returnSequences && (i == 0 || (mergeMode == nil && i == 1)) ? (masks.first ?? nil) : nil }
    }

    public override var config: JSON {
        var c = super.config
        c.set("merge_mode", mergeMode.map { JSON.string($0) } ?? .null)
        c.set("layer", serialized(module: "keras.layers", className: forwardLayer.kerasClassName, config: forwardLayer.config))
        c.set("backward_layer", serialized(module: "keras.layers", className: backwardLayer.kerasClassName, config: backwardLayer.config))
        return c
    }

    public override class func from(config c: JSON) throws -> Layer {
        let (name, trainable) = try baseArguments(c)
        guard let inner = c["layer"], let layer = try LayerRegistry.deserialize(inner) as? RecurrentLayer else {
            throw KerasError("Bidirectional config needs a recurrent layer")
        }
        var backward: RecurrentLayer? = nil
        if let bj = c["backward_layer"], !bj.isNull {
            guard let bl = try LayerRegistry.deserialize(bj) as? RecurrentLayer else { throw KerasError("Bidirectional config: backward_layer must be recurrent") }
            backward = bl
        }
        // merge_mode: absent means concat, null means both outputs.
        let mode: String?
        if let m = c["merge_mode"] {
            if m.isNull { mode = nil } else {
                guard let s = m.stringValue else { throw KerasError("Bidirectional config: merge_mode must be a string or null") }
                mode = s
            }
        } else { mode = "concat" }
        let l = try Bidirectional(layer, mergeMode: mode, backwardLayer: backward, name: name)
        l.trainable = trainable
        try l.applyInputShape(from: c)
        return l
    }
}
