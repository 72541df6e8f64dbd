import CKernels
import KerasIR
import KerasRuntime

/// What compile() fixed, and the graphs and plans derived from it. Plans
/// are cached per (kind, batch size, target types): a smaller last batch
/// gets its own plan.
final class TrainingState {
    let optimizer: Optimizer
    let losses: [Loss]
    let lossWeights: [Float]
    let metrics: [[Metric]]
    let store = ParameterStore()
    var plans: [String: ExecutionPlan] = [:]
    var graphs: [String: Graph] = [:]
    /// The training plans' one count of steps, which random draws (dropout
    /// masks) are keyed by: every batch size's plan, and a distributed
    /// step's, continue one stream (Keras's seed generator state).
    let randomCounter: UnsafeMutablePointer<UInt64> = {
        let p = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
        p.initialize(to: 0)
        return p
    }()

    /// What compile() was given, as Keras's compile_config.
    var compileConfig: JSON = [:]
    /// False for the state an uncompiled model's predict() keeps its plans in.
    var isCompiled = true
    /// Keras 2's sample_weight_mode "temporal": one weight per sample and timestep.
    var temporalSampleWeights = false
    /// The variables training updates, as they were trainable at compile():
    /// changing `trainable` takes effect at the next compile, as in Keras.
    var trainableAtCompile: Set<ObjectIdentifier> = []

    init(optimizer: Optimizer, losses: [Loss], lossWeights: [Float], metrics: [[Metric]]) {
        self.optimizer = optimizer
        self.losses = losses
        self.lossWeights = lossWeights
        self.metrics = metrics
    }

    deinit {
        plans = [:]  // the plans read the counter until they go
        randomCounter.deallocate()
    }

    func invalidatePlans() {
        plans = [:]
        graphs = [:]
    }

    /// Log names of the metrics, in output then compile order.
    func metricNames(outputNames: [String]) -> [String] {
        metrics.enumerated().flatMap { i, ms in ms.map { outputNames.count > 1 ? "\(outputNames[i])_\($0.name)" : $0.name } }
    }
}

/// The kinds of graph a compiled model runs.
enum StepKind: String {
    case train, test, predict
}

/// The description of one batch's data: element types of the targets
/// (beyond the batch dimension) and whether sample weights are fed.
struct BatchSignature: Hashable {
    var targets: [TensorType]
    var sampleWeights: Bool
    /// Timesteps of temporal sample weights ([batch, steps]); 0 for one weight per sample.
    var temporalSteps = 0
    var key: String { targets.map(\.description).joined(separator: ";") + (sampleWeights ? "+sw" : "") + (temporalSteps > 0 ? "x\(temporalSteps)" : "") }
    /// Weights per sample row.
    var sampleWeightWidth: Int { max(temporalSteps, 1) }
}

extension Model {
    // MARK: compile

    /// Configures training: optimizer, one loss per output (or one for
    /// all), optional loss weights and metrics. Unknown names throw here.
    public func compile(optimizer: OptimizerConvertible = "rmsprop", loss: [LossConvertible], metrics: [String] = [],
                        lossWeights: [Float]? = nil, sampleWeightMode: String? = nil) throws {
        let graph = try requireGraph("compile()")
        guard sampleWeightMode == nil || sampleWeightMode == "temporal" else {
            throw KerasError("\(name): sample_weight_mode must be \"temporal\" or None, got '\(sampleWeightMode!)'")
        }
        let opt = try optimizer.resolveOptimizer()
        try opt.checkClipping()
        let n = graph.outputs.count
        let resolved = try loss.map { try $0.resolveLoss() }
        guard resolved.count == 1 || resolved.count == n else {
            throw KerasError("\(name): compile got \(resolved.count) losses for a model with \(n) outputs")
        }
        let losses = resolved.count == n ? resolved : Array(repeating: resolved[0], count: n)
        let weights = lossWeights ?? Array(repeating: 1, count: n)
        guard weights.count == n else { throw KerasError("\(name): loss_weights has \(weights.count) entries for \(n) outputs") }
        let ms = try (0..<n).map { i in try metrics.map { try Metric.get($0, loss: losses[i]) } }
        training = TrainingState(optimizer: opt, losses: losses, lossWeights: weights, metrics: ms)
        training?.temporalSampleWeights = sampleWeightMode == "temporal"
        training?.trainableAtCompile = Set(trainableWeights.map(ObjectIdentifier.init))
        // Keras's compile_config, for model files.
        let lossJSON: [JSON] = losses.map { l in
            let defaults = !l.fromLogits && (l.config["label_smoothing"]?.doubleValue ?? 0) == 0
            if defaults { return .string(l.name) }
            var c = l.config
            c.set("name", .string(l.name))
            return serialized(module: "keras.losses", className: l.name.split(separator: "_").map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined(), config: c)
        }
        training?.compileConfig = [
            "optimizer": serialized(module: "keras.optimizers", className: type(of: opt).kerasClassName, config: opt.config),
            "loss": lossJSON.count == 1 ? lossJSON[0] : .array(lossJSON),
            "loss_weights": lossWeights.map { ws in JSON.array(ws.map { JSON($0) }) } ?? .null,
            "metrics": metrics.isEmpty ? .null : JSON.array(metrics.map { JSON.string($0) }),
            "weighted_metrics": .null, "run_eagerly": false, "steps_per_execution": 1, "jit_compile": true,
        ]
    }

