import KerasIR
import KerasRuntime

/// Training data after checking: arrays converted to the dtypes the graph
/// expects, and the bytes of one sample of each.
struct ArraySet {
    let tensors: [Tensor]
    let count: Int
    let rowBytes: [Int]

    init(_ tensors: [Tensor], dtypes: [DType]? = nil) throws {
        var ts = tensors
        if let dtypes {
            for i in ts.indices where ts[i].dtype != dtypes[i] {
                do { ts[i] = try ts[i].converted(to: dtypes[i]) } catch let e as IRError {
                    throw KerasError("input \(i) (\(dtypes[i].rawValue) ids given as floats): \(e.message)")
                }
            }
        }
        self.tensors = ts
        count = ts.first?.shape.first ?? 0
        rowBytes = ts.map { $0.shape.dropFirst().reduce(1, *) * 4 }
    }

    func slice(_ range: Range<Int>) throws -> ArraySet {
        try ArraySet(tensors.map { try $0.rows(range) })
    }
}

extension Tensor {
    /// The same values in another dtype (int32 ids given as floats, ...).
    public func converted(to dtype: DType) throws -> Tensor {
        if dtype == self.dtype { return self }
        return dtype == .f32 ? try Tensor(floats, shape: shape) : try Tensor(try ints, shape: shape)
    }

    /// Rows `range` of the first axis.
    public func rows(_ range: Range<Int>) throws -> Tensor {
        guard let n = shape.first, range.lowerBound >= 0, range.upperBound <= n else {
            throw KerasError("rows \(range) are outside an array of shape \(shape)")
        }
        let row = shape.dropFirst().reduce(1, *)
        let s = [range.count] + shape.dropFirst()
        switch storage {
        case .f32(let v): return try Tensor(Array(v[(range.lowerBound * row)..<(range.upperBound * row)]), shape: s)
        case .i32(let v): return try Tensor(Array(v[(range.lowerBound * row)..<(range.upperBound * row)]), shape: s)
        }
    }
}

/// Running sums of a loop over batches: loss weighted by batch size,
/// metrics as (total, count) pairs.
struct Accumulator {
    var lossSum: Double = 0
    var samples = 0
    var totals: [Double]
    var counts: [Double]

    init(metrics: Int) {
        totals = Array(repeating: 0, count: metrics)
        counts = Array(repeating: 0, count: metrics)
    }

    mutating func add(_ plan: ExecutionPlan, batch: Int) {
        lossSum += Double(plan.scalarOutput(0)) * Double(batch)
        samples += batch
        for j in totals.indices {
            totals[j] += Double(plan.scalarOutput(1 + 2 * j))
            counts[j] += Double(plan.scalarOutput(2 + 2 * j))
        }
    }

    func logs(_ names: [String], prefix: String = "") -> [(String, Float)] {
        var out = [(prefix + "loss", Float(lossSum / Double(max(samples, 1))))]
        for (j, n) in names.enumerated() { out.append((prefix + n, Float(totals[j] / max(counts[j], 1e-300)))) }
        return out.sorted { $0.0 < $1.0 }
    }
}

extension Model {
    // MARK: checks

    func checkInputs(_ x: [Tensor]) throws {
        if let seq = self as? Sequential, functional == nil, let first = x.first, first.shape.count >= 1 {
            try seq.build(inputShape: Array(first.shape.dropFirst()).map { Optional($0) })
        }
        let g = try requireGraph("using data")
        guard x.count == g.inputs.count else {
            throw KerasError("\(name): the model expects \(g.inputs.count) input array(s) (\(inputNames.joined(separator: ", "))), got \(x.count)")
        }
        for (i, (t, want)) in zip(x, g.inputs).enumerated() {
            let ok = t.shape.count == want.shape.count && zip(t.shape.dropFirst(), want.shape.dropFirst()).allSatisfy { $1 == nil || $0 == $1 }
            guard ok else {
                throw KerasError("\(name): input '\(inputNames[i])' expects arrays of shape \(formatShape(want.shape)), got an array of shape \(formatShape(t.shape.map { $0 }))")
            }
        }
        let counts = x.map { $0.shape.first ?? 0 }
        guard Set(counts).count <= 1 else {
            throw KerasError("\(name): input arrays have different numbers of samples: \(counts.map(String.init).joined(separator: ", "))")
        }
    }

