import Keras
import XCTest

/// The examples from the Keras documentation this library promises, with
/// the shapes the documentation states.
final class SeedExampleTests: XCTestCase {
    override func setUp() { Naming.reset(); RandomSeed.set(1) }

    func testSequentialMLP() throws {
        let model = try Sequential([Dense(32, inputDim: 784), Activation("relu"), Dense(10), Activation("softmax")])
        XCTAssertEqual(try model.layers[0].outputShape, [nil, 32])
        XCTAssertEqual(try model.layers[3].outputShape, [nil, 10])
        XCTAssertEqual(try model.outputShape, [nil, 10], "model.output_shape, as the seed's examples read it")
        XCTAssertEqual(try model.inputShape, [nil, 784])
        XCTAssertEqual(model.countParams(), 784 * 32 + 32 + 32 * 10 + 10)
        XCTAssertEqual(model.layers.map(\.name), ["dense", "activation", "dense_1", "activation_1"])
        let text = model.summaryText
        XCTAssertTrue(text.contains("Model: \"sequential\""), text)
        XCTAssertTrue(text.contains("dense (Dense)"), text)
        XCTAssertTrue(text.contains("(None, 32)"), text)
        XCTAssertTrue(text.contains("25,120"), text)
        XCTAssertTrue(text.contains("Total params: 25,450 (99.41 KB)"), text)
        XCTAssertTrue(text.contains("Non-trainable params: 0 (0.00 B)"), text)
        XCTAssertFalse(text.contains("Planned memory"), "no plan before a step")
        // After a step, the summary gives each compiled plan's memory.
        try model.compile(optimizer: "sgd", loss: "mse")
        _ = try model.trainOnBatch(try Tensor(zeros: .f32([4, 784])), try Tensor(zeros: .f32([4, 10])))
        let after = model.summaryText
        XCTAssertTrue(after.contains("Planned memory, train step at batch 4: "), after)
        XCTAssertTrue(after.contains("live lower bound"), after)
    }

    func testReshapeChain() throws {
        let model = try Sequential([Reshape([3, 4], inputShape: [12])])
        XCTAssertEqual(try model.layers[0].outputShape, [nil, 3, 4])
        XCTAssertEqual(try model.outputShape, [nil, 3, 4])
        try model.add(Reshape([6, 2]))
        XCTAssertEqual(try model.layers[1].outputShape, [nil, 6, 2])
        XCTAssertEqual(try model.outputShape, [nil, 6, 2], "at each step, as the seed shows")
        try model.add(Reshape([-1, 2, 2]))
        XCTAssertEqual(try model.layers[2].outputShape, [nil, 3, 2, 2])
        XCTAssertEqual(try model.outputShape, [nil, 3, 2, 2])
    }

    func testPermute() throws {
        let model = try Sequential([Permute([2, 1], inputShape: [10, 64])])
        XCTAssertEqual(try model.layers[0].outputShape, [nil, 64, 10])
        XCTAssertEqual(try model.outputShape, [nil, 64, 10])
    }

    func testRepeatVector() throws {
        let model = try Sequential([Dense(32, inputDim: 32), RepeatVector(3)])
        XCTAssertEqual(try model.layers[1].outputShape, [nil, 3, 32])
        XCTAssertEqual(try model.outputShape, [nil, 3, 32])
    }

    func testFunctionalDense() throws {
        let a = Input(shape: [32])
        let b = try Dense(32)(a)
        let model = try Model(inputs: a, outputs: b)
        XCTAssertEqual(model.outputs[0].shape, [nil, 32])
        XCTAssertEqual(try model.outputShape, [nil, 32])
        XCTAssertEqual(model.layers.count, 2)
        XCTAssertTrue(model.layers[0] is InputLayer)
        XCTAssertTrue(model.summaryText.contains("Connected to"))
        let y = try model.predict(try Tensor([Float](repeating: 1, count: 64), shape: [2, 32]))
        XCTAssertEqual(y.shape, [2, 32])
    }

    /// The antirectifier from the Keras examples, as a Lambda of ops on KerasTensors.
    func testAntirectifierLambda() throws {
        func antirectifier(_ x: KerasTensor) throws -> KerasTensor {
            let centred = try x - ops.mean(x, axis: 1, keepdims: true)
            let n = try ops.l2Normalize(centred, axis: 1)
            return try ops.concatenate([ops.relu(n), ops.relu(-n)], axis: 1)
        }
        let model = try Sequential([Dense(8, inputShape: [4]),
                                    Lambda(antirectifier, outputShape: { s in [s[0], s[1].map { $0 * 2 }] }),
                                    Dense(2, activation: "softmax")])
        XCTAssertEqual(try model.layers[1].outputShape, [nil, 16])
        let x = try Tensor((0..<12).map { Float($0) / 10 - 0.5 }, shape: [3, 4])
        let p = try model.predict(x)
        XCTAssertEqual(p.shape, [3, 2])
        for i in 0..<3 { XCTAssertEqual(p.floats[2 * i] + p.floats[2 * i + 1], 1, accuracy: 1e-5) }
        // The Lambda's gradient flows: one training step changes the first Dense layer.
        try model.compile(optimizer: SGD(learningRate: 0.5), loss: "categorical_crossentropy")
        let before = model.layers[0].getWeights()[0]
        _ = try model.trainOnBatch(x, try Tensor([1, 0, 0, 1, 1, 0], shape: [3, 2]))
        XCTAssertNotEqual(model.layers[0].getWeights()[0], before)
    }

    func testSharedLayerNodeAccessors() throws {
        let shared = Dense(4, name: "shared")
        let a = Input(shape: [3]), b = Input(shape: [3])
        let ya = try shared(a), yb = try shared(b)
        _ = try Model(inputs: [a, b], outputs: [ya, yb])
        XCTAssertEqual(try shared.outputShapeAt(0), [nil, 4])
        XCTAssertTrue(try shared.inputAt(1) === b)
        XCTAssertThrowsError(try shared.output) { error in
            XCTAssertTrue("\(error)".contains("multiple inbound nodes"), "\(error)")
        }
    }
}
