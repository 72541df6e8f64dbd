import KerasIR
import KerasRuntime

/// Keras 2's generator methods: fit_generator, evaluate_generator and
/// predict_generator over a Sequence of batches or a throwing `next()`,
/// batches prefetched on a background thread (Data/Prefetcher.swift).
extension Model {
    /// A generator's batch checked before it touches the model, the error naming the step.
    fileprivate func checkGeneratorBatch(_ x: [Tensor], _ y: [Tensor], _ at: String) throws {
        do {
            try checkInputs(x)
            try checkTargets(x, y, nil)
        } catch let e as KerasError {
            throw KerasError("the generator's batch at \(at): \(e.message)")
        }
    }

    /// Trains on batches drawn from a sequence, `stepsPerEpoch` per epoch,
    /// as Keras 2's fit_generator: batches are prefetched on a background
    /// thread, at most `maxQueueSize` ahead (`workers: 0` draws them on this
    /// thread); validation on arrays or on `validationSteps` batches of a
    /// generator after each epoch; class weights; epochs counted from
    /// `initialEpoch`.
    @discardableResult
    public func fitGenerator<S: Sequence>(_ generator: S, stepsPerEpoch: Int, epochs: Int = 1, verbose: Int = 1,
                                          callbacks: [Callback] = [], validationData: ([Tensor], [Tensor])? = nil,
                                          validationGenerator: AnySequence<([Tensor], [Tensor])>? = nil, validationSteps: Int? = nil,
                                          classWeight: [Int: Float]? = nil, maxQueueSize: Int = 10, workers: Int = 1,
                                          initialEpoch: Int = 0) throws -> History where S.Element == ([Tensor], [Tensor]) {
        var it = generator.makeIterator()
        return try fitDrawing({ it.next().map { .success($0) } }, stepsPerEpoch: stepsPerEpoch, epochs: epochs, verbose: verbose,
                              callbacks: callbacks, validationData: validationData, validationGenerator: validationGenerator,
                              validationSteps: validationSteps, classWeight: classWeight, maxQueueSize: maxQueueSize, workers: workers,
                              initialEpoch: initialEpoch)
    }

    /// fit_generator on a generator that may fail (reading files, decoding):
    /// `next` returns a batch, nil when it has no more, or throws. A throw
    /// stops training with an error naming the step; the steps before it
    /// have trained, the failed one changes nothing.
    @discardableResult
    public func fitGenerator(_ next: @escaping () throws -> ([Tensor], [Tensor])?, stepsPerEpoch: Int, epochs: Int = 1, verbose: Int = 1,
                             callbacks: [Callback] = [], validationData: ([Tensor], [Tensor])? = nil, classWeight: [Int: Float]? = nil,
                             maxQueueSize: Int = 10, workers: Int = 1, initialEpoch: Int = 0) throws -> History {
        try fitDrawing(catching(next), stepsPerEpoch: stepsPerEpoch, epochs: epochs, verbose: verbose, callbacks: callbacks,
                       validationData: validationData, validationGenerator: nil, validationSteps: nil, classWeight: classWeight,
                       maxQueueSize: maxQueueSize, workers: workers, initialEpoch: initialEpoch)
    }

    /// A throwing generator as one that yields its failure once, then ends.
    fileprivate func catching<T>(_ next: @escaping () throws -> T?) -> () -> Result<T, Error>? {
        var failed = false
        return {
            guard !failed else { return nil }
            do { return try next().map { .success($0) } } catch { failed = true; return .failure(error) }
        }
    }

    /// The batch drawn for `step`, or the generator's failure or its end as an error naming the step.
    fileprivate func drawn<T>(_ r: Result<T, Error>?, _ step: String) throws -> T {
        switch r {
        case .success(let b)?: return b
        case .failure(let e)?: throw KerasError("\(name): the generator failed at \(step): \(e)")
        case nil: throw KerasError("\(name): the generator ran out of batches at \(step)")
        }
    }

