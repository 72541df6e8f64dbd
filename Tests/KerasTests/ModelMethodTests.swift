import Foundation
import Keras
import XCTest

/// Model methods Keras users call, each against the number Keras's
/// definition gives (issue 13, item 8): getLayer, pop, fit's validation data,
/// sample and class weights, the single-batch methods, regularizers in the
/// reported loss and constraints after each update.
final class ModelMethodTests: XCTestCase {
    func data(_ n: Int = 12) throws -> (Tensor, Tensor) { try TrainingTests.separable(n, seed: 17) }

    func model(_ layers: [Layer]? = nil, lr: Float = 0) throws -> Sequential {
        Naming.reset()
        RandomSeed.set(9)
        let m = try Sequential(layers ?? [Dense(3, activation: "softmax", inputShape: [20])])
        try m.compile(optimizer: SGD(learningRate: lr), loss: "categorical_crossentropy")
        return m
    }

    /// -log p[true class] per sample, from predict.
    func sampleLosses(_ m: Model, _ x: Tensor, _ y: Tensor) throws -> [Float] {
        let p = try m.predict(x).floats, t = y.floats
        return (0..<x.shape[0]).map { i in -Foundation.log((0..<3).map { p[i * 3 + $0] * t[i * 3 + $0] }.reduce(0, +)) }
    }

    func testGetLayerAndPop() throws {
        let m = try model([Dense(4, inputShape: [20], name: "first"), Dense(3, name: "second")])
        XCTAssertEqual(try m.getLayer(name: "second").name, "second")
        XCTAssertEqual(try m.getLayer(index: 0).name, "first")
        XCTAssertThrowsError(try m.getLayer(name: "third")) { XCTAssertTrue("\($0)".contains("no such layer: third"), "\($0)") }
        XCTAssertThrowsError(try m.getLayer(index: 2)) { XCTAssertTrue("\($0)".contains("index 2 but model only has 2 layers"), "\($0)") }
        try m.pop()
        XCTAssertEqual(m.layers.map(\.name), ["first"])
        XCTAssertEqual(try m.outputShape, [nil, 4])
        try m.pop()
        XCTAssertThrowsError(try m.pop()) { XCTAssertTrue("\($0)".contains("no layers"), "\($0)") }
    }

    /// With a zero learning rate the weights stay, so the reported losses are Keras's formulas exactly.
    func testFitWeightsAndValidationFollowKeras() throws {
        let (x, y) = try data()
        let m = try model()
        let l = try sampleLosses(m, x, y)
        let n = Float(l.count)
        // sum_over_batch_size: sum(w * l) / n
        let plain = try m.fit(x, y, batchSize: 12, epochs: 1, verbose: 0, shuffle: false).history["loss"]![0]
        XCTAssertEqual(plain, l.reduce(0, +) / n, accuracy: 1e-5)
        let sw = try Tensor((0..<12).map { Float($0 % 2) }, shape: [12])
        let weighted = try m.fit(x, y, batchSize: 12, epochs: 1, verbose: 0, shuffle: false, sampleWeight: sw).history["loss"]![0]
        XCTAssertEqual(weighted, (0..<12).map { Float($0 % 2) * l[$0] }.reduce(0, +) / n, accuracy: 1e-5)
        let classes = (0..<12).map { i in (0..<3).first { y.floats[i * 3 + $0] == 1 }! }
        let byClass = try m.fit(x, y, batchSize: 12, epochs: 1, verbose: 0, shuffle: false, classWeight: [0: 0, 1: 0.5, 2: 2]).history["loss"]![0]
        let cw: [Float] = [0, 0.5, 2]
        XCTAssertEqual(byClass, (0..<12).map { cw[classes[$0]] * l[$0] }.reduce(0, +) / n, accuracy: 1e-5)
        // validation data: val_loss is the unweighted mean over it
        let (vx, vy) = try TrainingTests.separable(6, seed: 3)
        let h = try m.fit(x, y, batchSize: 4, epochs: 2, verbose: 0, validationData: (vx, vy))
        XCTAssertEqual(h.history["val_loss"]?.count, 2)
        let vl = try sampleLosses(m, vx, vy)
        XCTAssertEqual(h.history["val_loss"]![1], vl.reduce(0, +) / 6, accuracy: 1e-5)
    }

