import KerasIR

/// SimpleRNN, LSTM and GRU: Keras 3's cells and layer arguments. The input
/// projection of every time step is one GEMM ([batch, time, features] x
/// kernel). With Keras's default activations the steps are then one
/// rnn_sequence op (one GEMM and one fused cell kernel per step, backward
/// through time in one kernel); `unroll: true`, recurrent dropout in training
/// and other activations unroll the steps into the graph instead, as Keras
/// unrolls. A mask makes a masked step carry the previous states over.
public class RecurrentLayer: Layer {
    public let units: Int
    public let returnSequences: Bool
    public let returnState: Bool
    public let goBackwards: Bool
    public let stateful: Bool
    public let unroll: Bool
    public let useBias: Bool
    public let dropout: Float
    public let recurrentDropout: Float
    public let seed: Int?
    /// With a mask, a masked step outputs zeros instead of repeating the last
    /// output (the states carry over either way). Bidirectional sets it for
    /// sequences, as Keras does.
    public var zeroOutputForMask = false
    public private(set) var activation: ActivationFunction = .tanh
    public private(set) var recurrentActivation: ActivationFunction = .sigmoid
    let activationSpec: ActivationConvertible
    let recurrentActivationSpec: ActivationConvertible
    let kernelInitSpec: InitializerConvertible
    let recurrentInitSpec: InitializerConvertible
    let biasInitSpec: InitializerConvertible
    public var kernelRegularizer: Regularizer?, recurrentRegularizer: Regularizer?, biasRegularizer: Regularizer?
    public var kernelConstraint: Constraint?, recurrentConstraint: Constraint?, biasConstraint: Constraint?
    public private(set) var kernel: Variable?
    public private(set) var recurrentKernel: Variable?
    public private(set) var bias: Variable?
    /// A stateful layer's carried states (h, and c for LSTM), one row per sample.
    public private(set) var stateVariables: [Variable] = []

    /// Gate blocks in the kernel (1, 4 for LSTM's i f c o, 3 for GRU's z r h).
    var gateCount: Int { 1 }
    /// The number of state tensors (LSTM carries h and c).
    public var stateCount: Int { 1 }
    /// Weight name prefix, as Keras's cell ("lstm_cell").
    class var cellName: String { "simple_rnn_cell" }

    init(units: Int, activation: ActivationConvertible, recurrentActivation: ActivationConvertible, useBias: Bool,
         kernelInitializer: InitializerConvertible, recurrentInitializer: InitializerConvertible, biasInitializer: InitializerConvertible,
         kernelRegularizer: Regularizer?, recurrentRegularizer: Regularizer?, biasRegularizer: Regularizer?, activityRegularizer: Regularizer?,
         kernelConstraint: Constraint?, recurrentConstraint: Constraint?, biasConstraint: Constraint?,
         dropout: Float, recurrentDropout: Float, returnSequences: Bool, returnState: Bool, goBackwards: Bool,
         stateful: Bool, unroll: Bool, seed: Int?, inputShape: [Int]?, name: String?) {
        self.units = units
        self.activationSpec = activation
        self.recurrentActivationSpec = recurrentActivation
        self.useBias = useBias
        self.kernelInitSpec = kernelInitializer
        self.recurrentInitSpec = recurrentInitializer
        self.biasInitSpec = biasInitializer
        self.kernelRegularizer = kernelRegularizer
        self.recurrentRegularizer = recurrentRegularizer
        self.biasRegularizer = biasRegularizer
        self.kernelConstraint = kernelConstraint
        self.recurrentConstraint = recurrentConstraint
        self.biasConstraint = biasConstraint
        self.dropout = dropout
        self.recurrentDropout = recurrentDropout
        self.returnSequences = returnSequences
        self.returnState = returnState
        self.goBackwards = goBackwards
        self.stateful = stateful
        self.unroll = unroll
        self.seed = seed
        super.init(name: name)
        self.activityRegularizer = activityRegularizer
        declaredInputShape = declaredShape(inputShape: inputShape, inputDim: nil)
        supportsMasking = true
    }

    /// The bias's shape and initial values (GRU with reset_after keeps two rows).
    func biasShape() -> [Int] { [gateCount * units] }
    func initialBias() throws -> Initializer { try biasInitSpec.resolveInitializer() }