    func checkTargets(_ x: [Tensor], _ y: [Tensor], _ sampleWeight: Tensor?) throws {
        let g = try requireGraph("using data")
        guard y.count == g.outputs.count else {
            throw KerasError("\(name): the model has \(g.outputs.count) output(s) (\(outputNames.joined(separator: ", "))), got \(y.count) target array(s)")
        }
        let n = x.first?.shape.first ?? 0
        for t in y where (t.shape.first ?? -1) != n {
            throw KerasError("\(name): x and y have different numbers of samples: x has \(n), y has \(t.shape.first ?? 0) (shape \(formatShape(t.shape.map { $0 })))")
        }
        if let sw = sampleWeight {
            if training?.temporalSampleWeights == true {
                guard let steps = y.first?.shape.dropFirst().first, sw.shape == [n, steps] else {
                    throw KerasError("\(name): with sample_weight_mode \"temporal\", sample_weight must have shape (\(n), timesteps) matching the targets \(formatShape((y.first?.shape ?? []).map { $0 })), got \(formatShape(sw.shape.map { $0 }))")
                }
            } else if sw.shape != [n] {
                throw KerasError("\(name): sample_weight must have shape (\(n),), got \(formatShape(sw.shape.map { $0 }))")
            }
        }
        guard n > 0 else { throw KerasError("\(name): no samples to use (x has 0 rows)") }
    }

    func signature(_ y: [Tensor], sampleWeights: Bool) -> BatchSignature {
        let temporal = sampleWeights && training?.temporalSampleWeights == true && (y.first?.shape.count ?? 0) >= 2
        return BatchSignature(targets: y.map { TensorType($0.dtype, Array($0.shape.dropFirst())) }, sampleWeights: sampleWeights,
                              temporalSteps: temporal ? y[0].shape[1] : 0)
    }

    // MARK: one batch

    /// Gathers rows `indices` of every array into the plan's inputs and runs it.
    func runBatch(_ plan: ExecutionPlan, x: ArraySet, y: ArraySet?, sampleWeights: [Float]?, indices: ArraySlice<Int>) throws {
        let arrays = x.tensors + (y?.tensors ?? [])
        let rowBytes = x.rowBytes + (y?.rowBytes ?? [])
        let names = inputNames + (y == nil ? [] : outputNames.map { "\($0)_target" })
        let n = indices.count
        // sample weights: one per row, or a row of timesteps (temporal)
        let totalRows = x.tensors.first?.shape.first ?? 1
        let width = sampleWeights.map { w in max(w.count / max(totalRows, 1), 1) } ?? 1
        for (i, t) in arrays.enumerated() {
            let rb = rowBytes[i]
            try t.withRawBytes { src in
                try plan.fillInput(names[i], bytes: rb * n) { dst in
                    var k = 0
                    for r in indices {
                        (dst.baseAddress! + k * rb).copyMemory(from: src.baseAddress! + r * rb, byteCount: rb)
                        k += 1
                    }
                }
            }
        }
        if let sw = sampleWeights {
            try plan.fillInput("sample_weight", bytes: n * width * 4) { dst in
                let p = dst.baseAddress!.assumingMemoryBound(to: Float.self)
                var k = 0
                for r in indices {
                    for j in 0..<width { p[k * width + j] = sw[r * width + j] }
                    k += 1
                }
            }
        }
        try plan.run()
    }