    func testSingleBatchMethods() throws {
        let (x, y) = try data(8)
        let m = try model(lr: 0.5)
        XCTAssertEqual(try m.predictOnBatch([x])[0].floats, try m.predict(x).floats)
        let before = try m.testOnBatch(x: [x], y: [y])[0]
        XCTAssertEqual(before, try m.evaluate(x, y)[0], accuracy: 1e-6)
        // train_on_batch reports the loss of the weights it started from, then steps
        XCTAssertEqual(try m.trainOnBatch(x, y)[0], before, accuracy: 1e-6)
        XCTAssertLessThan(try m.testOnBatch(x: [x], y: [y])[0], before)
    }

    func testRegularizersAddToTheLossAndConstraintsHoldAfterUpdates() throws {
        let (x, y) = try data()
        let m = try model([Dense(3, activation: "softmax", kernelRegularizer: L2(l2: 0.1), inputShape: [20])])
        let w = m.layers[0].weights[0].value.floats
        let l = try sampleLosses(m, x, y)
        let reported = try m.fit(x, y, batchSize: 12, epochs: 1, verbose: 0, shuffle: false).history["loss"]![0]
        XCTAssertEqual(reported, l.reduce(0, +) / 12 + 0.1 * w.map { $0 * $0 }.reduce(0, +), accuracy: 1e-4)

        for (constraint, check) in [(NonNeg() as Constraint, { (v: [Float]) in v.allSatisfy { $0 >= 0 } }),
                                    (MaxNorm(maxValue: 0.5), { v in Self.columnNorms(v).allSatisfy { $0 <= 0.5 + 1e-5 } }),
                                    (UnitNorm(), { v in Self.columnNorms(v).allSatisfy { abs($0 - 1) < 1e-4 } }),
                                    (MinMaxNorm(minValue: 0.8, maxValue: 0.9), { v in Self.columnNorms(v).allSatisfy { $0 >= 0.8 - 1e-4 && $0 <= 0.9 + 1e-4 } })] {
            let c = try model([Dense(3, activation: "softmax", kernelConstraint: constraint, inputShape: [20])], lr: 1)
            _ = try c.fit(x, y, batchSize: 4, epochs: 1, verbose: 0)
            XCTAssertTrue(check(c.layers[0].weights[0].value.floats), "\(type(of: constraint)) after updates")
        }
    }

    /// A generator's wrongly shaped batch is an error naming the step, and
    /// that batch changes nothing: the weights are those after the good steps.
    func testGeneratorWithABadBatchStopsBeforeIt() throws {
        let (x, y) = try data(8)
        let m = try model(lr: 0.5)
        let bad = try Tensor([Float](repeating: 0, count: 8 * 5), shape: [8, 5])
        let batches: [([Tensor], [Tensor])] = [([x], [y]), ([x], [y]), ([bad], [y])]
        XCTAssertThrowsError(try m.fitGenerator(batches, stepsPerEpoch: 3, verbose: 0)) {
            XCTAssertTrue("\($0)".contains("the generator's batch at step 2 of epoch 1"), "\($0)")
        }
        let afterError = m.weights.map(\.value.floats)
        let reference = try model(lr: 0.5)
        _ = try reference.fitGenerator(Array(batches.prefix(2)), stepsPerEpoch: 2, verbose: 0)
        XCTAssertEqual(afterError, reference.weights.map(\.value.floats))
        XCTAssertThrowsError(try m.evaluateGenerator([([bad], [y])], steps: 1)) {
            XCTAssertTrue("\($0)".contains("the generator's batch at step 0"), "\($0)")
        }
    }