    public override func build(_ shapes: [Shape]) throws {
        let s = shapes[0]
        guard units > 0, units <= TensorType.maxDimension else { throw KerasError("\(name): units must be positive, got \(units)") }
        guard dropout >= 0 && dropout <= 1, recurrentDropout >= 0 && recurrentDropout <= 1 else {
            throw KerasError("\(name): dropout (\(dropout)) and recurrent_dropout (\(recurrentDropout)) must be in [0, 1]")
        }
        guard s.count == 3, let features = s[2] else {
            throw KerasError("\(name): expected an input of shape (batch, time, features) with known features, got \(formatShape(s))")
        }
        // Initial states follow the sequence: layer([x, h0]) or, for LSTM, layer([x, h0, c0]).
        guard shapes.count == 1 || shapes.count == 1 + stateCount else {
            throw KerasError("\(name): takes a sequence and optionally \(stateCount) initial state(s), got \(shapes.count) inputs")
        }
        for st in shapes.dropFirst() where st.count != 2 || (st[1] != nil && st[1] != units) {
            throw KerasError("\(name): an initial state must have shape (batch, \(units)), got \(formatShape(st))")
        }
        guard !(stateful && shapes.count > 1) else {
            throw KerasError("\(name): a stateful RNN carries its own states; it takes no initial state")
        }
        if stateful {
            // The carried states have one row per sample of a fixed batch.
            guard let batch = s[0] ?? declaredBatchSize else {
                throw KerasError("\(name): a stateful RNN needs a fixed batch size; give the input a batch size (Input(shape:batchSize:) or batch_input_shape)")
            }
            stateVariables = try (0..<stateCount).map { i in
                try addWeight(name: stateCount == 1 ? "state" : ["state_h", "state_c"][i], shape: [batch, units], initializer: Zeros(), trainable: false)
            }
        }
        activation = try activationSpec.resolveActivation()
        recurrentActivation = try recurrentActivationSpec.resolveActivation()
        let cell = Self.cellName
        kernel = try addWeight(name: "\(cell)/kernel", shape: [features, gateCount * units], initializer: kernelInitSpec.resolveInitializer(),
                               regularizer: kernelRegularizer, constraint: kernelConstraint)
        recurrentKernel = try addWeight(name: "\(cell)/recurrent_kernel", shape: [units, gateCount * units],
                                        initializer: recurrentInitSpec.resolveInitializer(),
                                        regularizer: recurrentRegularizer, constraint: recurrentConstraint)
        if useBias {
            bias = try addWeight(name: "\(cell)/bias", shape: biasShape(), initializer: initialBias(),
                                 regularizer: biasRegularizer, constraint: biasConstraint)
        }
    }

    /// One step: the projected input x_t [batch, gates*units] (input bias
    /// included), the states, the recurrent kernel and the recurrent bias
    /// (GRU with reset_after); returns the new states (the output is the first).
    func step(_ xt: Value, _ states: [Value], _ u: Value, recurrentBias: Value?, _ b: GraphBuilder) throws -> [Value] {
        let h = try activation(try b.add(xt, b.matmul(states[0], u)), b)
        return [h]
    }

    /// The bias split into the part added to every step's input projection
    /// and the part added to every recurrent product (none but for GRU's reset_after).
    func splitBias(_ bias: Value, _ b: GraphBuilder) throws -> (input: Value, recurrent: Value?) { (bias, nil) }

    /// Columns [k*units, (k+1)*units) of a [batch, n] value.
    func gate(_ v: Value, _ k: Int, _ b: GraphBuilder) throws -> Value {
        try b.emit("slice", [v], ["begin": .ints([0, k * units]), "size": .ints([-1, units])])
    }

