import Keras
import XCTest

/// Merge layers, LayerNormalization and ThresholdedReLU beyond the Keras
/// fixtures: shapes Keras infers, the errors it raises, and a two-tower model
/// that trains.
final class MergeAndNormalizationTests: XCTestCase {
    override func setUp() { Naming.reset(); RandomSeed.set(11) }

    func message(_ body: () throws -> Void) -> String {
        do { try body() } catch { return "\(error)" }
        return "no error"
    }

    func testMergeShapesFollowKeras() throws {
        let a = Input(shape: [3]), b = Input(shape: [4, 3])
        XCTAssertEqual(try Add()([a, b]).shape, [nil, 4, 3], "the lower-rank input is expanded at axis 1")
        XCTAssertEqual(try Multiply()([Input(shape: [1, 3]), Input(shape: [5, 1])]).shape, [nil, 5, 3])
        XCTAssertEqual(try Concatenate(axis: 1)([Input(shape: [2, 3]), Input(shape: [4, 3])]).shape, [nil, 6, 3])
        XCTAssertEqual(try Dot(axes: 1)([Input(shape: [5]), Input(shape: [5])]).shape, [nil, 1])
        XCTAssertEqual(try Dot(axes: [1, 2])([Input(shape: [3, 4]), Input(shape: [5, 3])]).shape, [nil, 4, 5])
        XCTAssertEqual(try Average()([a]).shape, [nil, 3], "one input is allowed, as in Keras 3")
    }

    func testMergeErrorsNameTheLayerAndTheShapes() {
        XCTAssertEqual(message { _ = try Add(name: "sum")([Input(shape: [3]), Input(shape: [4])]) },
                       "sum: inputs have incompatible shapes; received shapes (3,) and (4,)")
        XCTAssertTrue(message { _ = try Subtract(name: "diff")([Input(shape: [3]), Input(shape: [3]), Input(shape: [3])]) }
            .hasPrefix("diff: a `Subtract` layer should be called on a list of exactly 2 input(s); received 3"))
        XCTAssertTrue(message { _ = try Concatenate(name: "cat")([Input(shape: [2, 3]), Input(shape: [3, 4])]) }
            .contains("cat: a `Concatenate` layer requires inputs with matching shapes except for the concatenation axis"))
        XCTAssertTrue(message { _ = try Concatenate(axis: 5, name: "cat2")([Input(shape: [2]), Input(shape: [2])]) }.contains("axis 5 is out of range"))
        XCTAssertTrue(message { _ = try Dot(axes: 1, name: "dot")([Input(shape: [3]), Input(shape: [4])]) }
            .contains("dot: incompatible input shapes: axis values 3 (at axis 1) != 4 (at axis 1)"))
        XCTAssertTrue(message { _ = try Dot(axes: [0], name: "dot0")([Input(shape: [3]), Input(shape: [3])]) }.contains("axis 0, the batch, cannot be contracted"))
        XCTAssertTrue(message { _ = try Dot(axes: [1, 1, 1], name: "dot3")([Input(shape: [3]), Input(shape: [3])]) }.contains("one or two integers"))
        XCTAssertTrue(message { _ = try Dot(axes: 1, name: "dot1")([Input(shape: [3])]) }.contains("a list of 2 inputs"))
        XCTAssertTrue(message { _ = try LayerNormalization(axis: 4, name: "ln")(Input(shape: [3])) }.contains("ln: axis 4 is out of bounds"))
    }

    func testConfigsRoundTrip() throws {
        for layer in [Add(), Concatenate(axis: -2), Dot(axes: [1, 2], normalize: true), LayerNormalization(axis: [1, 2], epsilon: 1e-5, rmsScaling: true),
                      ThresholdedReLU(theta: 0.5)] as [Layer] {
            let c = layer.config
            let again = try LayerRegistry.deserialize(["class_name": .string(layer.kerasClassName), "config": c])
            XCTAssertEqual(again.config.serialized(), c.serialized(), layer.kerasClassName)
        }
        XCTAssertEqual(LayerNormalization(axis: -1).config["axis"], JSON(-1), "an integer axis stays an integer")
    }

    func testThresholdedReLU() throws {
        let model = try Sequential([ThresholdedReLU(theta: 0.5)], name: "t")
        try model.build(inputShape: [4])
        let y = try model.predict(try Tensor([-1, 0.5, 0.6, 2], shape: [1, 4]))
        XCTAssertEqual(y.floats, [0, 0, 0.6, 2])
    }

    func testTwoTowerModelWithAddAndConcatenateTrains() throws {
        let left = Input(shape: [4]), right = Input(shape: [4])
        let l = try Dense(8, activation: "relu")(left), r = try Dense(8, activation: "relu")(right)
        let merged = try Concatenate()([try Add()([l, r]), try Multiply()([l, r])])
        let normed = try LayerNormalization()(merged)
        let out = try Dense(1)(normed)
        let model = try Model(inputs: [left, right], outputs: out)
        try model.compile(optimizer: Adam(learningRate: 0.01), loss: "mse")
        var rng = SplitMix64(seed: 3)
        let xl = try Tensor((0..<64).map { _ in rng.uniform(-1, 1) }, shape: [16, 4])
        let xr = try Tensor((0..<64).map { _ in rng.uniform(-1, 1) }, shape: [16, 4])
        let y = try Tensor((0..<16).map { i in xl.floats[i * 4] + xr.floats[i * 4 + 1] }, shape: [16, 1])
        let history = try model.fit(x: [xl, xr], y: [y], batchSize: 8, epochs: 30, verbose: 0)
        let losses = history.history["loss"] ?? []
        XCTAssertEqual(losses.count, 30)
        XCTAssertLessThan(losses.last!, losses.first! * 0.5, "loss falls from \(losses.first!) to \(losses.last!)")
    }
}

/// BatchNormalization beyond the fixtures: the moving statistics follow the
/// batches in fit, inference uses them, a frozen layer neither updates them
/// nor uses batch statistics, and summary counts them as non-trainable.
final class BatchNormalizationTests: XCTestCase {
    override func setUp() { Naming.reset(); RandomSeed.set(12) }