    fileprivate func fitDrawing(_ pull: @escaping () -> Result<([Tensor], [Tensor]), Error>?, stepsPerEpoch: Int, epochs: Int, verbose: Int,
                            callbacks: [Callback], validationData: ([Tensor], [Tensor])?,
                            validationGenerator: AnySequence<([Tensor], [Tensor])>?, validationSteps: Int?,
                            classWeight: [Int: Float]?, maxQueueSize: Int, workers: Int, initialEpoch: Int) throws -> History {
        guard stepsPerEpoch > 0 else { throw KerasError("\(name): steps_per_epoch must be positive, got \(stepsPerEpoch)") }
        guard epochs >= 0, initialEpoch >= 0, maxQueueSize >= 1, workers >= 0 else {
            throw KerasError("\(name): epochs and initial_epoch must not be negative, max_queue_size must be positive and workers not negative")
        }
        if validationGenerator != nil, (validationSteps ?? 0) <= 0 {
            throw KerasError("\(name): validation_steps must be positive with a validation generator")
        }
        let state = try requireCompiled("fit_generator()")
        let history = History()
        let all = [history] + callbacks
        for c in all { c.model = self }
        stopTraining = false
        let batches = Prefetcher(AnyIterator(pull), limit: maxQueueSize, total: stepsPerEpoch * max(epochs - initialEpoch, 0),
                                 background: workers > 0)
        defer { batches.stop() }
        let validationBatches = validationGenerator?.makeIterator()
        let metricNames = state.metricNames(outputNames: outputNames)
        for c in all { try c.onTrainBegin(logs: [:]) }
        var epoch = initialEpoch
        while epoch < epochs && !stopTraining {
            if verbose > 0 { print("Epoch \(epoch + 1)/\(epochs)") }
            for c in all { try c.onEpochBegin(epoch, logs: [:]) }
            var acc = Accumulator(metrics: metricNames.count)
            let bar = Progbar(target: stepsPerEpoch, verbose: verbose)
            for s in 0..<stepsPerEpoch {
                let (bx, by) = try drawn(batches.next(), "step \(s) of epoch \(epoch + 1)")
                try checkGeneratorBatch(bx, by, "step \(s) of epoch \(epoch + 1)")
                let n = bx[0].shape[0]
                let weights = try combinedWeights(by, classWeight: classWeight, sampleWeight: nil)
                let sig = signature(by, sampleWeights: weights != nil)
                let plan = try self.plan(.train, batchSize: n, signature: sig)
                state.optimizer.prepareStep()
                try runBatch(plan, x: try ArraySet(bx, dtypes: inputs.map(\.dtype)), y: try ArraySet(by),
                             sampleWeights: weights, indices: Array(0..<n)[...])
                acc.add(plan, batch: n)
                bar.update(s + 1, acc.logs(metricNames))
                for c in all { try c.onTrainBatchEnd(s, logs: Logs(uniqueKeysWithValues: acc.logs(metricNames))) }
                if stopTraining { break }
            }
            var logs = acc.logs(metricNames)
            if let (vx, vy) = validationData {
                logs += try evaluateDict(x: vx, y: vy, batchSize: nil, verbose: 0, sampleWeight: nil).map { ("val_" + $0.key, $0.value) }
                    .sorted { $0.0 < $1.0 }
            } else if validationBatches != nil, let steps = validationSteps {
                // each epoch's validation continues where the last one stopped, as Keras's does
                logs += try evaluateBatches(steps: steps) { validationBatches!.next().map { .success($0) } }.map { ("val_" + $0.key, $0.value) }.sorted { $0.0 < $1.0 }
            }
            bar.update(stepsPerEpoch, logs, final: true)
            for c in all { try c.onEpochEnd(epoch, logs: Logs(uniqueKeysWithValues: logs)) }
            epoch += 1
        }
        for c in all { try c.onTrainEnd(logs: [:]) }
        return history
    }

    /// Keras 1's fit_generator: epochs of `samplesPerEpoch` samples (as many
    /// batches as that takes, from the first batch's size), `nbEpoch` epochs,
    /// and validation on `nbValSamples` samples of a validation generator.
    @discardableResult
    public func fitGenerator<S: Sequence>(_ generator: S, samplesPerEpoch: Int, nbEpoch: Int, verbose: Int = 1, callbacks: [Callback] = [],
                                          validationData: ([Tensor], [Tensor])? = nil,
                                          validationGenerator: AnySequence<([Tensor], [Tensor])>? = nil, nbValSamples: Int? = nil,
                                          classWeight: [Int: Float]? = nil, maxQueueSize: Int = 10) throws -> History
        where S.Element == ([Tensor], [Tensor]) {
        guard samplesPerEpoch > 0 else { throw KerasError("\(name): samples_per_epoch must be positive, got \(samplesPerEpoch)") }
        let (train, rows) = try peekBatchRows(generator, "the generator")
        var validation: AnySequence<([Tensor], [Tensor])>? = nil, validationSteps: Int? = nil
        if let v = validationGenerator {
            guard let samples = nbValSamples, samples > 0 else { throw KerasError("\(name): nb_val_samples must be positive with a validation generator") }
            let (seq, valRows) = try peekBatchRows(v, "the validation generator")
            validation = seq
            validationSteps = (samples + valRows - 1) / valRows
        }
        return try fitGenerator(train, stepsPerEpoch: (samplesPerEpoch + rows - 1) / rows, epochs: nbEpoch, verbose: verbose,
                                callbacks: callbacks, validationData: validationData, validationGenerator: validation,
                                validationSteps: validationSteps, classWeight: classWeight, maxQueueSize: maxQueueSize)
    }