    public override func call(_ inputs: [Value], masks: [Value?], context: CallContext) throws -> [Value] {
        let b = context.builder
        guard let kernel, let recurrentKernel else { throw KerasError("\(name): the layer is not built") }
        var x = inputs[0]
        let shape = b.type(of: x).shape
        guard shape.count == 3, shape[1] != TensorType.unknown else {
            throw KerasError("\(name): needs a known number of time steps, got \(formatShape(kerasShape(shape)))")
        }
        let time = shape[1]
        // A [batch, time] mask: a masked step keeps the previous states (Keras's RNN with mask).
        var mask: Value? = nil
        if let m = masks.first ?? nil {
            let mt = b.type(of: m)
            guard mt.rank == 2, mt.shape[1] == time else {
                throw KerasError("\(name): the mask must have shape (batch, \(time)), got \(formatShape(kerasShape(mt.shape)))")
            }
            mask = mt.dtype == .f32 ? m : try b.cast(m, to: .f32)
        }
        // Dropout masks are drawn once per sequence, as Keras does.
        if context.training && dropout > 0 {
            let keep = try keepMask(x, sharedAxes: [1], keep: 1 - dropout, seed: seed, context)
            x = try b.mul(x, b.mul(keep, 1 / (1 - dropout)))
        }
        var projected = try b.matmul(x, context.read(kernel))
        let biases = try bias.map { try splitBias(try context.read($0), b) }
        if let biases { projected = try b.add(projected, biases.input) }
        let u = try context.read(recurrentKernel)
        let first = try b.reshape(b.emit("slice", [projected], ["begin": .ints([0, 0, 0]), "size": .ints([-1, 1, units])]), [-1, units])
        let zero = try b.mul(first, 0)
        var states = [Value](repeating: zero, count: stateCount)
        if stateful {
            let batch = stateVariables.first?.shape[0] ?? -1
            guard shape[0] == batch else {
                throw KerasError("\(name): this stateful RNN was built for batches of \(batch), got \(shape[0] == TensorType.unknown ? "an unknown batch size" : String(shape[0]))")
            }
            states = try stateVariables.map { try context.read($0) }
        }
        if inputs.count == 1 + stateCount { states = Array(inputs.dropFirst()) }
        var recurrentKeep: Value? = nil
        if context.training && recurrentDropout > 0 {
            let keep = try keepMask(zero, sharedAxes: [], keep: 1 - recurrentDropout, seed: seed, context)
            recurrentKeep = try b.mul(keep, 1 / (1 - recurrentDropout))
        }
        let output: Value
        if let cell = fusedCell, !unroll, recurrentKeep == nil {
            (output, states) = try fusedSequence(cell: cell, projected, u, states, mask: mask, recurrentBias: biases?.recurrent, b)
        } else {
            (output, states) = try unrolledSequence(projected, u, states, mask: mask, zero: zero, recurrentKeep: recurrentKeep,
                                                    recurrentBias: biases?.recurrent, b)
        }
        // A stateful layer starts the next batch where this one ended.
        for (v, value) in zip(stateVariables, states) { try context.addUpdate(v, value) }
        return returnState ? [output] + states : [output]
    }

    /// The rnn_sequence cell for this layer's activations, or nil where only
    /// the unrolled graph computes them (other activations).
    var fusedCell: String? { activation.name == "tanh" ? "simple_rnn" : nil }

    /// The whole sequence as one rnn_sequence op: returns the output (the
    /// sequence or the last output) and the final states.
    func fusedSequence(cell: String, _ projected: Value, _ u: Value, _ initial: [Value], mask: Value?, recurrentBias: Value?,
                       _ b: GraphBuilder) throws -> (Value, [Value]) {
        let time = b.type(of: projected).shape[1]
        var ins = [projected, u] + initial
        if let mask { ins.append(mask) }
        if cell == "gru" { ins.append(try recurrentBias ?? b.constant([Float](repeating: 0, count: gateCount * units), shape: [gateCount * units])) }
        let seq = try b.emit("rnn_sequence", ins, ["cell": .string(cell), "go_backwards": .bool(goBackwards), "masked": .bool(mask != nil)])
        let finals = try (0..<stateCount).map { i in
            try b.reshape(b.emit("slice", [seq], ["begin": .ints([0, time - 1, i * units]), "size": .ints([-1, 1, units])]), [-1, units])
        }
        guard returnSequences else { return (finals[0], finals) }
        var out = stateCount == 1 ? seq : try b.emit("slice", [seq], ["begin": .ints([0, 0, 0]), "size": .ints([-1, -1, units])])
        if zeroOutputForMask, let mask {
            // The outputs are in processing order, so the mask is too.
            let m = try b.reshape(goBackwards ? reverseTime(mask, b) : mask, [-1, time, 1])
            out = try b.mul(out, m)
        }
        return (out, finals)
    }