    /// A generator that throws (a file it cannot read): the error names the
    /// step and carries the generator's own; the steps before it trained,
    /// the failed one changed nothing; evaluation and prediction alike.
    func testThrowingGeneratorStopsWithItsError() throws {
        struct Unreadable: Error, CustomStringConvertible { var description: String { "batch file 3 is unreadable" } }
        let (x, y) = try data(8)
        for workers in [0, 1] {
            let m = try model(lr: 0.5)
            var drawn = 0
            let next: () throws -> ([Tensor], [Tensor])? = {
                drawn += 1
                if drawn == 3 { throw Unreadable() }
                return ([x], [y])
            }
            XCTAssertThrowsError(try m.fitGenerator(next, stepsPerEpoch: 4, verbose: 0, workers: workers)) {
                XCTAssertTrue("\($0)".contains("the generator failed at step 2 of epoch 1: batch file 3 is unreadable"), "\($0)")
            }
            let reference = try model(lr: 0.5)
            _ = try reference.fitGenerator([([x], [y]), ([x], [y])], stepsPerEpoch: 2, verbose: 0)
            XCTAssertEqual(m.weights.map(\.value.floats), reference.weights.map(\.value.floats), "workers \(workers)")
            XCTAssertThrowsError(try m.evaluateGenerator({ throw Unreadable() }, steps: 2)) {
                XCTAssertTrue("\($0)".contains("the generator failed at step 0: batch file 3 is unreadable"), "\($0)")
            }
            var calls = 0
            XCTAssertThrowsError(try m.predictGenerator({ calls += 1; if calls > 1 { throw Unreadable() }; return [x] }, steps: 3)) {
                XCTAssertTrue("\($0)".contains("the generator failed at step 1"), "\($0)")
            }
            XCTAssertEqual(try m.predictGenerator({ [x] }, steps: 2)[0].shape, [16, 3])
        }
    }

    /// Keras 2's predict_proba is predict; a frozen layer's weights count as non-trainable in summary().
    func testPredictProbaAndSummaryCountsOfAFrozenLayer() throws {
        let (x, _) = try data(8)
        let m = try model(lr: 0.1)
        XCTAssertEqual(try m.predictProba(x).floats, try m.predict(x).floats)
        m.layers[0].trainable = false
        var text = ""
        m.summary(print: { text += $0 + "\n" })
        let frozen = m.layers[0].weights.map { $0.shape.reduce(1, *) }.reduce(0, +)
        let rest = m.layers.dropFirst().flatMap(\.weights).map { $0.shape.reduce(1, *) }.reduce(0, +)
        XCTAssertTrue(text.contains("Trainable params: \(rest) "), text)
        XCTAssertTrue(text.contains("Non-trainable params: \(frozen) "), text)
    }

    /// Loss weights by output name: the reported loss is the weighted sum of the outputs' losses.
    func testLossWeightsByOutputName() throws {
        Naming.reset()
        RandomSeed.set(4)
        let input = Input(shape: [20])
        let a = try Dense(3, activation: "softmax", name: "a")(input), b = try Dense(3, activation: "softmax", name: "b")(input)
        let m = try Model(inputs: [input], outputs: [a, b])
        let (x, y) = try data(8)
        try m.compile(optimizer: SGD(learningRate: 0), loss: ["categorical_crossentropy"], lossWeights: ["b": 0.25])
        let total = try m.evaluate(x: [x], y: [y, y])[0]
        let pa = try m.predict([x])[0].floats, pb = try m.predict([x])[1].floats, t = y.floats
        func ce(_ p: [Float]) -> Float {
            var sum: Float = 0
            for i in 0..<8 {
                var pt: Float = 0
                for c in 0..<3 { pt += p[i * 3 + c] * t[i * 3 + c] }
                sum -= Foundation.log(pt)
            }
            return sum / 8
        }
        XCTAssertEqual(total, ce(pa) + 0.25 * ce(pb), accuracy: 1e-5)
        XCTAssertThrowsError(try m.compile(optimizer: "sgd", loss: ["mse"], lossWeights: ["c": 1])) {
            XCTAssertTrue("\($0)".contains("loss_weights names 'c', which is not an output (outputs: a, b)"), "\($0)")
        }
    }

    /// A generator that counts the batches drawn from it (from any thread).
    final class CountingBatches: Sequence, IteratorProtocol, @unchecked Sendable {
        let batches: [([Tensor], [Tensor])]
        private var i = 0
        private let lock = NSLock()
        init(_ batches: [([Tensor], [Tensor])]) { self.batches = batches }
        var drawn: Int { lock.lock(); defer { lock.unlock() }; return i }
        func next() -> ([Tensor], [Tensor])? {
            lock.lock(); defer { lock.unlock() }
            guard i < batches.count else { return nil }
            i += 1
            return batches[i - 1]
        }
    }