    public func compile(optimizer: OptimizerConvertible = "rmsprop", loss: LossConvertible, metrics: [String] = [],
                        lossWeights: [Float]? = nil, sampleWeightMode: String? = nil) throws {
        try compile(optimizer: optimizer, loss: [loss], metrics: metrics, lossWeights: lossWeights, sampleWeightMode: sampleWeightMode)
    }

    /// Loss weights by output name (Keras's dict form); an output not named
    /// weighs 1, a name that is no output is an error.
    public func compile(optimizer: OptimizerConvertible = "rmsprop", loss: [LossConvertible], metrics: [String] = [],
                        lossWeights: [String: Float]) throws {
        let names = outputNames
        if let unknown = lossWeights.keys.sorted().first(where: { !names.contains($0) }) {
            throw KerasError("\(name): loss_weights names '\(unknown)', which is not an output (outputs: \(names.joined(separator: ", ")))")
        }
        try compile(optimizer: optimizer, loss: loss, metrics: metrics, lossWeights: names.map { lossWeights[$0] ?? 1 })
        training?.compileConfig.set("loss_weights", .object(names.map { ($0, JSON(lossWeights[$0] ?? 1)) }))
    }

    public var optimizer: Optimizer? { training?.isCompiled == true ? training?.optimizer : nil }
    public var isCompiled: Bool { training?.isCompiled == true }

    func requireCompiled(_ what: String) throws -> TrainingState {
        guard let t = training, t.isCompiled else { throw KerasError("\(name): you must call compile() before \(what)") }
        return t
    }

    var inputNames: [String] { inputs.map { $0.node.layer.name } }
    var outputNames: [String] { outputs.map { $0.node.layer.name } }

    // MARK: graphs