    /// Every step in the graph: the path for `unroll`, recurrent dropout and activations the fused op lacks.
    func unrolledSequence(_ projected: Value, _ u: Value, _ initial: [Value], mask: Value?, zero: Value, recurrentKeep: Value?,
                          recurrentBias: Value?, _ b: GraphBuilder) throws -> (Value, [Value]) {
        let time = b.type(of: projected).shape[1], width = gateCount * units
        var states = initial
        var outputs: [Value] = []
        for k in 0..<time {
            let t = goBackwards ? time - 1 - k : k
            let xt = try b.reshape(b.emit("slice", [projected], ["begin": .ints([0, t, 0]), "size": .ints([-1, 1, width])]), [-1, width])
            var inStates = states
            if let r = recurrentKeep { inStates[0] = try b.mul(inStates[0], r) }
            var next = try step(xt, inStates, u, recurrentBias: recurrentBias, b)
            var out = next[0]
            if let mask {
                let keep = try b.emit("slice", [mask], ["begin": .ints([0, t]), "size": .ints([-1, 1])])
                next = try zip(next, states).map { try b.select(keep, $0, $1) }
                out = zeroOutputForMask ? try b.select(keep, next[0], zero) : next[0]
            }
            // Only the hidden state is dropped; the carried states are the undropped ones.
            states = next
            if returnSequences { outputs.append(try b.reshape(out, [-1, 1, units])) }
        }
        let output = returnSequences ? (outputs.count == 1 ? outputs[0] : try b.emit("concat", outputs, ["axis": .int(1)])) : states[0]
        return (output, states)
    }

    /// A sequence output keeps the input mask; a last output and the states have none.
    public override func computeMask(_ inputs: [Value], outputs: [Value], masks: [Value?], context: CallContext) throws -> [Value?] {
        outputs.enumerated().map { i, _ in i == 0 && returnSequences ? (masks.first ?? nil) : nil }
    }

    /// Keras keeps the weights in the cell (`cell/vars`) and a stateful layer's states in the layer's own `vars`.
    public override var weightsTree: WeightsTree {
        WeightsTree(variables: stateVariables, children: [("cell", WeightsTree(variables: [kernel, recurrentKernel, bias].compactMap { $0 }, children: [],
                                                                               name: Self.cellName))], name: name)
    }

    /// Zeroes a stateful layer's carried states (Keras's reset_states).
    public func resetStates() throws {
        for v in stateVariables { try v.assign(try Tensor(zeros: v.type)) }
    }

    public override var config: JSON {
        var c = super.config
        c.set("return_sequences", .bool(returnSequences))
        c.set("return_state", .bool(returnState))
        c.set("go_backwards", .bool(goBackwards))
        c.set("stateful", .bool(stateful))
        c.set("unroll", .bool(unroll))
        c.set("zero_output_for_mask", .bool(zeroOutputForMask))
        c.set("units", JSON(units))
        c.set("activation", activationJSON((try? activationSpec.resolveActivation()) ?? activation))
        c.set("use_bias", .bool(useBias))
        c.set("kernel_initializer", (try? Initializers.serialize(kernelInitSpec.resolveInitializer())) ?? .null)
        c.set("recurrent_initializer", (try? Initializers.serialize(recurrentInitSpec.resolveInitializer())) ?? .null)
        c.set("bias_initializer", (try? Initializers.serialize(biasInitSpec.resolveInitializer())) ?? .null)
        c.set("kernel_regularizer", kernelRegularizer?.serialized ?? .null)
        c.set("recurrent_regularizer", recurrentRegularizer?.serialized ?? .null)
        c.set("bias_regularizer", biasRegularizer?.serialized ?? .null)
        c.set("activity_regularizer", activityRegularizer?.serialized ?? .null)
        c.set("kernel_constraint", kernelConstraint?.serialized ?? .null)
        c.set("recurrent_constraint", recurrentConstraint?.serialized ?? .null)
        c.set("bias_constraint", biasConstraint?.serialized ?? .null)
        c.set("dropout", JSON(dropout))
        c.set("recurrent_dropout", JSON(recurrentDropout))
        c.set("seed", seed.map { JSON($0) } ?? .null)
        return c
    }

    /// The keys every recurrent config sets after construction.
    static func configured(_ l: RecurrentLayer, _ c: JSON) throws -> RecurrentLayer {
        l.trainable = try c.bool("trainable", default: true)
        l.zeroOutputForMask = try c.bool("zero_output_for_mask", default: false)
        try l.applyInputShape(from: c)
        return l
    }