    /// fit_generator with Keras 2's arguments: prefetching on a thread gives
    /// the same weights as drawing on this one and draws only what the epochs
    /// need; initial epoch, class weights and validation (arrays or a generator).
    func testFitGeneratorPrefetchesAndTakesKeras2Arguments() throws {
        let (x, y) = try data(8)
        let batches = (0..<20).map { k in ([try! x.rows(k % 2 * 4..<(k % 2 * 4 + 4))], [try! y.rows(k % 2 * 4..<(k % 2 * 4 + 4))]) }
        var finals: [[Float]] = []
        for workers in [0, 1] {
            let m = try model(lr: 0.3)
            let source = CountingBatches(batches)
            let h = try m.fitGenerator(source, stepsPerEpoch: 3, epochs: 4, verbose: 0, maxQueueSize: 2, workers: workers, initialEpoch: 1)
            XCTAssertEqual(h.history["loss"]?.count, 3, "epochs 2 to 4")
            XCTAssertEqual(source.drawn, 9, "workers \(workers): three epochs of three steps, nothing more")
            finals.append(m.weights.flatMap(\.value.floats))
        }
        XCTAssertEqual(finals[0], finals[1], "prefetched on a thread or drawn here: the same steps")
        // class weights: with a zero learning rate, the loss is Keras's weighted mean
        let m = try model()
        let l = try sampleLosses(m, try x.rows(0..<4), try y.rows(0..<4))
        let classes = (0..<4).map { i in (0..<3).first { y.floats[i * 3 + $0] == 1 }! }
        let h = try m.fitGenerator(CountingBatches([batches[0]]), stepsPerEpoch: 1, verbose: 0, classWeight: [0: 2, 1: 0, 2: 1])
        let cw: [Float] = [2, 0, 1]
        XCTAssertEqual(h.history["loss"]![0], (0..<4).map { cw[classes[$0]] * l[$0] }.reduce(0, +) / 4, accuracy: 1e-5)
        // validation on arrays and on a generator give the same val_loss for the same data
        let onArrays = try m.fitGenerator(CountingBatches(batches), stepsPerEpoch: 1, verbose: 0, validationData: ([x], [y]))
        let onGenerator = try m.fitGenerator(CountingBatches(batches), stepsPerEpoch: 1, verbose: 0,
                                             validationGenerator: AnySequence(CountingBatches(Array(batches.prefix(2)))), validationSteps: 2)
        XCTAssertEqual(onArrays.history["val_loss"]![0], onGenerator.history["val_loss"]![0], accuracy: 1e-5)
        XCTAssertThrowsError(try m.fitGenerator(CountingBatches(batches), stepsPerEpoch: 1, verbose: 0,
                                                validationGenerator: AnySequence(CountingBatches(batches)))) {
            XCTAssertTrue("\($0)".contains("validation_steps must be positive"), "\($0)")
        }
        // a generator that runs out: an error naming the step, on a thread as here
        XCTAssertThrowsError(try m.fitGenerator(CountingBatches(Array(batches.prefix(2))), stepsPerEpoch: 3, verbose: 0)) {
            XCTAssertTrue("\($0)".contains("ran out of batches at step 2 of epoch 1"), "\($0)")
        }
    }

    /// Keras 2's sample_weight_mode "temporal": a weight per sample and
    /// timestep; the loss is sum(w * l) over every (sample, step) / count.
    func testTemporalSampleWeights() throws {
        Naming.reset()
        RandomSeed.set(2)
        let m = try Sequential([InputLayer(shape: [3, 4]), TimeDistributed(Dense(2, activation: "softmax"))])
        try m.compile(optimizer: SGD(learningRate: 0), loss: "categorical_crossentropy", sampleWeightMode: "temporal")
        var rng = SplitMix64(seed: 3)
        let x = try Tensor((0..<2 * 3 * 4).map { _ in rng.uniform(-1, 1) }, shape: [2, 3, 4])
        let y = try Tensor((0..<12).map { Float(($0 / 2 + $0) % 2) }, shape: [2, 3, 2])
        let w = try Tensor([1, 0, 2, 0.5, 1, 0], shape: [2, 3])
        let p = try m.predict(x).floats, t = y.floats, wv = w.floats
        var expected: Float = 0
        for k in 0..<6 {
            let pt: Float = p[2 * k] * t[2 * k] + p[2 * k + 1] * t[2 * k + 1]
            expected -= wv[k] * Foundation.log(pt)
        }
        let loss = try m.fit(x, y, batchSize: 2, epochs: 1, verbose: 0, shuffle: false, sampleWeight: w).history["loss"]![0]
        XCTAssertEqual(loss, expected / 6, accuracy: 1e-5)
        XCTAssertThrowsError(try m.fit(x, y, verbose: 0, sampleWeight: try Tensor([1, 1], shape: [2]))) {
            XCTAssertTrue("\($0)".contains("must have shape (2, timesteps)"), "\($0)")
        }
        XCTAssertThrowsError(try m.compile(optimizer: "sgd", loss: "mse", sampleWeightMode: "element")) {
            XCTAssertTrue("\($0)".contains("sample_weight_mode must be"), "\($0)")
        }
    }