    /// Builds the symbolic (unknown batch) graph of one step.
    func buildStepGraph(_ kind: StepKind, signature: BatchSignature, state: TrainingState?) throws -> Graph {
        let g = try requireGraph("building a \(kind.rawValue) step")
        let b = GraphBuilder(name: "\(name)_\(kind.rawValue)_step")
        let ctx = CallContext(builder: b, training: kind == .train, isTracing: false, seed: 0x5EED)
        var xs: [Value] = []
        for (i, t) in g.inputs.enumerated() {
            xs.append(try b.input(inputNames[i], TensorType(t.dtype, irShape(t.shape))))
        }
        let (outs, outMasks) = try g.emit(inputValues: xs, inputMasks: xs.map { _ in nil }, context: ctx)
        if kind == .predict {
            // State a call carries forward (a stateful RNN's last states) is kept in every kind of step.
            try ctx.emitUpdates()
            b.setOutputs(outs)
            return b.graph
        }
        guard let state else { throw KerasError("\(name): you must call compile() before training or evaluating") }
        var ys: [Value] = []
        for (i, t) in signature.targets.enumerated() {
            ys.append(try b.input("\(outputNames[i])_target", TensorType(t.dtype, [TensorType.unknown] + t.shape)))
        }
        let sw = signature.sampleWeights
            ? try b.input("sample_weight", .f32(signature.temporalSteps > 0 ? [TensorType.unknown, signature.temporalSteps] : [TensorType.unknown])) : nil

        /// Sample weights for output i's per-position values `v`: the fed
        /// weights, times the output mask scaled by total/valid as Keras's
        /// apply_mask does (so the mean runs over unmasked positions).
        func weights(for v: Value, output i: Int, forLoss: Bool) throws -> Value? {
            let t = b.type(of: v)
            var w: Value? = try sw.map { s in
                if signature.temporalSteps > 0 {
                    // temporal: [batch, steps] against per-timestep values [batch, steps, ...]
                    guard t.rank >= 2, t.shape[1] == signature.temporalSteps else {
                        throw KerasError("\(name): temporal sample weights [batch, \(signature.temporalSteps)] need per-timestep loss values, got \(t) for output \(outputNames[i])")
                    }
                    return t.rank > 2 ? try b.reshape(s, [-1, signature.temporalSteps] + [Int](repeating: 1, count: t.rank - 2)) : s
                }
                return t.rank > 1 ? try b.reshape(s, [-1] + [Int](repeating: 1, count: t.rank - 1)) : s
            }
            if let m0 = outMasks[i], b.type(of: m0).rank == t.rank {
                var m = b.type(of: m0).dtype == .f32 ? m0 : try b.cast(m0, to: .f32)
                if forLoss {
                    let total = try b.dimSize(m, axes: Array(0..<t.rank))
                    let valid = try b.reduceSum(m, axes: Array(0..<t.rank))
                    m = try b.mul(m, b.div(total, b.add(valid, 1e-7)))
                }
                w = try w.map { try b.mul($0, m) } ?? m
            }
            return w
        }

        /// (sum of values * weights, sum of weights) over everything.
        func weightedSums(_ v: Value, _ w: Value?) throws -> (Value, Value) {
            let t = b.type(of: v)
            let all = Array(0..<t.rank)
            guard let w else { return (try b.reduceSum(v, axes: all), try b.dimSize(v, axes: all)) }
            return (try b.reduceSum(b.mul(v, w), axes: all), try b.reduceSum(b.broadcast(w, like: v), axes: all))
        }

        var loss: Value? = nil
        try b.withLayer("loss") {
            for i in 0..<outs.count {
                let values = try state.losses[i].values(ys[i], outs[i], b)
                // Keras's sum_over_batch_size: sum(values * weights) / number of values.
                let (total, _) = try weightedSums(values, weights(for: values, output: i, forLoss: true))
                let mean = try b.div(total, b.dimSize(values, axes: Array(0..<b.type(of: values).rank)))
                let term = state.lossWeights[i] == 1 ? mean : try b.mul(mean, state.lossWeights[i])
                loss = try loss.map { try b.add($0, term) } ?? term
            }
            for v in ctx.variablesRead {
                if let r = v.regularizer { loss = try b.add(loss!, r.penalty(ctx.read(v), b)) }
            }
            for extra in ctx.addedLosses { loss = try b.add(loss!, extra) }
        }
        var metricOutputs: [Value] = []
        try b.withLayer("metrics") {
            for i in 0..<outs.count {
                for m in state.metrics[i] {
                    let values = try m.values(ys[i], outs[i], b)
                    let (total, count) = try weightedSums(values, weights(for: values, output: i, forLoss: false))
                    metricOutputs += [total, count]
                }
            }
        }
        if kind != .train { try ctx.emitUpdates() }
        var graph = b.graph
        if kind == .train {
            let trainable = ctx.variablesRead.filter { state.trainableAtCompile.contains(ObjectIdentifier($0)) }
            let params = trainable.compactMap { ctx.parameter(of: $0) }
            let dp = try Distribution.active()
            if let dp {
                // each process draws its rows' part of the random numbers the whole batch would (dropout masks)
                for i in graph.nodes.indices where graph.nodes[i].op.hasPrefix("random_") { graph.nodes[i].attrs["shard"] = .int(dp.rank) }
            }
            var grads = try Autodiff.gradients(of: loss!, wrt: params, in: &graph)
            let ub = GraphBuilder(extending: graph)
            if dp != nil {
                // data parallelism: every gradient, the loss and the metrics' sums averaged over the processes
                try ub.withLayer("allreduce") {
                    grads = try grads.map { try ub.allreduceMean($0) }
                    loss = try ub.allreduceMean(loss!)
                    metricOutputs = try metricOutputs.map { try ub.allreduceMean($0) }
                }
            }
            var cache: [String: Value] = [:]
            try state.optimizer.emitUpdates(Array(zip(trainable, zip(params, grads)).map { ($0, $1.0, $1.1) }), builder: ub) { name, buffer in
                if let v = cache[name] { return v }
                try state.store.adopt(name, buffer)
                let p = try ub.parameter(name, buffer.type)
                cache[name] = p
                return p
            }
            // Layer state (moving statistics) after the optimizer's updates.
            for (v, value) in ctx.finalUpdates {
                guard let p = ctx.parameter(of: v) else { continue }
                _ = try ub.assign(p, value)
            }
            graph = ub.graph
        }
        graph.outputs = [loss!] + metricOutputs
        return graph
    }