    /// The arguments every recurrent config shares, with Keras 1/2 names accepted.
    struct Arguments {
        var units: Int, activation: ActivationFunction, recurrentActivation: ActivationFunction, useBias: Bool
        var kernelInit: AnyInitializer, recurrentInit: AnyInitializer, biasInit: AnyInitializer
        var kernelReg: Regularizer?, recurrentReg: Regularizer?, biasReg: Regularizer?, activityReg: Regularizer?
        var kernelCon: Constraint?, recurrentCon: Constraint?, biasCon: Constraint?
        var dropout: Float, recurrentDropout: Float, returnSequences: Bool, returnState: Bool, goBackwards: Bool
        var stateful: Bool, unroll: Bool, seed: Int?, name: String?

        init(_ c: JSON, defaultRecurrentActivation: String) throws {
            guard let u = try c.optionalInt("units") ?? c.optionalInt("output_dim") else { throw KerasError("recurrent layer config needs units") }
            units = u
            activation = try ActivationFunction.get(c["activation"].flatMap { $0.isNull ? nil : $0 } ?? "tanh")
            recurrentActivation = try ActivationFunction.get(c["recurrent_activation"] ?? c["inner_activation"] ?? .string(defaultRecurrentActivation))
            useBias = try c.bool("use_bias", default: true)
            func initializer(_ keys: [String], _ def: Initializer) throws -> AnyInitializer {
                for k in keys { if let v = c[k], !v.isNull { return AnyInitializer(try Initializers.get(v)) } }
                return AnyInitializer(def)
            }
            kernelInit = try initializer(["kernel_initializer", "init"], GlorotUniform())
            recurrentInit = try initializer(["recurrent_initializer", "inner_init"], Orthogonal())
            biasInit = try initializer(["bias_initializer"], Zeros())
            kernelReg = try Regularizers.get(c["kernel_regularizer"] ?? c["W_regularizer"])
            recurrentReg = try Regularizers.get(c["recurrent_regularizer"] ?? c["U_regularizer"])
            biasReg = try Regularizers.get(c["bias_regularizer"] ?? c["b_regularizer"])
            activityReg = try Regularizers.get(c["activity_regularizer"])
            kernelCon = try Constraints.get(c["kernel_constraint"])
            recurrentCon = try Constraints.get(c["recurrent_constraint"])
            biasCon = try Constraints.get(c["bias_constraint"])
            dropout = try c.float("dropout", default: try c.float("dropout_W", default: 0))
            recurrentDropout = try c.float("recurrent_dropout", default: try c.float("dropout_U", default: 0))
            returnSequences = try c.bool("return_sequences", default: false)
            returnState = try c.bool("return_state", default: false)
            goBackwards = try c.bool("go_backwards", default: false)
            stateful = try c.bool("stateful", default: false)
            unroll = try c.bool("unroll", default: false)
            seed = try c.optionalInt("seed")
            name = c["name"]?.stringValue
        }
    }
}

/// h_t = activation(x_t W + b + h_{t-1} U).
public final class SimpleRNN: RecurrentLayer {
    public init(_ units: Int, activation: ActivationConvertible = "tanh", useBias: Bool = true,
                kernelInitializer: InitializerConvertible = "glorot_uniform", recurrentInitializer: InitializerConvertible = "orthogonal",
                biasInitializer: InitializerConvertible = "zeros", kernelRegularizer: Regularizer? = nil, recurrentRegularizer: Regularizer? = nil,
                biasRegularizer: Regularizer? = nil, activityRegularizer: Regularizer? = nil, kernelConstraint: Constraint? = nil,
                recurrentConstraint: Constraint? = nil, biasConstraint: Constraint? = nil, dropout: Float = 0, recurrentDropout: Float = 0,
                returnSequences: Bool = false, returnState: Bool = false, goBackwards: Bool = false, stateful: Bool = false,
                unroll: Bool = false, seed: Int? = nil, inputShape: [Int]? = nil, weights: [Tensor]? = nil, name: String? = nil) {
        super.init(units: units, activation: activation, recurrentActivation: "sigmoid", useBias: useBias, kernelInitializer: kernelInitializer,
                   recurrentInitializer: recurrentInitializer, biasInitializer: biasInitializer, kernelRegularizer: kernelRegularizer,
                   recurrentRegularizer: recurrentRegularizer, biasRegularizer: biasRegularizer, activityRegularizer: activityRegularizer,
                   kernelConstraint: kernelConstraint, recurrentConstraint: recurrentConstraint, biasConstraint: biasConstraint,
                   dropout: dropout, recurrentDropout: recurrentDropout, returnSequences: returnSequences, returnState: returnState,
                   goBackwards: goBackwards, stateful: stateful, unroll: unroll, seed: seed, inputShape: inputShape, name: name)
        initialWeights = weights  // Keras 2's weights=: set once the layer is built
    }