    /// Per-sample weights from class weights (label = argmax of one-hot or the value) times sample weights.
    func combinedWeights(_ y: [Tensor], classWeight: [Int: Float]?, sampleWeight: Tensor?) throws -> [Float]? {
        guard classWeight != nil || sampleWeight != nil else { return nil }
        let n = y[0].shape[0]
        if training?.temporalSampleWeights == true, classWeight != nil {
            throw KerasError("\(name): class_weight with sample_weight_mode \"temporal\" is not supported; fold the class weights into the temporal sample weights")
        }
        if training?.temporalSampleWeights == true, let sw = sampleWeight { return sw.floats }  // [n, timesteps], checked by checkTargets
        var w = sampleWeight?.floats ?? [Float](repeating: 1, count: n)
        if let cw = classWeight {
            let t = y[0]
            let width = t.shape.dropFirst().reduce(1, *)
            let v = t.floats
            for i in 0..<n {
                let label: Int
                if width > 1 {
                    var best = 0
                    for j in 1..<width where v[i * width + j] > v[i * width + best] { best = j }
                    label = best
                } else {
                    guard v[i].isFinite, v[i] >= 0, v[i] == v[i].rounded(), let l = Int(exactly: v[i]) else {
                        throw KerasError("\(name): class_weight needs class indices as targets; row \(i) has \(formatFloat(v[i]))")
                    }
                    label = l
                }
                w[i] *= cw[label] ?? 1
            }
        }
        return w
    }

    /// FNV-1a over what must agree across the processes of a distribution:
    /// every weight's path, dtype and shape, and the compile configuration.
    func modelFingerprint(_ state: TrainingState) -> UInt64 {
        var h: UInt64 = 0xcbf29ce484222325
        func mix(_ text: String) { for b in text.utf8 { h = (h ^ UInt64(b)) &* 0x100000001b3 } }
        for v in weights { mix("\(v.path):\(v.dtype.rawValue)\(v.shape);") }
        mix("\(state.compileConfig)")
        // the optimizer's state made so far (its slots exist after a first fit)
        for name in state.store.names { mix("\(name):\(state.store.type(of: name)!);") }
        return h
    }

    // MARK: fit