    func testMovingStatisticsFollowTheBatchesInFit() throws {
        let bn = BatchNormalization(momentum: 0.5)
        let model = try Sequential([Dense(2, kernelInitializer: "ones", inputShape: [2]), bn])
        try model.compile(optimizer: SGD(learningRate: 0), loss: "mse")  // weights stay; only the statistics move
        let x = try Tensor([1, 3, 5, 7], shape: [2, 2]), y = try Tensor([0, 0, 0, 0], shape: [2, 2])
        // Dense with ones and zero bias: both features are x0 + x1 = 4 and 12: mean 8, variance 16.
        _ = try model.fit(x, y, batchSize: 2, epochs: 1, verbose: 0, shuffle: false)
        XCTAssertEqual(bn.movingMean!.value.floats, [4, 4], "0.5 * 0 + 0.5 * 8")
        XCTAssertEqual(bn.movingVariance!.value.floats, [8.5, 8.5], "0.5 * 1 + 0.5 * 16")
        _ = try model.fit(x, y, batchSize: 2, epochs: 1, verbose: 0, shuffle: false)
        XCTAssertEqual(bn.movingMean!.value.floats, [6, 6])
        // Inference normalizes with the moving statistics: (4 - 6) / sqrt(12.25 + 0.001).
        let p = try model.predict(x)
        XCTAssertEqual(p.floats[0], -2 / (12.25 as Float + 0.001).squareRoot(), accuracy: 1e-5)
        XCTAssertEqual(model.nonTrainableWeights.count, 2)
    }

    /// In training, BatchNormalization's statistics take one moments kernel
    /// and its normalization one fused pass (two passes over the input), and
    /// the step gives the same weights as with the moments fusion off.
    func testBatchStatisticsTakeOnePass() throws {
        func train(_ disable: String?) throws -> (kernels: [String], weights: [Float]) {
            if let d = disable { setenv("KERAS_DISABLE_PASSES", d, 1) }
            defer { unsetenv("KERAS_DISABLE_PASSES") }
            Naming.reset()
            RandomSeed.set(3)
            let model = try Sequential([Conv2D(6, 3, inputShape: [9, 9, 2]), BatchNormalization(), Flatten(), Dense(3, activation: "softmax")])
            // SGD: Adam would turn the rounding noise of the conv bias's gradient (zero in exact arithmetic under BN) into full steps.
            try model.compile(optimizer: SGD(learningRate: 0.1), loss: "categorical_crossentropy")
            var rng = SplitMix64(seed: 4)
            let x = try Tensor((0..<16 * 9 * 9 * 2).map { _ in Float(rng.unit() * 2 - 1) }, shape: [16, 9, 9, 2])
            let y = try Tensor((0..<16 * 3).map { Float($0 % 3 == ($0 / 3) % 3 ? 1 : 0) }, shape: [16, 3])
            let plan = try model.trainingPlan(x: [x], y: [y])
            for _ in 0..<3 { _ = try model.trainOnBatch(x, y) }
            // The layer's forward kernels that read or write a full-size tensor (the rest work on [C] vectors).
            let forward = plan.steps.prefix { !plan.graph.nodes[$0.node].op.hasSuffix("_fused") }.filter { step in
                let n = plan.graph.nodes[step.node]
                return n.layer == "batch_normalization" && (n.inputs + [Value(step.node)]).contains { (plan.graph.type(of: $0).elementCount ?? 0) >= 16 * 7 * 7 * 6 }
            }.map(\.kernel.name)
            return (forward, model.weights.flatMap { $0.value.floats })
        }
        let fused = try train(nil), plain = try train("fuse-moments")
        XCTAssertEqual(fused.kernels.filter { $0.hasPrefix("ck_f32_moments") }.count, 1, "\(fused.kernels)")
        XCTAssertEqual(fused.kernels.count, 2, "statistics and normalization, two passes over the input: \(fused.kernels)")
        XCTAssertGreaterThan(plain.kernels.count, fused.kernels.count, "\(plain.kernels)")
        XCTAssertEqual(fused.weights.count, plain.weights.count)
        for (a, b) in zip(fused.weights, plain.weights) { XCTAssertEqual(a, b, accuracy: 1e-4) }
    }

    func testFrozenLayerUsesMovingStatisticsAndUpdatesNothing() throws {
        let bn = BatchNormalization(momentum: 0.5)
        let model = try Sequential([bn], name: "frozen")
        try model.build(inputShape: [2])
        bn.trainable = false
        try model.compile(optimizer: "sgd", loss: "mse")
        let before = model.getWeights()
        let x = try Tensor([1, 3, 5, 7], shape: [2, 2])
        _ = try model.fit(x, x, batchSize: 2, epochs: 1, verbose: 0)
        XCTAssertEqual(model.getWeights(), before, "a frozen BatchNormalization keeps every weight")
    }