    /// Keras's SimpleRNN config has no seed (LSTM's and GRU's do).
    public override var config: JSON {
        var c = super.config
        c.remove("seed")
        return c
    }

    public override class func from(config c: JSON) throws -> Layer {
        let a = try Arguments(c, defaultRecurrentActivation: "sigmoid")
        let l = SimpleRNN(a.units, activation: a.activation, useBias: a.useBias, kernelInitializer: a.kernelInit,
                          recurrentInitializer: a.recurrentInit, biasInitializer: a.biasInit, kernelRegularizer: a.kernelReg,
                          recurrentRegularizer: a.recurrentReg, biasRegularizer: a.biasReg, activityRegularizer: a.activityReg,
                          kernelConstraint: a.kernelCon, recurrentConstraint: a.recurrentCon, biasConstraint: a.biasCon,
                          dropout: a.dropout, recurrentDropout: a.recurrentDropout, returnSequences: a.returnSequences,
                          returnState: a.returnState, goBackwards: a.goBackwards, stateful: a.stateful, unroll: a.unroll, seed: a.seed,
                          name: a.name)
        return try configured(l, c)
    }
}

/// Gates i, f, c, o (in that order in the kernels): c_t = f c + i act(z_c),
/// h_t = o act(c_t). `unitForgetBias` starts the forget gate's bias at 1.
public final class LSTM: RecurrentLayer {
    public let unitForgetBias: Bool
    override var gateCount: Int { 4 }
    public override var stateCount: Int { 2 }
    override class var cellName: String { "lstm_cell" }

    public init(_ units: Int, activation: ActivationConvertible = "tanh", recurrentActivation: ActivationConvertible = "sigmoid",
                useBias: Bool = true, kernelInitializer: InitializerConvertible = "glorot_uniform",
                recurrentInitializer: InitializerConvertible = "orthogonal", biasInitializer: InitializerConvertible = "zeros",
                unitForgetBias: Bool = true, kernelRegularizer: Regularizer? = nil, recurrentRegularizer: Regularizer? = nil,
                biasRegularizer: Regularizer? = nil, activityRegularizer: Regularizer? = nil, kernelConstraint: Constraint? = nil,
                recurrentConstraint: Constraint? = nil, biasConstraint: Constraint? = nil, dropout: Float = 0, recurrentDropout: Float = 0,
                returnSequences: Bool = false, returnState: Bool = false, goBackwards: Bool = false, stateful: Bool = false,
                unroll: Bool = false, seed: Int? = nil, inputShape: [Int]? = nil, weights: [Tensor]? = nil, name: String? = nil) {
        self.unitForgetBias = unitForgetBias
        super.init(units: units, activation: activation, recurrentActivation: recurrentActivation, useBias: useBias,
                   kernelInitializer: kernelInitializer, recurrentInitializer: recurrentInitializer, biasInitializer: biasInitializer,
                   kernelRegularizer: kernelRegularizer, recurrentRegularizer: recurrentRegularizer, biasRegularizer: biasRegularizer,
                   activityRegularizer: activityRegularizer, kernelConstraint: kernelConstraint, recurrentConstraint: recurrentConstraint,
                   biasConstraint: biasConstraint, dropout: dropout, recurrentDropout: recurrentDropout, returnSequences: returnSequences,
                   returnState: returnState, goBackwards: goBackwards, stateful: stateful, unroll: unroll, seed: seed,
                   inputShape: inputShape, name: name)
        initialWeights = weights  // Keras 2's weights=: set once the layer is built
    }

    override func initialBias() throws -> Initializer {
        let base = try biasInitSpec.resolveInitializer()
        return unitForgetBias ? ForgetGateBias(base: base, units: units) : base
    }