    /// The plan for one step kind at a batch size, compiled on first use.
    func plan(_ kind: StepKind, batchSize: Int, signature: BatchSignature) throws -> ExecutionPlan {
        let state: TrainingState
        if let t = training { state = t } else {
            // prediction without compile: a private state holds the plan cache
            training = TrainingState(optimizer: SGD(), losses: [], lossWeights: [], metrics: [])
            training!.isCompiled = false
            state = training!
        }
        guard state.isCompiled || kind == .predict else { throw KerasError("\(name): you must call compile() before training or evaluating") }
        // a distributed training step is another graph (its allreduces)
        let dp = kind == .train ? try Distribution.active().map { "|dp\($0.size)" } ?? "" : ""
        let key = "\(kind.rawValue)|\(batchSize)|\(signature.key)\(dp)"
        if let p = state.plans[key] { return p }
        let gkey = "\(kind.rawValue)|\(signature.key)\(dp)"
        let graph: Graph
        if let g = state.graphs[gkey] { graph = g } else {
            graph = try buildStepGraph(kind, signature: signature, state: kind == .predict ? nil : state)
            state.graphs[gkey] = graph
        }
        for v in weights { try state.store.adopt(v.path, v.buffer) }
        var shapes: [String: [Int]] = [:]
        for v in graph.inputs {
            let t = graph.type(of: v)
            shapes[graph[v].name!] = t.shape.map { $0 == TensorType.unknown ? batchSize : $0 }
        }
        let p = try ExecutionPlan(graph, inputShapes: shapes, store: state.store, randomCounter: kind == .train ? state.randomCounter : nil)
        state.plans[key] = p
        return p
    }
}

extension Model {
    /// The compiled plan that `trainOnBatch(x:y:)` runs for batches shaped like
    /// `x` and `y`, compiling it on first use. Benchmarks and `kgraph` read its
    /// cost, memory plan and kernel list; running it directly is not needed.
    public func trainingPlan(x: [Tensor], y: [Tensor]) throws -> ExecutionPlan {
        try checkInputs(x)
        try checkTargets(x, y, nil)
        _ = try requireCompiled("trainingPlan()")
        return try plan(.train, batchSize: x[0].shape[0], signature: signature(y, sampleWeights: false))
    }

    /// The step graph before any pass: the training step (forward, loss,
    /// gradients, optimizer updates) or the inference step, symbolic (unknown
    /// batch size) or specialized to `batchSize` as a plan compiles it.
    /// Targets are taken as shaped like the outputs.
    public func stepGraph(training: Bool, batchSize: Int? = nil) throws -> Graph {
        if training { _ = try requireCompiled("stepGraph(training: true)") }
        let targets = outputs.map { TensorType(.f32, $0.shape.dropFirst().map { $0 ?? 1 }) }
        let g = try buildStepGraph(training ? .train : .predict, signature: BatchSignature(targets: targets, sampleWeights: false),
                                   state: training ? self.training : nil)
        guard let batchSize else { return g }
        do { return try specialize(g, batchSize: batchSize) } catch let e as IRError { throw KerasError("\(name): \(e.message)") }
    }

    /// The step graph as text: before the passes (`after: nil`), or the dump
    /// after each pass named ("all" for every pass), as `kgraph dump MODEL
    /// [--batch N] --after` prints it.
    public func dumpGraph(training: Bool = false, batchSize: Int? = nil, after passes: [String]? = nil) throws -> String {
        var g = try stepGraph(training: training, batchSize: batchSize)
        guard let passes else { return g.description }
        var pipeline = PassPipeline.standard()
        for p in passes where p != "all" && !pipeline.knownPassNames.contains(p) {
            throw KerasError("\(name): unknown pass '\(p)' (passes: \(pipeline.knownPassNames.joined(separator: ", ")), all)")
        }
        var out = ""
        pipeline.dumpAfter = Set(passes)
        pipeline.dumpSink = { out += $0 }
        try pipeline.run(&g)
        return out
    }

    /// The compiled inference plan `predict` uses at one batch size.
    public func predictionPlan(batchSize: Int) throws -> ExecutionPlan {
        guard batchSize > 0 else { throw KerasError("\(name): batch_size must be positive, got \(batchSize)") }
        return try plan(.predict, batchSize: batchSize, signature: BatchSignature(targets: [], sampleWeights: false))
    }
}