    func testBadAxisAndConfigRoundTrip() throws {
        XCTAssertThrowsError(try BatchNormalization(axis: 3, name: "bn")(Input(shape: [4])))
        let layer = BatchNormalization(axis: 1, momentum: 0.9, epsilon: 1e-5, center: false)
        let again = try LayerRegistry.deserialize(["class_name": "BatchNormalization", "config": layer.config])
        XCTAssertEqual(again.config.serialized(), layer.config.serialized())
        // Keras 2 configs wrote the axis as a list of one.
        let k2 = try LayerRegistry.deserialize(try JSON.parse(#"{"class_name": "BatchNormalization", "config": {"axis": [3]}}"#))
        XCTAssertEqual((k2 as? BatchNormalization)?.axis, 3)
    }
}

/// SpatialDropout1D/2D/3D and AlphaDropout: identity at inference; in
/// training whole feature maps drop together, and AlphaDropout keeps a
/// standard normal input near mean 0 and variance 1.
final class NoiseLayerTests: XCTestCase {
    override func setUp() { Naming.reset(); RandomSeed.set(13) }

    /// Runs one call of `layer` on `x` in training or inference mode.
    func run(_ layer: Layer, _ x: Tensor, training: Bool) throws -> Tensor {
        let b = GraphBuilder(name: "noise")
        let input = try b.input("x", x.type)
        let ctx = CallContext(builder: b, training: training)
        let (outs, _) = try layer.emit([input], masks: [nil], context: ctx)
        b.setOutputs(outs)
        let plan = try ExecutionPlan(b.graph, inputShapes: ["x": x.shape], store: ParameterStore())
        return try plan.run(["x": x])[0]
    }

    func testSpatialDropoutDropsWholeFeatureMaps() throws {
        var rng = SplitMix64(seed: 5)
        let x = try Tensor((0..<(8 * 5 * 5 * 16)).map { _ in rng.uniform(1, 2) }, shape: [8, 5, 5, 16])
        XCTAssertEqual(try run(SpatialDropout2D(0.5), x, training: false), x, "identity at inference")
        let y = try run(SpatialDropout2D(0.5, seed: 3), x, training: true).floats, v = x.floats
        var dropped = 0
        for n in 0..<8 {
            for c in 0..<16 {
                let ratios = (0..<25).map { p in y[(n * 25 + p) * 16 + c] / v[(n * 25 + p) * 16 + c] }
                XCTAssertTrue(ratios.allSatisfy { $0 == ratios[0] } && (ratios[0] == 0 || abs(ratios[0] - 2) < 1e-6),
                              "sample \(n) channel \(c): one draw for the whole map, got \(ratios.prefix(3))")
                if ratios[0] == 0 { dropped += 1 }
            }
        }
        XCTAssertTrue((32...96).contains(dropped), "about half of 128 maps dropped, got \(dropped)")
        // SpatialDropout1D shares the draw over the steps of each channel.
        let cf = try run(SpatialDropout1D(0.5, seed: 4), try Tensor([Float](repeating: 1, count: 2 * 7 * 3), shape: [2, 7, 3]), training: true).floats
        for n in 0..<2 { for c in 0..<3 { XCTAssertEqual(Set((0..<7).map { cf[(n * 7 + $0) * 3 + c] }).count, 1) } }
        XCTAssertThrowsError(try run(SpatialDropout3D(0.5), x, training: true), "SpatialDropout3D needs rank 5")
    }

    func testAlphaDropoutKeepsMeanAndVariance() throws {
        var rng = SplitMix64(seed: 6)
        // Standard normal values by Box-Muller.
        let n = 40_000
        let values: [Float] = (0..<n).map { _ in
            let u1 = max(rng.unit(), 1e-12), u2 = rng.unit()
            return Float((-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2))
        }
        let x = try Tensor(values, shape: [n / 100, 100])
        XCTAssertEqual(try run(AlphaDropout(0.2), x, training: false), x)
        let y = try run(AlphaDropout(0.2, seed: 9), x, training: true).floats
        let mean = y.reduce(0, +) / Float(n)
        let variance = y.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(n)
        XCTAssertEqual(mean, 0, accuracy: 0.05)
        XCTAssertEqual(variance, 1, accuracy: 0.08)
        XCTAssertThrowsError(try run(AlphaDropout(1), x, training: true), "rate 1 is outside [0, 1)")
    }
}

final class TimeDistributedTests: XCTestCase {
    override func setUp() { Naming.reset(); RandomSeed.set(14) }

    func testShapesWeightsAndErrors() throws {
        let td = TimeDistributed(Conv2D(filters: 4, kernelSize: [3, 3]))
        XCTAssertEqual(try td(Input(shape: [5, 8, 8, 1])).shape, [nil, 5, 6, 6, 4], "a Conv2D over every step")
        XCTAssertEqual(td.weights.count, 2, "the wrapped layer's kernel and bias")
        XCTAssertThrowsError(try TimeDistributed(Dense(2), name: "td")(Input(shape: [3]))) { e in
            XCTAssertTrue("\(e)".contains("td: `TimeDistributed` should be passed an input with at least 3 dimensions"), "\(e)")
        }
        XCTAssertThrowsError(try TimeDistributed(Conv2D(filters: 2, kernelSize: [3, 3]), name: "td2")(Input(shape: [4, 3]))) { e in
            XCTAssertTrue("\(e)".contains("conv2d"), "the wrapped layer names the mismatch: \(e)")
        }
        // The config nests the wrapped layer and rebuilds it.
        let again = try LayerRegistry.deserialize(["class_name": "TimeDistributed", "config": td.config])
        XCTAssertEqual((again as? TimeDistributed)?.layer.kerasClassName, "Conv2D")
    }

    func testEveryStepSharesTheWeights() throws {
        let model = try Sequential([TimeDistributed(Dense(2, kernelInitializer: "ones"), name: "td")], name: "m")
        try model.build(inputShape: [3, 2])
        let y = try model.predict(try Tensor([1, 2, 3, 4, 5, 6], shape: [1, 3, 2]))
        XCTAssertEqual(y.shape, [1, 3, 2])
        XCTAssertEqual(y.floats, [3, 3, 7, 7, 11, 11])
    }

    /// A wrapped BatchNormalization trains per step, as Keras calls it: each
    /// step's own statistics, and the moving statistics updated step after step.
    func testBatchNormalizationTrainsPerStep() throws {
        let bn = BatchNormalization(momentum: 0.5)
        let model = try Sequential([TimeDistributed(bn, name: "td")], name: "m")
        try model.build(inputShape: [2, 1])
        try model.compile(optimizer: SGD(learningRate: 0), loss: "mse")
        // Step 0 holds 0 and 2 (mean 1, variance 1), step 1 holds 10 and 14 (mean 12, variance 4).
        let x = try Tensor([0, 10, 2, 14], shape: [2, 2, 1])
        let loss = try model.trainOnBatch(x, try Tensor(zeros: .f32([2, 2, 1])))[0]
        // Per step, out^2 = var / (var + eps) for both samples; folded over time it would be 32.75 / 32.751.
        XCTAssertEqual(loss, Float((1 / 1.001 + 4 / 4.001) / 2), accuracy: 1e-5)
        // Moving mean 0 -> 0.5 (step 0) -> 0.25 + 6 (step 1); moving variance 1 -> 1 -> 2.5.
        XCTAssertEqual(bn.movingMean!.value.floats[0], 6.25, accuracy: 1e-5)
        XCTAssertEqual(bn.movingVariance!.value.floats[0], 2.5, accuracy: 1e-5)
        // At inference the steps fold into the batch and use the moving statistics.
        let y = try model.predict(x)
        XCTAssertEqual(y.floats[1], (10 - 6.25) / (2.5 + 0.001).squareRoot(), accuracy: 1e-4)
    }
}

/// SimpleRNN, LSTM, GRU and Bidirectional beyond the fixtures: output and
/// state shapes, the errors for inputs they cannot take, and a sequence
/// model that learns.
final class RecurrentLayerTests: XCTestCase {
    override func setUp() { Naming.reset(); RandomSeed.set(15) }

    func testShapesAndStates() throws {
        let x = Input(shape: [7, 3])
        XCTAssertEqual(try LSTM(4)(x).shape, [nil, 4])
        XCTAssertEqual(try GRU(5, returnSequences: true)(x).shape, [nil, 7, 5])
        let outs: [KerasTensor] = try LSTM(2, returnState: true)([x])
        XCTAssertEqual(outs.map(\.shape), [[nil, 2], [nil, 2], [nil, 2]], "output, h and c")
        XCTAssertEqual(try Bidirectional(SimpleRNN(3, returnSequences: true))(x).shape, [nil, 7, 6], "concat of both directions")
        let lstm = LSTM(4)
        _ = try lstm(x)
        XCTAssertEqual(lstm.weights.map(\.shape), [[3, 16], [4, 16], [16]])
        XCTAssertEqual(Array(lstm.bias!.value.floats[4..<8]), [1, 1, 1, 1], "unit_forget_bias starts the forget gate at 1")
        let gru = GRU(2)
        _ = try gru(x)
        XCTAssertEqual(gru.bias!.shape, [2, 6], "reset_after keeps an input and a recurrent bias row")
    }

    func testErrors() {
        XCTAssertThrowsError(try LSTM(4, name: "l")(Input(shape: [3]))) { e in XCTAssertTrue("\(e)".contains("l: expected an input of shape (batch, time, features)"), "\(e)") }
        XCTAssertThrowsError(try LSTM(4, stateful: true, name: "s")(Input(shape: [2, 3]))) { e in
            XCTAssertTrue("\(e)".contains("s: a stateful RNN needs a fixed batch size"), "\(e)")
        }
        XCTAssertThrowsError(try GRU(0)(Input(shape: [2, 3])))
        XCTAssertThrowsError(try Bidirectional(LSTM(2), mergeMode: "max")) { e in XCTAssertTrue("\(e)".contains("merge_mode"), "\(e)") }
        XCTAssertThrowsError(try Bidirectional(LSTM(2), backwardLayer: LSTM(2))) { e in XCTAssertTrue("\(e)".contains("go_backwards"), "\(e)") }
    }

    /// Bidirectional's initial states: the forward layer's, then the backward
    /// layer's; each direction gives what it gives alone from its states.
    func testBidirectionalTakesInitialStatesForEachDirection() throws {
        let x = Input(shape: [4, 2]), hf = Input(shape: [3]), cf = Input(shape: [3]), hb = Input(shape: [3]), cb = Input(shape: [3])
        let bi = try Bidirectional(LSTM(3), mergeMode: nil, name: "bi")
        let both: [KerasTensor] = try bi([x, hf, cf, hb, cb])
        let model = try Model(inputs: [x, hf, cf, hb, cb], outputs: both)
        let alone = try Model(inputs: [x, hf, cf, hb, cb], outputs: [try bi.forwardLayer([x, hf, cf])[0], try bi.backwardLayer([x, hb, cb])[0]])
        var rng = SplitMix64(seed: 4)
        func tensor(_ shape: [Int]) throws -> Tensor { try Tensor((0..<shape.reduce(1, *)).map { _ in rng.uniform(-1, 1) }, shape: shape) }
        let feeds = [try tensor([2, 4, 2])] + (try (0..<4).map { _ in try tensor([2, 3]) })
        let got = try model.predict(feeds), want = try alone.predict(feeds)
        XCTAssertEqual(got.map(\.floats), want.map(\.floats))
        let zeros = try model.predict([feeds[0]] + (try (0..<4).map { _ in try Tensor(zeros: .f32([2, 3])) }))
        XCTAssertNotEqual(got[1].floats, zeros[1].floats, "the backward layer's state is used")
        XCTAssertThrowsError(try Bidirectional(LSTM(3), name: "bi3")([x, hf, cf, hb])) { e in
            XCTAssertTrue("\(e)".contains("bi3: takes a sequence and optionally 4 initial states"), "\(e)")
        }
    }

    func testConfigsRoundTrip() throws {
        for layer in [SimpleRNN(3, activation: "relu", goBackwards: true), LSTM(2, unitForgetBias: false, returnSequences: true),
                      GRU(4, resetAfter: false)] as [Layer] {
            let again = try LayerRegistry.deserialize(["class_name": .string(layer.kerasClassName), "config": layer.config])
            XCTAssertEqual(again.config.serialized(), layer.config.serialized(), layer.kerasClassName)
        }
        let bi = try Bidirectional(LSTM(2), mergeMode: "sum")
        let again = try LayerRegistry.deserialize(["class_name": "Bidirectional", "config": bi.config]) as? Bidirectional
        XCTAssertEqual(again?.forwardLayer.name, bi.forwardLayer.name, "no second forward_ prefix")
        XCTAssertEqual(again?.mergeMode, "sum")
        // Keras 2 names: output_dim, inner_activation, dropout_W / dropout_U.
        let k2 = try LayerRegistry.deserialize(try JSON.parse(#"{"class_name": "LSTM", "config": {"output_dim": 5, "inner_activation": "hard_sigmoid", "dropout_W": 0.1, "dropout_U": 0.2}}"#)) as? LSTM
        XCTAssertEqual(k2?.units, 5)
        XCTAssertEqual(k2?.dropout, 0.1)
        XCTAssertEqual(k2?.recurrentDropout, 0.2)
    }

    func testAnLSTMLearnsToSumASequence() throws {
        let model = try Sequential([LSTM(8, inputShape: [5, 1]), Dense(1)], name: "summer")
        try model.compile(optimizer: Adam(learningRate: 0.02), loss: "mse")
        var rng = SplitMix64(seed: 8)
        let xs = (0..<(64 * 5)).map { _ in rng.uniform(0, 1) }
        let x = try Tensor(xs, shape: [64, 5, 1])
        let y = try Tensor((0..<64).map { i in (0..<5).map { xs[i * 5 + $0] }.reduce(0, +) / 5 }, shape: [64, 1])
        let h = try model.fit(x, y, batchSize: 16, epochs: 40, verbose: 0)
        let losses = h.history["loss"] ?? []
        XCTAssertLessThan(losses.last!, losses.first! * 0.2, "loss falls from \(losses.first!) to \(losses.last!)")
    }
}

/// Masks into recurrent layers: a padded step carries the states over, so a
/// padded sequence gives what the unpadded one gives.
final class RecurrentMaskTests: XCTestCase {
    override func setUp() { Naming.reset(); RandomSeed.set(16) }

    func testPaddedStepsAreSkipped() throws {
        for make in [{ LSTM(3) as RecurrentLayer }, { GRU(3) }, { SimpleRNN(3) }, { LSTM(3, goBackwards: true) }] {
            let padded = try Sequential([Embedding(inputDim: 10, outputDim: 4, maskZero: true, inputLength: 5), make()], name: "padded")
            let short = try Sequential([Embedding(inputDim: 10, outputDim: 4, inputLength: 2), make()], name: "short")
            try short.setWeights(padded.getWeights())
            let p = try padded.predict(try Tensor([3, 7, 0, 0, 0, 5, 0, 0, 0, 0] as [Int32], shape: [2, 5]))
            let s = try short.predict(try Tensor([3, 7, 5, 5] as [Int32], shape: [2, 2]))
            let want = s.floats
            // Row 2 of `short` is [5, 5]; the padded row 2 is [5] alone: compare row 1 exactly, row 2 against a one-step run.
            for j in 0..<3 { XCTAssertEqual(p.floats[j], want[j], accuracy: 1e-6, "\(padded.layers[1].kerasClassName) row 1 unit \(j)") }
            let one = try Sequential([Embedding(inputDim: 10, outputDim: 4, inputLength: 1), make()], name: "one")
            try one.setWeights(padded.getWeights())
            let o = try one.predict(try Tensor([5] as [Int32], shape: [1, 1]))
            for j in 0..<3 { XCTAssertEqual(p.floats[3 + j], o.floats[j], accuracy: 1e-6, "\(padded.layers[1].kerasClassName) row 2 unit \(j)") }
        }
    }

    func testSequenceOutputsKeepTheMask() throws {
        let ids = Input(shape: [4], dtype: .i32)
        let seq = try LSTM(2, returnSequences: true)(try Embedding(inputDim: 5, outputDim: 3, maskZero: true)(ids))
        XCTAssertNotNil(seq.maskType, "return_sequences passes the mask on")
        let last = try LSTM(2)(try Embedding(inputDim: 5, outputDim: 3, maskZero: true)(ids))
        XCTAssertNil(last.maskType)
    }
}

final class EmbeddingConfigTests: XCTestCase {
    func testInputDimIsTheVocabularyNotTheInputShape() throws {
        let e = try LayerRegistry.deserialize(try JSON.parse(#"{"class_name": "Embedding", "config": {"input_dim": 1000, "output_dim": 8}}"#))
        XCTAssertNil(e.declaredInputShape, "input_dim names the vocabulary")
        let k2 = try LayerRegistry.deserialize(try JSON.parse(#"{"class_name": "Embedding", "config": {"input_dim": 1000, "output_dim": 8, "input_length": 12}}"#))
        XCTAssertEqual(k2.declaredInputShape, [12], "Keras 2's input_length is the sequence length")
        let model = try Sequential([k2])
        XCTAssertEqual(try model.predict(try Tensor([Int32](repeating: 3, count: 12), shape: [1, 12])).shape, [1, 12, 8])
    }
}

final class LegacyMergeTests: XCTestCase {
    func testKeras1MergeModes() throws {
        Naming.reset()
        let a = Input(shape: [3]), b = Input(shape: [3])
        XCTAssertEqual(try merge([a, b], mode: "concat").shape, [nil, 6])
        XCTAssertEqual(try merge([a, b], mode: "cos", dotAxes: [1]).shape, [nil, 1])
        let m = try Model(inputs: [a, b], outputs: [try merge([a, b], mode: "sum"), try merge([a, b], mode: "mul"),
                                                      try merge([a, b], mode: "ave"), try merge([a, b], mode: "max"),
                                                      try merge([a, b], mode: "dot", dotAxes: [1])])
        let x = try Tensor([1, 2, 3], shape: [1, 3]), y = try Tensor([4, -5, 6], shape: [1, 3])
        let outs = try m.predict([x, y])
        XCTAssertEqual(outs.map(\.floats), [[5, -3, 9], [4, -10, 18], [2.5, -1.5, 4.5], [4, 2, 6], [12]])
        XCTAssertThrowsError(try merge([a, b], mode: "xor")) { e in XCTAssertTrue("\(e)".contains("unknown mode 'xor'"), "\(e)") }
        let fromConfig = try LayerRegistry.deserialize(try JSON.parse(#"{"class_name": "Merge", "config": {"mode": "concat", "concat_axis": 1, "name": "m1"}}"#))
        XCTAssertEqual((fromConfig as? Concatenate)?.axis, 1)
    }
}

/// LocallyConnected1D/2D against loops written from Keras 2's definition:
/// y[b, position, f] = sum over the patch of x * kernel[position] + bias[position].
final class LocallyConnectedTests: XCTestCase {
    override func setUp() { Naming.reset(); RandomSeed.set(17) }

    func random(_ n: Int, _ g: inout SplitMix64) -> [Float] { (0..<n).map { _ in g.uniform(-1, 1) } }

    func test1DMatchesItsDefinition() throws {
        var g = SplitMix64(seed: 1)
        let (n, t, c, f, k, s) = (2, 7, 4, 3, 2, 2)
        let layer = LocallyConnected1D(filters: f, kernelSize: k, strides: s)
        let model = try Sequential([layer], name: "lc1")
        try model.build(inputShape: [t, c])
        let l = (t - k) / s + 1
        XCTAssertEqual(layer.weights.map(\.shape), [[l, k * c, f], [l, f]])
        let w = random(l * k * c * f, &g), bias = random(l * f, &g)
        try model.setWeights([try Tensor(w, shape: [l, k * c, f]), try Tensor(bias, shape: [l, f])])
        let x = random(n * t * c, &g)
        let y = try model.predict(try Tensor(x, shape: [n, t, c])).floats
        for b in 0..<n { for p in 0..<l { for o in 0..<f {
            var acc = bias[p * f + o]
            for kk in 0..<k { for ch in 0..<c { acc += x[(b * t + p * s + kk) * c + ch] * w[(p * k * c + kk * c + ch) * f + o] } }
            XCTAssertEqual(y[(b * l + p) * f + o], acc, accuracy: 1e-5, "b \(b) position \(p) filter \(o)")
        } } }
    }

    func test2DMatchesItsDefinitionInBothDataFormats() throws {
        var g = SplitMix64(seed: 2)
        let (n, h, wd, c, f) = (2, 5, 7, 3, 2), (kh, kw) = (2, 3), (sh, sw) = (1, 2)
        let lh = (h - kh) / sh + 1, lw = (wd - kw) / sw + 1
        let kernel = random(lh * lw * kh * kw * c * f, &g), bias = random(lh * lw * f, &g)
        let x = random(n * h * wd * c, &g)
        var want = [Float](repeating: 0, count: n * lh * lw * f)
        for b in 0..<n { for i in 0..<lh { for j in 0..<lw { for o in 0..<f {
            var acc = bias[(i * lw + j) * f + o]
            for u in 0..<kh { for v in 0..<kw { for ch in 0..<c {
                acc += x[((b * h + i * sh + u) * wd + j * sw + v) * c + ch] * kernel[((i * lw + j) * kh * kw * c + (u * kw + v) * c + ch) * f + o]
            } } }
            want[((b * lh + i) * lw + j) * f + o] = acc
        } } } }
        let weights = [try Tensor(kernel, shape: [lh * lw, kh * kw * c, f]), try Tensor(bias, shape: [lh, lw, f])]
        let last = try Sequential([LocallyConnected2D(filters: f, kernelSize: [kh, kw], strides: [sh, sw], dataFormat: "channels_last")], name: "cl")
        try last.build(inputShape: [h, wd, c])
        try last.setWeights(weights)
        let y = try last.predict(try Tensor(x, shape: [n, h, wd, c])).floats
        for i in want.indices { XCTAssertEqual(y[i], want[i], accuracy: 1e-5, "channels_last index \(i)") }
        // channels_first: the same numbers with the channel axis moved.
        let first = try Sequential([LocallyConnected2D(filters: f, kernelSize: [kh, kw], strides: [sh, sw], dataFormat: "channels_first")], name: "cf")
        try first.build(inputShape: [c, h, wd])
        try first.setWeights(weights)
        var xcf = [Float](repeating: 0, count: x.count)
        for b in 0..<n { for r in 0..<h { for q in 0..<wd { for ch in 0..<c { xcf[((b * c + ch) * h + r) * wd + q] = x[((b * h + r) * wd + q) * c + ch] } } } }
        let ycf = try first.predict(try Tensor(xcf, shape: [n, c, h, wd])).floats
        for b in 0..<n { for i in 0..<lh { for j in 0..<lw { for o in 0..<f {
            XCTAssertEqual(ycf[((b * f + o) * lh + i) * lw + j], want[((b * lh + i) * lw + j) * f + o], accuracy: 1e-5)
        } } } }
    }

    func testConfigsAndErrors() throws {
        let k1 = try LayerRegistry.deserialize(try JSON.parse(#"{"class_name": "LocallyConnected1D", "config": {"nb_filter": 4, "filter_length": 3, "border_mode": "valid", "implementation": 2}}"#))
        XCTAssertEqual((k1 as? LocallyConnected1D)?.filters, 4)
        XCTAssertEqual(k1.kerasClassName, "LocallyConnected1D")
        XCTAssertThrowsError(try LocallyConnected1D(filters: 2, kernelSize: 3, padding: "same")(Input(shape: [5, 2])))
        XCTAssertThrowsError(try LocallyConnected2D(filters: 2, kernelSize: [9, 9])(Input(shape: [4, 4, 1])))
        let l2 = LocallyConnected2D(filters: 3, kernelSize: [2, 2])
        _ = try l2(Input(shape: [4, 4, 1]))
        let again = try LayerRegistry.deserialize(["class_name": "LocallyConnected2D", "config": l2.config])
        XCTAssertEqual(again.config.serialized(), l2.config.serialized())
    }
}

/// A stateful LSTM carries its states from one batch to the next (predict and
/// trainOnBatch alike) until resetStates().
final class StatefulRecurrentTests: XCTestCase {
    override func setUp() { Naming.reset(); RandomSeed.set(18) }

    func testStatesCarryAcrossBatchesUntilReset() throws {
        let input = Input(shape: [3, 2], batchSize: 2)
        let lstm = LSTM(4, stateful: true)
        let model = try Model(inputs: input, outputs: try Dense(1)(try lstm(input)))
        try model.compile(optimizer: "sgd", loss: "mse")
        let x = try Tensor((0..<12).map { Float($0) / 12 }, shape: [2, 3, 2]), y = try Tensor([0.5, -0.5], shape: [2, 1])
        XCTAssertEqual(lstm.stateVariables.map(\.shape), [[2, 4], [2, 4]])
        let first = try model.predict(x, batchSize: 2)
        let second = try model.predict(x, batchSize: 2)
        XCTAssertNotEqual(first.floats, second.floats, "the second batch starts from the first one's states")
        try model.resetStates()
        XCTAssertEqual(lstm.stateVariables[0].value.floats, [Float](repeating: 0, count: 8))
        XCTAssertEqual(try model.predict(x, batchSize: 2).floats, first.floats, "after reset the sequence starts from zero states again")
        try model.resetStates()
        _ = try model.trainOnBatch(x, y)
        XCTAssertNotEqual(lstm.stateVariables[0].value.floats, [Float](repeating: 0, count: 8), "trainOnBatch carries the states too")
        XCTAssertThrowsError(try model.predict(try Tensor([Float](repeating: 0, count: 18), shape: [3, 3, 2]), batchSize: 3)) { e in
            XCTAssertTrue("\(e)".contains("expects f32[2,3,2]"), "a batch of 3 is refused: \(e)")
        }
    }
}

final class InitialStateTests: XCTestCase {
    func testInitialStatesFollowTheSequence() throws {
        Naming.reset(); RandomSeed.set(19)
        let x = Input(shape: [4, 3]), h0 = Input(shape: [2]), c0 = Input(shape: [2])
        let lstm = LSTM(2)
        let model = try Model(inputs: [x, h0, c0], outputs: try lstm([x, h0, c0])[0])
        let xs = try Tensor((0..<12).map { Float($0) / 10 }, shape: [1, 4, 3])
        let zeros = try Tensor([0, 0], shape: [1, 2]), ones = try Tensor([1, 1], shape: [1, 2])
        let fromZero = try model.predict([xs, zeros, zeros])[0]
        let plain = try Sequential([LSTM(2, inputShape: [4, 3])], name: "plain")
        try plain.setWeights(lstm.getWeights())
        XCTAssertEqual(fromZero.floats, try plain.predict(xs).floats, "zero initial states are the default")
        XCTAssertNotEqual(try model.predict([xs, ones, ones])[0].floats, fromZero.floats)
        XCTAssertThrowsError(try LSTM(2, name: "bad")([x, h0])) { e in XCTAssertTrue("\(e)".contains("optionally 2 initial state(s)"), "\(e)") }
        XCTAssertThrowsError(try GRU(2, name: "bad2")([x, Input(shape: [5])])) { e in XCTAssertTrue("\(e)".contains("(batch, 2)"), "\(e)") }
    }
}

final class InitialWeightsTests: XCTestCase {
    func testKeras2WeightsArgument() throws {
        Naming.reset()
        let table = try Tensor((0..<12).map { Float($0) }, shape: [4, 3])
        let model = try Sequential([Embedding(inputDim: 4, outputDim: 3, inputLength: 2, weights: [table])], name: "pretrained")
        XCTAssertEqual(try model.predict(try Tensor([2, 0] as [Int32], shape: [1, 2])).floats, [6, 7, 8, 0, 1, 2])
        let wrong = Dense(2)
        wrong.initialWeights = [try Tensor([1, 2, 3], shape: [3])]
        XCTAssertThrowsError(try Sequential([wrong], name: "w").build(inputShape: [5])) { e in
            XCTAssertTrue("\(e)".contains("setWeights expects 2 arrays"), "\(e)")
        }
        XCTAssertEqual(wrong.weights.count, 0, "a failed build leaves no weights behind")
        XCTAssertFalse(wrong.isBuilt)
    }
}

/// The recurrent layers' gradients against central finite differences of
/// the float64 reference evaluation: all three cells, masked and unmasked,
/// forwards and go_backwards, with and without initial states.
final class RecurrentGradientTests: XCTestCase {
    struct Setup { var layer: RecurrentLayer; var masked: Bool; var initialState: Bool }

    /// Checks the layer's gradients by finite differences and returns the loss and the gradients.
    @discardableResult
    func check(_ s: Setup, file: StaticString = #filePath, line: UInt = #line) throws -> [[Double]] {
        Naming.reset(); RandomSeed.set(20)
        let (n, t, f) = (2, 4, 3)
        let b = GraphBuilder(name: "fd")
        var g = SplitMix64(seed: 7)
        func values(_ count: Int, _ lo: Double = -1, _ hi: Double = 1) -> [Double] { (0..<count).map { _ in lo + (hi - lo) * g.unit() } }
        let x = try b.input("x", .f32([n, t, f]))
        var feeds: [String: RefTensor] = ["x": RefTensor(.f32, [n, t, f], values(n * t * f))]
        var inputs = [x]
        if s.initialState {
            for k in 0..<s.layer.stateCount {
                inputs.append(try b.input("s\(k)", .f32([n, s.layer.units])))
                feeds["s\(k)"] = RefTensor(.f32, [n, s.layer.units], values(n * s.layer.units))
            }
        }
        var mask: Value? = nil
        if s.masked {
            mask = try b.input("m", .f32([n, t]))
            feeds["m"] = RefTensor(.f32, [n, t], [1, 1, 0, 1, 0, 1, 1, 0])
        }
        let ctx = CallContext(builder: b, training: false)
        let shapes: [Shape] = inputs.map { b.type(of: $0).shape.map { $0 == TensorType.unknown ? nil : $0 } }
        try s.layer.ensureBuilt(shapes)
        let (outs, _) = try s.layer.emit(inputs, masks: [mask] + inputs.dropFirst().map { _ in nil }, context: ctx)
        let out = outs[0]
        XCTAssertEqual(b.graph.nodes.contains { $0.op == "rnn_sequence" }, !s.layer.unroll, "\(s.layer.kerasClassName): fused only without unroll",
                       file: file, line: line)
        let cot = try b.constant(values(b.type(of: out).elementCount!).map(Float.init), shape: b.type(of: out).shape)
        let loss = try b.reduceSum(b.mul(out, cot), axes: Array(0..<b.type(of: out).rank))
        for v in ctx.variablesRead { feeds[v.path] = RefTensor(.f32, v.shape, v.value.floats.map(Double.init)) }
        var graph = b.graph
        let wrt = inputs + ctx.variablesRead.compactMap { ctx.parameter(of: $0) }
        let names = ["x"] + (s.initialState ? (0..<s.layer.stateCount).map { "s\($0)" } : []) + ctx.variablesRead.map(\.path)
        let grads = try Autodiff.gradients(of: loss, wrt: wrt, in: &graph)
        graph.outputs = [loss] + grads
        let eval = ReferenceEvaluator()
        let analytic = try eval.evaluate(graph, feeds: feeds)
        var lossOnly = graph
        lossOnly.outputs = [loss]
        let eps = 1e-6
        for (k, name) in names.enumerated() {
            let base = feeds[name]!
            for idx in Set((0..<4).map { _ in Int(g.next() % UInt64(base.count)) }) {
                var plus = feeds, minus = feeds
                plus[name]!.data[idx] += eps
                minus[name]!.data[idx] -= eps
                let numeric = (try eval.evaluate(lossOnly, feeds: plus)[0].data[0] - (try eval.evaluate(lossOnly, feeds: minus)[0].data[0])) / (2 * eps)
                let got = analytic[1 + k].data[idx]
                XCTAssertEqual(got, numeric, accuracy: 1e-6 * (1 + abs(numeric)),
                               "\(s.layer.kerasClassName) masked=\(s.masked) backwards=\(s.layer.goBackwards) initial=\(s.initialState): d loss / d \(name)[\(idx)]",
                               file: file, line: line)
            }
        }
        return analytic.map(\.data)
    }

    /// Every cell through the fused rnn_sequence op and unrolled (`unroll: true`):
    /// both pass finite differences, and they agree with each other.
    func testAllCellsMaskedAndUnmaskedBothDirectionsWithAndWithoutInitialStates() throws {
        for masked in [false, true] {
            for backwards in [false, true] {
                for initial in [false, true] {
                    let layers: [(Bool) -> RecurrentLayer] = [
                        { SimpleRNN(3, goBackwards: backwards, unroll: $0) },
                        { LSTM(3, returnSequences: true, goBackwards: backwards, unroll: $0) },
                        { GRU(3, returnSequences: true, goBackwards: backwards, unroll: $0) },
                        { GRU(2, goBackwards: backwards, unroll: $0, resetAfter: false) },
                    ]
                    for (k, make) in layers.enumerated() {
                        var results: [[[Double]]] = []
                        for unroll in [false, true] {
                            let layer = make(unroll)
                            // Bidirectional's setting: masked sequence outputs are zeros.
                            if k == 2 { layer.zeroOutputForMask = true }
                            results.append(try check(Setup(layer: layer, masked: masked, initialState: initial)))
                        }
                        for (fused, unrolled) in zip(results[0], results[1]) {
                            XCTAssertEqual(fused.count, unrolled.count)
                            for (a, b) in zip(fused, unrolled) {
                                XCTAssertEqual(a, b, accuracy: 1e-9 * (1 + abs(b)), "\(make(false).kerasClassName) masked=\(masked) backwards=\(backwards) initial=\(initial): fused vs unrolled")
                            }
                        }
                    }
                }
            }
        }
    }
}

final class LambdaMaskTests: XCTestCase {
    func testLambdaMaskFunctionFeedsTheNextLayer() throws {
        Naming.reset(); RandomSeed.set(21)
        // The mask is computed from the input: steps whose first feature is 0 are skipped by the LSTM.
        let x = Input(shape: [4, 2])
        let masked = try Lambda({ $0 }, mask: { input, _ in try ops.max(ops.abs(input), axis: -1) })(x)
        let lstm = LSTM(3)
        let model = try Model(inputs: x, outputs: try lstm(masked))
        let plain = try Sequential([LSTM(3, inputShape: [2, 2])], name: "short")
        try plain.setWeights(lstm.getWeights())
        let padded = try Tensor([0.5, -1, 0.25, 2, 0, 0, 0, 0], shape: [1, 4, 2])
        let short = try Tensor([0.5, -1, 0.25, 2], shape: [1, 2, 2])
        let a = try model.predict(padded).floats, b = try plain.predict(short).floats
        for j in 0..<3 { XCTAssertEqual(a[j], b[j], accuracy: 1e-6) }
        // Without mask: the LSTM runs over every step, and the result differs.
        let unmasked = try Model(inputs: x, outputs: try lstm(try Lambda({ $0 })(x)))
        XCTAssertNotEqual(try unmasked.predict(padded).floats, a)
    }
}

final class MaskPropertyTests: XCTestCase {
    func testInputAndOutputMasksAsTensors() throws {
        Naming.reset()
        let ids = Input(shape: [3], dtype: .i32)
        let emb = Embedding(inputDim: 5, outputDim: 2, maskZero: true)
        let e = try emb(ids)
        let lstm = LSTM(2, returnSequences: true)
        let seq = try lstm(e)  // kept: a layer refers to its calls weakly
        XCTAssertNil(try emb.inputMask, "the ids carry no mask")
        let m = try XCTUnwrap(try emb.outputMask)
        XCTAssertEqual(m.shape, [nil, 3])
        XCTAssertNotNil(try lstm.inputMask)
        // The mask tensor computes: 1 where the id is not 0.
        let model = try Model(inputs: ids, outputs: m)
        XCTAssertEqual(try model.predict(try Tensor([2, 0, 4] as [Int32], shape: [1, 3])).floats, [1, 0, 1])
        XCTAssertThrowsError(try Dense(2).outputMask, "never called")
        withExtendedLifetime(seq) {}
    }
}