    override func step(_ xt: Value, _ states: [Value], _ u: Value, recurrentBias: Value?, _ b: GraphBuilder) throws -> [Value] {
        let z = try b.add(xt, b.matmul(states[0], u))
        if activation.name == "tanh" && recurrentActivation.name == "sigmoid" {
            // Keras's defaults: the fused cell kernels (one pass over z for c, one for h).
            let c = try b.emit("lstm_cell_state", [z, states[1]])
            return [try b.emit("lstm_hidden", [z, c]), c]
        }
        let i = try recurrentActivation(try gate(z, 0, b), b), f = try recurrentActivation(try gate(z, 1, b), b)
        let g = try activation(try gate(z, 2, b), b), o = try recurrentActivation(try gate(z, 3, b), b)
        let c = try b.add(b.mul(f, states[1]), b.mul(i, g))
        return [try b.mul(o, activation(c, b)), c]
    }

    override var fusedCell: String? { activation.name == "tanh" && recurrentActivation.name == "sigmoid" ? "lstm" : nil }

    public override var config: JSON {
        var c = super.config
        c.set("recurrent_activation", activationJSON(recurrentActivation))
        c.set("unit_forget_bias", .bool(unitForgetBias))
        return c
    }

    public override class func from(config c: JSON) throws -> Layer {
        let a = try Arguments(c, defaultRecurrentActivation: "sigmoid")
        let l = LSTM(a.units, activation: a.activation, recurrentActivation: a.recurrentActivation, useBias: a.useBias,
                     kernelInitializer: a.kernelInit, recurrentInitializer: a.recurrentInit, biasInitializer: a.biasInit,
                     unitForgetBias: try c.bool("unit_forget_bias", default: true), kernelRegularizer: a.kernelReg,
                     recurrentRegularizer: a.recurrentReg, biasRegularizer: a.biasReg, activityRegularizer: a.activityReg,
                     kernelConstraint: a.kernelCon, recurrentConstraint: a.recurrentCon, biasConstraint: a.biasCon,
                     dropout: a.dropout, recurrentDropout: a.recurrentDropout, returnSequences: a.returnSequences,
                     returnState: a.returnState, goBackwards: a.goBackwards, stateful: a.stateful, unroll: a.unroll, seed: a.seed,
                     name: a.name)
        return try configured(l, c)
    }
}

/// The bias initializer with the forget gate's block set to ones (LSTM's unit_forget_bias).
struct ForgetGateBias: Initializer {
    static let className = "ForgetGateBias"
    let base: Initializer
    let units: Int
    func values(shape: [Int]) throws -> [Float] {
        var v = try base.values(shape: shape)
        for j in units..<min(2 * units, v.count) { v[j] = 1 }
        return v
    }
    var config: JSON { base.config }
}

/// Gates z, r, h. With `resetAfter` (Keras 3's default) the reset gate
/// multiplies the recurrent product and the bias has an input row and a
/// recurrent row; without it the reset gate multiplies the state first.
public final class GRU: RecurrentLayer {
    public let resetAfter: Bool
    override var gateCount: Int { 3 }
    override class var cellName: String { "gru_cell" }

    public init(_ units: Int, activation: ActivationConvertible = "tanh", recurrentActivation: ActivationConvertible = "sigmoid",
                useBias: Bool = true, kernelInitializer: InitializerConvertible = "glorot_uniform",
                recurrentInitializer: InitializerConvertible = "orthogonal", biasInitializer: InitializerConvertible = "zeros",
                kernelRegularizer: Regularizer? = nil, recurrentRegularizer: Regularizer? = nil,
                biasRegularizer: Regularizer? = nil, activityRegularizer: Regularizer? = nil, kernelConstraint: Constraint? = nil,
                recurrentConstraint: Constraint? = nil, biasConstraint: Constraint? = nil, dropout: Float = 0, recurrentDropout: Float = 0,
                returnSequences: Bool = false, returnState: Bool = false, goBackwards: Bool = false, stateful: Bool = false,
                unroll: Bool = false, resetAfter: Bool = true, seed: Int? = nil, inputShape: [Int]? = nil, weights: [Tensor]? = nil, name: String? = nil) {
        self.resetAfter = resetAfter
        super.init(units: units, activation: activation, recurrentActivation: recurrentActivation, useBias: useBias,
                   kernelInitializer: kernelInitializer, recurrentInitializer: recurrentInitializer, biasInitializer: biasInitializer,
                   kernelRegularizer: kernelRegularizer, recurrentRegularizer: recurrentRegularizer, biasRegularizer: biasRegularizer,
                   activityRegularizer: activityRegularizer, kernelConstraint: kernelConstraint, recurrentConstraint: recurrentConstraint,
                   biasConstraint: biasConstraint, dropout: dropout, recurrentDropout: recurrentDropout, returnSequences: returnSequences,
                   returnState: returnState, goBackwards: goBackwards, stateful: stateful, unroll: unroll, seed: seed,
                   inputShape: inputShape, name: name)
        initialWeights = weights  // Keras 2's weights=: set once the layer is built
    }