    /// Trains for `epochs` epochs (Keras's fit). Batches are taken in order
    /// (shuffled each epoch when `shuffle`), each doing one forward pass in
    /// training mode, one loss, one gradient and one optimizer step.
    @discardableResult
    public func fit(x: [Tensor], y: [Tensor], batchSize: Int? = nil, epochs: Int = 1, verbose: Int = 1,
                    callbacks: [Callback] = [], validationSplit: Float = 0, validationData: ([Tensor], [Tensor])? = nil,
                    shuffle: Bool = true, classWeight: [Int: Float]? = nil, sampleWeight: Tensor? = nil,
                    initialEpoch: Int = 0) throws -> History {
        try checkInputs(x)
        try checkTargets(x, y, sampleWeight)
        let state = try requireCompiled("fit()")
        let bs = batchSize ?? 32
        guard bs > 0 else { throw KerasError("\(name): batch_size must be positive, got \(bs)") }
        guard epochs >= 0, initialEpoch >= 0 else { throw KerasError("\(name): epochs and initial_epoch must not be negative") }
        guard validationSplit >= 0 && validationSplit < 1 else { throw KerasError("\(name): validation_split must be in [0, 1), got \(validationSplit)") }

        let dtypes = inputs.map(\.dtype)
        var xs = try ArraySet(x, dtypes: dtypes), ys = try ArraySet(y)
        var weights = try combinedWeights(y, classWeight: classWeight, sampleWeight: sampleWeight)
        var val: (ArraySet, ArraySet)? = nil
        if let (vx, vy) = validationData {
            try checkInputs(vx)
            try checkTargets(vx, vy, nil)
            val = (try ArraySet(vx, dtypes: dtypes), try ArraySet(vy))
        } else if validationSplit > 0 {
            let split = Int(Float(xs.count) * (1 - validationSplit))
            guard split > 0 && split < xs.count else {
                throw KerasError("\(name): validation_split=\(validationSplit) leaves no training or validation samples out of \(xs.count)")
            }
            val = (try xs.slice(split..<xs.count), try ys.slice(split..<ys.count))
            xs = try xs.slice(0..<split)
            ys = try ys.slice(0..<split)
            weights = weights.map { w in Array(w[0..<(split * (w.count / max(y[0].shape[0], 1)))]) }  // rows of one or of timesteps
        }

        // data parallelism: equal shards of every batch, rank 0's weights and shuffling, rank 0's progress bar
        let dp = try Distribution.active()
        var seed = RandomSeed.next()
        if let dp {
            try dp.checkSameModel(modelFingerprint(state), model: name)
            guard bs % dp.size == 0 else {
                throw KerasError("\(name): batch_size \(bs) is not divisible by the \(dp.size) processes of the distribution (each takes an equal shard of every batch)")
            }
            // rank 0's weights and optimizer state (its slots, step count and learning rate, where a fit made them)
            var sent = Set<UnsafeMutableRawPointer>()
            for b in self.weights.map(\.buffer) + state.store.names.compactMap(state.store.buffer) where sent.insert(b.pointer).inserted {
                try dp.communicator.broadcast(UnsafeMutableRawBufferPointer(start: b.pointer, count: b.count * 4), root: 0)
            }
            try withUnsafeMutableBytes(of: &seed) { try dp.communicator.broadcast($0, root: 0) }
            try dp.communicator.broadcast(UnsafeMutableRawBufferPointer(start: state.randomCounter, count: 8), root: 0)
        }
        let verbose = (dp?.rank ?? 0) == 0 ? verbose : 0
        // from here every rank steps together: one leaving, with any status, stops the job
        dp?.communicator.setInLockstep(true)
        defer { dp?.communicator.setInLockstep(false) }

        let history = History()
        let all = [history] + callbacks
        for c in all { c.model = self }
        stopTraining = false
        let metricNames = state.metricNames(outputNames: outputNames)
        let sig = signature(y, sampleWeights: weights != nil)
        var rng = SplitMix64(seed: seed)
        for c in all { try c.onTrainBegin(logs: [:]) }
        let steps = (xs.count - 1) / bs + 1
        var epoch = initialEpoch
        while epoch < epochs && !stopTraining {
            if verbose > 0 { print("Epoch \(epoch + 1)/\(epochs)") }
            for c in all { try c.onEpochBegin(epoch, logs: [:]) }
            var order = Array(0..<xs.count)
            if shuffle {
                for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
            }
            var acc = Accumulator(metrics: metricNames.count)
            let bar = Progbar(target: steps, verbose: verbose)
            for s in 0..<steps {
                let lo = s * bs, hi = lo + min(bs, xs.count - lo)  // no overflow for batch_size Int.max
                let rows = dp?.shard(lo, hi) ?? lo..<hi  // the epoch's last rows past a multiple of the processes: dropped
                if rows.isEmpty { continue }
                for c in all { try c.onTrainBatchBegin(s, logs: [:]) }
                let plan = try self.plan(.train, batchSize: rows.count, signature: sig)
                state.optimizer.prepareStep()
                try runBatch(plan, x: xs, y: ys, sampleWeights: weights, indices: order[rows])
                acc.add(plan, batch: rows.count)
                let logs = acc.logs(metricNames)
                bar.update(s + 1, logs)
                var batchLogs = Logs(uniqueKeysWithValues: logs)
                batchLogs["loss"] = plan.scalarOutput(0)
                for c in all { try c.onTrainBatchEnd(s, logs: batchLogs) }
                if stopTraining { break }
            }
            var epochLogs = acc.logs(metricNames)
            if let (vx, vy) = val {
                epochLogs += try evaluateArrays(vx, vy, batchSize: bs, weights: nil, signature: signature(vy.tensors, sampleWeights: false))
                    .logs(metricNames, prefix: "val_")
            }
            bar.update(steps, epochLogs.sorted { $0.0 < $1.0 }, final: true)
            let logs = Logs(uniqueKeysWithValues: epochLogs)
            for c in all { try c.onEpochEnd(epoch, logs: logs) }
            epoch += 1
        }
        for c in all { try c.onTrainEnd(logs: [:]) }
        return history
    }

