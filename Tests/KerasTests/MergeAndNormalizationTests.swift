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