    override func biasShape() -> [Int] { resetAfter ? [2, 3 * units] : [3 * units] }

    /// reset_after keeps the input bias in row 0 and the recurrent bias in row 1.
    override func splitBias(_ bias: Value, _ b: GraphBuilder) throws -> (input: Value, recurrent: Value?) {
        guard resetAfter else { return (bias, nil) }
        func row(_ r: Int) throws -> Value {
            try b.reshape(b.emit("slice", [bias], ["begin": .ints([r, 0]), "size": .ints([1, -1])]), [3 * units])
        }
        return (try row(0), try row(1))
    }

    override func step(_ xt: Value, _ states: [Value], _ u: Value, recurrentBias: Value?, _ b: GraphBuilder) throws -> [Value] {
        let h = states[0]
        let xz = try gate(xt, 0, b), xr = try gate(xt, 1, b), xh = try gate(xt, 2, b)
        let candidate: Value, z: Value
        if resetAfter {
            var inner = try b.matmul(h, u)
            if let rb = recurrentBias { inner = try b.add(inner, rb) }
            z = try recurrentActivation(try b.add(xz, gate(inner, 0, b)), b)
            let r = try recurrentActivation(try b.add(xr, gate(inner, 1, b)), b)
            candidate = try activation(try b.add(xh, b.mul(r, gate(inner, 2, b))), b)
        } else {
            let uz = try b.emit("slice", [u], ["begin": .ints([0, 0]), "size": .ints([-1, 2 * units])])
            let uh = try b.emit("slice", [u], ["begin": .ints([0, 2 * units]), "size": .ints([-1, units])])
            let inner = try b.matmul(h, uz)
            z = try recurrentActivation(try b.add(xz, gate(inner, 0, b)), b)
            let r = try recurrentActivation(try b.add(xr, gate(inner, 1, b)), b)
            candidate = try activation(try b.add(xh, b.matmul(b.mul(r, h), uh)), b)
        }
        // h_t = z h + (1 - z) candidate
        return [try b.add(b.mul(z, h), b.mul(b.sub(b.scalar(1), z), candidate))]
    }

    override var fusedCell: String? {
        activation.name == "tanh" && recurrentActivation.name == "sigmoid" ? (resetAfter ? "gru" : "gru_reset_before") : nil
    }

    public override var config: JSON {
        var c = super.config
        c.set("recurrent_activation", activationJSON(recurrentActivation))
        c.set("reset_after", .bool(resetAfter))
        return c
    }

    public override class func from(config c: JSON) throws -> Layer {
        let a = try Arguments(c, defaultRecurrentActivation: "sigmoid")
        let l = GRU(a.units, activation: a.activation, recurrentActivation: a.recurrentActivation, useBias: a.useBias,
                    kernelInitializer: a.kernelInit, recurrentInitializer: a.recurrentInit, biasInitializer: a.biasInit,
                    kernelRegularizer: a.kernelReg, recurrentRegularizer: a.recurrentReg, biasRegularizer: a.biasReg,
                    activityRegularizer: a.activityReg, kernelConstraint: a.kernelCon, recurrentConstraint: a.recurrentCon,
                    biasConstraint: a.biasCon, dropout: a.dropout, recurrentDropout: a.recurrentDropout,
                    returnSequences: a.returnSequences, returnState: a.returnState, goBackwards: a.goBackwards, stateful: a.stateful,
                    unroll: a.unroll, resetAfter: try c.bool("reset_after", default: true), seed: a.seed, name: a.name)
        return try configured(l, c)
    }
}

/// The sequence with its time axis (1) reversed.
func reverseTime(_ x: Value, _ b: GraphBuilder) throws -> Value {
    let shape = b.type(of: x).shape
    let time = shape[1]
    guard time > 1 else { return x }
    let steps = try (0..<time).reversed().map { t in
        try b.emit("slice", [x], ["begin": .ints([0, t] + [Int](repeating: 0, count: shape.count - 2)),
                                  "size": .ints([-1, 1] + [Int](repeating: -1, count: shape.count - 2))])
    }
    return try b.emit("concat", steps, ["axis": .int(1)])
}