    @discardableResult
    public func fit(_ x: Tensor, _ y: Tensor, batchSize: Int? = nil, epochs: Int = 1, verbose: Int = 1, callbacks: [Callback] = [],
                    validationSplit: Float = 0, validationData: (Tensor, Tensor)? = nil, shuffle: Bool = true,
                    classWeight: [Int: Float]? = nil, sampleWeight: Tensor? = nil, initialEpoch: Int = 0) throws -> History {
        try fit(x: [x], y: [y], batchSize: batchSize, epochs: epochs, verbose: verbose, callbacks: callbacks, validationSplit: validationSplit,
                validationData: validationData.map { ([$0.0], [$0.1]) }, shuffle: shuffle, classWeight: classWeight,
                sampleWeight: sampleWeight, initialEpoch: initialEpoch)
    }

    // MARK: evaluate

    func evaluateArrays(_ x: ArraySet, _ y: ArraySet, batchSize: Int, weights: [Float]?, signature sig: BatchSignature) throws -> Accumulator {
        let state = try requireCompiled("evaluate()")
        var acc = Accumulator(metrics: state.metricNames(outputNames: outputNames).count)
        var lo = 0
        let order = Array(0..<x.count)
        while lo < x.count {
            let hi = lo + min(batchSize, x.count - lo)
            let plan = try self.plan(.test, batchSize: hi - lo, signature: sig)
            try runBatch(plan, x: x, y: y, sampleWeights: weights, indices: order[lo..<hi])
            acc.add(plan, batch: hi - lo)
            lo = hi
        }
        return acc
    }

    /// The loss and metrics over the data, by name ("loss", "accuracy", ...).
    public func evaluateDict(x: [Tensor], y: [Tensor], batchSize: Int? = nil, verbose: Int = 0, sampleWeight: Tensor? = nil) throws -> [String: Float] {
        try checkInputs(x)
        try checkTargets(x, y, sampleWeight)
        let state = try requireCompiled("evaluate()")
        let bs = batchSize ?? 32
        guard bs > 0 else { throw KerasError("\(name): batch_size must be positive, got \(bs)") }
        let weights = try combinedWeights(y, classWeight: nil, sampleWeight: sampleWeight)
        let acc = try evaluateArrays(try ArraySet(x, dtypes: inputs.map(\.dtype)), try ArraySet(y), batchSize: bs, weights: weights,
                                     signature: signature(y, sampleWeights: weights != nil))
        let logs = acc.logs(state.metricNames(outputNames: outputNames))
        if verbose > 0 {
            let steps = (x[0].shape[0] - 1) / bs + 1
            Progbar(target: steps, verbose: verbose).update(steps, logs, final: true)
        }
        return Logs(uniqueKeysWithValues: logs)
    }

    /// Loss then metrics in compile order (Keras's evaluate with return_dict=False).
    public func evaluate(x: [Tensor], y: [Tensor], batchSize: Int? = nil, verbose: Int = 0, sampleWeight: Tensor? = nil) throws -> [Float] {
        let d = try evaluateDict(x: x, y: y, batchSize: batchSize, verbose: verbose, sampleWeight: sampleWeight)
        return [d["loss"]!] + (training?.metricNames(outputNames: outputNames).map { d[$0]! } ?? [])
    }

    public func evaluate(_ x: Tensor, _ y: Tensor, batchSize: Int? = nil, verbose: Int = 0) throws -> [Float] {
        try evaluate(x: [x], y: [y], batchSize: batchSize, verbose: verbose)
    }

    // MARK: predict

    /// Outputs for every sample, computed in inference mode in batches.
    public func predict(_ x: [Tensor], batchSize: Int? = nil, verbose: Int = 0) throws -> [Tensor] {
        try checkInputs(x)
        let bs = batchSize ?? 32
        guard bs > 0 else { throw KerasError("\(name): batch_size must be positive, got \(bs)") }
        let xs = try ArraySet(x, dtypes: inputs.map(\.dtype))
        guard xs.count > 0 else { throw KerasError("\(name): no samples to predict (x has 0 rows)") }
        let sig = BatchSignature(targets: [], sampleWeights: false)
        var results: [[Float]] = []
        var shapes: [[Int]] = []
        var lo = 0
        let order = Array(0..<xs.count)
        while lo < xs.count {
            let hi = lo + min(bs, xs.count - lo)
            let plan = try self.plan(.predict, batchSize: hi - lo, signature: sig)
            try runBatch(plan, x: xs, y: nil, sampleWeights: nil, indices: order[lo..<hi])
            if results.isEmpty {
                results = Array(repeating: [], count: plan.outputCount)
                shapes = (0..<plan.outputCount).map { Array(plan.outputType($0).shape.dropFirst()) }
            }
            for k in 0..<plan.outputCount { results[k] += plan.output(k).floats }
            lo = hi
        }
        if verbose > 0 {
            let steps = (xs.count - 1) / bs + 1
            Progbar(target: steps, verbose: verbose).update(steps, [], final: true)
        }
        return try results.enumerated().map { try Tensor($0.element, shape: [xs.count] + shapes[$0.offset]) }
    }