    /// As in Keras, `trainable` is read at compile(): freezing a layer after
    /// compiling changes nothing until the next compile, which freezes it.
    func testTrainableTakesEffectAtTheNextCompile() throws {
        let (x, y) = try data(8)
        let m = try model([Dense(4, inputShape: [20]), Dense(3, activation: "softmax")], lr: 0.5)
        let first = m.layers[0]
        first.trainable = false
        var before = first.weights.map(\.value.floats)
        _ = try m.fit(x, y, batchSize: 8, epochs: 1, verbose: 0)
        XCTAssertNotEqual(first.weights.map(\.value.floats), before, "compiled while trainable: it still trains")
        try m.compile(optimizer: SGD(learningRate: 0.5), loss: "categorical_crossentropy")
        before = first.weights.map(\.value.floats)
        let last = m.layers[1].weights.map(\.value.floats)
        _ = try m.fit(x, y, batchSize: 8, epochs: 1, verbose: 0)
        XCTAssertEqual(first.weights.map(\.value.floats), before, "recompiled while frozen: it stays")
        XCTAssertNotEqual(m.layers[1].weights.map(\.value.floats), last)
    }

    /// Keras 2's weights= sets a layer's initial weights once it is built; ones that do not fit are an error naming the weight.
    func testInitialWeightsArgument() throws {
        Naming.reset()
        let w = try Tensor((0..<6).map(Float.init), shape: [3, 2]), b = try Tensor([0.5, -0.5], shape: [2])
        let m = try Sequential([Dense(2, inputShape: [3], weights: [w, b])])
        XCTAssertEqual(m.layers[0].weights.map(\.value.floats), [w.floats, b.floats])
        XCTAssertEqual(try m.predict(try Tensor([1, 0, 0], shape: [1, 3])).floats, [0.5, 0.5])
        let k = try Tensor([Float](repeating: 1, count: 3 * 3 * 1 * 2), shape: [3, 3, 1, 2])
        let c = try Sequential([Conv2D(filters: 2, kernelSize: [3, 3], inputShape: [3, 3, 1], weights: [k, try Tensor([0, 1], shape: [2])])])
        XCTAssertEqual(try c.predict(try Tensor([Float](repeating: 1, count: 9), shape: [1, 3, 3, 1])).floats, [9, 10])
        XCTAssertThrowsError(try Sequential([Dense(2, inputShape: [4], weights: [w, b])])) {
            XCTAssertTrue("\($0)".contains("has shape (4, 2), got an array of shape (3, 2)"), "\($0)")
        }
    }