    /// The generator with its first batch drawn to learn the batch size, and that size.
    fileprivate func peekBatchRows<S: Sequence>(_ generator: S, _ what: String) throws -> (AnySequence<([Tensor], [Tensor])>, Int)
        where S.Element == ([Tensor], [Tensor]) {
        var it = generator.makeIterator()
        guard let first = it.next() else { throw KerasError("\(name): \(what) yielded no batch") }
        guard let rows = first.0.first?.shape.first, rows > 0 else { throw KerasError("\(name): \(what)'s first batch has no rows") }
        var pending: ([Tensor], [Tensor])? = first
        return (AnySequence(AnyIterator { () -> ([Tensor], [Tensor])? in
            if let p = pending { pending = nil; return p }
            return it.next()
        }), rows)
    }

    public func evaluateGenerator<S: Sequence>(_ generator: S, steps: Int) throws -> [String: Float] where S.Element == ([Tensor], [Tensor]) {
        var it = generator.makeIterator()
        return try evaluateBatches(steps: steps) { it.next().map { .success($0) } }
    }

    /// evaluate_generator on a generator that may throw (see fitGenerator).
    public func evaluateGenerator(_ next: @escaping () throws -> ([Tensor], [Tensor])?, steps: Int) throws -> [String: Float] {
        try evaluateBatches(steps: steps, catching(next))
    }

    /// Loss and metrics over `steps` batches drawn from `next`.
    fileprivate func evaluateBatches(steps: Int, _ next: () -> Result<([Tensor], [Tensor]), Error>?) throws -> [String: Float] {
        let state = try requireCompiled("evaluate_generator()")
        var acc = Accumulator(metrics: state.metricNames(outputNames: outputNames).count)
        for s in 0..<steps {
            let (bx, by) = try drawn(next(), "step \(s)")
            try checkGeneratorBatch(bx, by, "step \(s)")
            let n = bx[0].shape[0], sig = signature(by, sampleWeights: false)
            let plan = try self.plan(.test, batchSize: n, signature: sig)
            try runBatch(plan, x: try ArraySet(bx, dtypes: inputs.map(\.dtype)), y: try ArraySet(by),
                         sampleWeights: nil, indices: Array(0..<n)[...])
            acc.add(plan, batch: n)
        }
        return Logs(uniqueKeysWithValues: acc.logs(state.metricNames(outputNames: outputNames)))
    }

    public func predictGenerator<S: Sequence>(_ generator: S, steps: Int) throws -> [Tensor] where S.Element == [Tensor] {
        var it = generator.makeIterator()
        return try predictBatches(steps: steps) { it.next().map { .success($0) } }
    }

    /// predict_generator on a generator that may throw (see fitGenerator).
    public func predictGenerator(_ next: @escaping () throws -> [Tensor]?, steps: Int) throws -> [Tensor] {
        try predictBatches(steps: steps, catching(next))
    }

    fileprivate func predictBatches(steps: Int, _ next: () -> Result<[Tensor], Error>?) throws -> [Tensor] {
        var parts: [[Tensor]] = []
        for s in 0..<steps {
            let bx = try drawn(next(), "step \(s)")
            parts.append(try predictOnBatch(bx))
        }
        guard let first = parts.first else { return [] }
        return try (0..<first.count).map { k in
            let rows = parts.reduce(0) { $0 + $1[k].shape[0] }
            return try Tensor(parts.flatMap { $0[k].floats }, shape: [rows] + first[k].shape.dropFirst())
        }
    }
}