    /// The single output for every sample.
    public func predict(_ x: Tensor, batchSize: Int? = nil, verbose: Int = 0) throws -> Tensor {
        let outs = try predict([x], batchSize: batchSize, verbose: verbose)
        guard outs.count == 1 else { throw KerasError("\(name): the model has \(outs.count) outputs; use predict([x])") }
        return outs[0]
    }

    /// Keras 2's predict_classes: argmax over the last axis, or p > 0.5 for one unit.
    public func predictClasses(_ x: Tensor, batchSize: Int? = nil) throws -> [Int32] {
        guard outputs.count <= 1 else {
            throw KerasError("\(name): predictClasses needs a model with one output, this one has \(outputs.count)")
        }
        let p = try predict(x, batchSize: batchSize)
        // Keras 2: the argmax over the last axis (one class per sample, or per
        // timestep of a sequence output), or a 0.5 threshold for one unit.
        let width = p.shape.last ?? 1, v = p.floats
        if width == 1 { return v.map { $0 > 0.5 ? 1 : 0 } }
        let rows = width == 0 ? 0 : v.count / width
        return (0..<rows).map { i in
            var best = 0
            for j in 1..<width where v[i * width + j] > v[i * width + best] { best = j }
            return Int32(clamping: best)  // best < width, a row of at most maxDimension values
        }
    }

    /// Keras 2's predict_proba: the predicted probabilities.
    public func predictProba(_ x: Tensor, batchSize: Int? = nil) throws -> Tensor { try predict(x, batchSize: batchSize) }

    // MARK: single batches

    /// One optimizer step on one batch; returns loss then metrics for that batch.
    public func trainOnBatch(x: [Tensor], y: [Tensor], sampleWeight: Tensor? = nil, classWeight: [Int: Float]? = nil) throws -> [Float] {
        try checkInputs(x)
        try checkTargets(x, y, sampleWeight)
        let state = try requireCompiled("train_on_batch()")
        let weights = try combinedWeights(y, classWeight: classWeight, sampleWeight: sampleWeight)
        let sig = signature(y, sampleWeights: weights != nil)
        let n = x[0].shape[0]
        let plan = try self.plan(.train, batchSize: n, signature: sig)
        state.optimizer.prepareStep()
        try runBatch(plan, x: try ArraySet(x, dtypes: inputs.map(\.dtype)), y: try ArraySet(y),
                     sampleWeights: weights, indices: Array(0..<n)[...])
        var acc = Accumulator(metrics: state.metricNames(outputNames: outputNames).count)
        acc.add(plan, batch: n)
        let logs = Logs(uniqueKeysWithValues: acc.logs(state.metricNames(outputNames: outputNames)))
        return [logs["loss"]!] + state.metricNames(outputNames: outputNames).map { logs[$0]! }
    }

    public func trainOnBatch(_ x: Tensor, _ y: Tensor) throws -> [Float] { try trainOnBatch(x: [x], y: [y]) }

    public func testOnBatch(x: [Tensor], y: [Tensor], sampleWeight: Tensor? = nil) throws -> [Float] {
        try evaluate(x: x, y: y, batchSize: x.first?.shape.first ?? 1, sampleWeight: sampleWeight)
    }

    public func predictOnBatch(_ x: [Tensor]) throws -> [Tensor] {
        try predict(x, batchSize: max(x.first?.shape.first ?? 1, 1))
    }
}