    /// Every Keras 2 layer with weights takes weights= from Swift: the values
    /// given (the probe's own initial values plus one) are the layer's once built.
    func testInitialWeightsOnEveryWeightedLayer() throws {
        func check(_ what: String, _ input: [Int], _ make: ([Tensor]?) throws -> Layer) throws {
            Naming.reset()
            let probe = try make(nil)
            let p = Input(shape: input)
            _ = try Model(inputs: [p], outputs: [try probe(p)])
            let given = try probe.getWeights().map { t in try Tensor(t.floats.map { $0 + 1 }, shape: t.shape) }
            XCTAssertFalse(given.isEmpty, what)
            let layer = try make(given)
            let x = Input(shape: input)
            _ = try Model(inputs: [x], outputs: [try layer(x)])
            XCTAssertEqual(layer.getWeights().map(\.floats), given.map(\.floats), what)
        }
        try check("Conv1D", [5, 2]) { Conv1D(filters: 2, kernelSize: 2, weights: $0) }
        try check("Conv3D", [3, 3, 3, 1]) { Conv3D(filters: 2, kernelSize: [2, 2, 2], weights: $0) }
        try check("DepthwiseConv2D", [3, 3, 2]) { DepthwiseConv2D(kernelSize: [2, 2], weights: $0) }
        try check("SeparableConv2D", [3, 3, 2]) { SeparableConv2D(filters: 2, kernelSize: [2, 2], weights: $0) }
        try check("Conv2DTranspose", [3, 3, 2]) { Conv2DTranspose(filters: 2, kernelSize: [2, 2], weights: $0) }
        try check("BatchNormalization", [4]) { BatchNormalization(weights: $0) }
        try check("LayerNormalization", [4]) { LayerNormalization(axis: -1, weights: $0) }
        try check("PReLU", [4]) { PReLU(weights: $0) }
        try check("SimpleRNN", [3, 2]) { SimpleRNN(2, weights: $0) }
        try check("LSTM", [3, 2]) { LSTM(2, weights: $0) }
        try check("GRU", [3, 2]) { GRU(2, weights: $0) }
        try check("LocallyConnected1D", [4, 2]) { LocallyConnected1D(filters: 2, kernelSize: 2, weights: $0) }
        try check("LocallyConnected2D", [3, 3, 2]) { LocallyConnected2D(filters: 2, kernelSize: [2, 2], weights: $0) }
    }

    /// Training stopped by a callback stops the prefetching: no more than
    /// the queue's bound is drawn past the batches trained on.
    func testStoppedTrainingStopsThePrefetch() throws {
        let (x, y) = try data(8)
        let batches = (0..<50).map { _ in ([x], [y]) }
        let m = try model(lr: 0.1)
        let source = CountingBatches(batches)
        let stop = LambdaCallback(onBatchEnd: { batch, _ in if batch == 1 { m.stopTraining = true } })
        _ = try m.fitGenerator(source, stepsPerEpoch: 10, epochs: 5, verbose: 0, callbacks: [stop], maxQueueSize: 3)
        // two batches trained, at most three waiting, and possibly one being drawn when the stop came
        XCTAssertLessThanOrEqual(source.drawn, 2 + 3 + 1)
        XCTAssertGreaterThanOrEqual(source.drawn, 2)
    }

    /// Keras 1's samples_per_epoch / nb_epoch / nb_val_samples: 10 samples in batches of 4 is 3 steps an epoch.
    func testFitGeneratorKeras1Names() throws {
        let (x, y) = try data(8)
        let batches = (0..<20).map { k in ([try! x.rows(k % 2 * 4..<(k % 2 * 4 + 4))], [try! y.rows(k % 2 * 4..<(k % 2 * 4 + 4))]) }
        let m = try model(lr: 0.1)
        let source = CountingBatches(batches), val = CountingBatches(batches)
        let h = try m.fitGenerator(source, samplesPerEpoch: 10, nbEpoch: 2, verbose: 0, validationGenerator: AnySequence(val), nbValSamples: 8)
        XCTAssertEqual(h.history["loss"]?.count, 2)
        XCTAssertEqual(source.drawn, 6, "two epochs of ceil(10 / 4) = 3 batches")
        XCTAssertEqual(val.drawn, 4, "two validations of 8 / 4 = 2 batches")
        XCTAssertNotNil(h.history["val_loss"])
        XCTAssertThrowsError(try m.fitGenerator(CountingBatches([]), samplesPerEpoch: 4, nbEpoch: 1, verbose: 0)) {
            XCTAssertTrue("\($0)".contains("the generator yielded no batch"), "\($0)")
        }
    }

    /// Norms of the kernel's 3 columns ([20, 3], the axis-0 norms Keras's constraints use).
    static func columnNorms(_ v: [Float]) -> [Float] {
        (0..<3).map { j in (0..<20).map { v[$0 * 3 + j] * v[$0 * 3 + j] }.reduce(0, +).squareRoot() }
    }
}
