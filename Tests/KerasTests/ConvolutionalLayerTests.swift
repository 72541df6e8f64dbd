import Keras
import XCTest

/// The digits data shipped in Data/digits (UCI, CC BY 4.0; see its README).
enum Digits {
    static let path: String = {
        let here = URL(fileURLWithPath: #filePath)
        return here.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Data/digits/digits.csv").path
    }()

    /// (images [n, 8, 8, 1] scaled to [0, 1], one-hot labels [n, 10]) for rows in `range`.
    static func load() throws -> (x: [Float], y: [Float], count: Int) {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var xs: [Float] = [], ys: [Float] = [], n = 0
        for line in text.split(separator: "\n") {
            let v = line.split(separator: ",").compactMap { Int($0) }
            guard v.count == 65 else { continue }
            xs += v[0..<64].map { Float($0) / 16 }
            ys += (0..<10).map { $0 == v[64] ? 1 : 0 }
            n += 1
        }
        return (xs, ys, n)
    }
}

final class ConvolutionalLayerTests: XCTestCase {
    override func setUp() { Naming.reset(); RandomSeed.set(1) }

    func message(_ body: () throws -> Void) -> String {
        do { try body() } catch { return "\(error)" }
        return "no error"
    }

    /// The Keras documentation's Flatten example, and its Keras 2 spelling.
    func testFlattenExampleAndKeras2Alias() throws {
        let model = try Sequential([Conv2D(64, [3, 3], padding: "same", dataFormat: "channels_first", inputShape: [3, 32, 32])])
        XCTAssertEqual(try model.layers[0].outputShape, [nil, 64, 32, 32])
        try model.add(Flatten())
        XCTAssertEqual(try model.layers[1].outputShape, [nil, 65536])

        let old = try Sequential([Convolution2D(64, 3, 3, borderMode: "same", inputShape: [32, 32, 3])])
        XCTAssertEqual(try old.layers[0].outputShape, [nil, 32, 32, 64])
        XCTAssertEqual(old.layers[0].kerasClassName, "Conv2D")
        let fromConfig = try LayerRegistry.deserialize(["class_name": "Convolution2D",
                                                         "config": ["filters": 8, "kernel_size": [3, 3], "padding": "same"]])
        XCTAssertTrue(fromConfig is Conv2D)
    }

    /// Keras's errors for impossible configurations, raised when the layer is built.
    func testImpossibleConfigurations() throws {
        XCTAssertEqual(message { _ = try Sequential([Conv2D(filters: 8, kernelSize: [3, 3], strides: [2, 2], dilationRate: [2, 2], inputShape: [9, 9, 1], name: "c")]) },
                       "c: `strides > 1` not supported in conjunction with `dilation_rate > 1`; received strides=[2, 2] and dilation_rate=[2, 2]")
        XCTAssertEqual(message { _ = try Sequential([Conv2D(filters: 8, kernelSize: [5, 5], inputShape: [3, 3, 1], name: "c")]) },
                       "c: the kernel (effective size 5 on spatial axis 0) is larger than the padded input (3); computed output size would be negative: -1")
        XCTAssertEqual(message { _ = try Sequential([Conv1D(filters: 2, kernelSize: 3, dilationRate: 4, inputShape: [6, 1], name: "c")]) },
                       "c: the kernel (effective size 9 on spatial axis 0) is larger than the padded input (6); computed output size would be negative: -2")
        XCTAssertEqual(message { _ = try Sequential([Conv2D(filters: 0, kernelSize: [3, 3], inputShape: [8, 8, 1], name: "c")]) },
                       "c: invalid value for argument `filters`; expected a strictly positive value, received filters=0")
        XCTAssertEqual(message { _ = try Sequential([Conv2D(filters: -4, kernelSize: [3, 3], inputShape: [8, 8, 1], name: "c")]) },
                       "c: invalid value for argument `filters`; expected a strictly positive value, received filters=-4")
        XCTAssertEqual(message { _ = try Sequential([MaxPooling2D(poolSize: [4, 4], inputShape: [3, 3, 2], name: "p")]) },
                       "p: pool size 4 is larger than the input (3) on spatial axis 0; computed output size would be negative")
        XCTAssertEqual(message { _ = try Sequential([Conv2D(filters: 3, kernelSize: [3, 3], groups: 2, inputShape: [8, 8, 4], name: "c")]) },
                       "c: the number of input channels (4) and filters (3) must be divisible by groups (2)")
        XCTAssertEqual(message { _ = try Sequential([Conv2D(filters: 3, kernelSize: [3, 3], padding: "causal", inputShape: [8, 8, 4], name: "c")]) },
                       "c: padding must be 'valid' or 'same', got 'causal'")
    }

    /// The Keras MNIST CNN on the digits data: at least 95% held-out accuracy.
    func testCNNTrainsOnDigits() throws {
        let start = Date()
        let (x0, y0, n) = try Digits.load()
        XCTAssertEqual(n, 1797)
        // A seeded shuffle before the split: the file's rows come in collection order.
        var g = SplitMix64(seed: 2024)
        var order = Array(0..<n)
        for i in stride(from: n - 1, to: 0, by: -1) { order.swapAt(i, Int(g.next() % UInt64(i + 1))) }
        let x = order.flatMap { x0[($0 * 64)..<(($0 + 1) * 64)] }, y = order.flatMap { y0[($0 * 10)..<(($0 + 1) * 10)] }
        let split = 1437
        let xTrain = try Tensor(Array(x[0..<(split * 64)]), shape: [split, 8, 8, 1]), yTrain = try Tensor(Array(y[0..<(split * 10)]), shape: [split, 10])
        let xTest = try Tensor(Array(x[(split * 64)...]), shape: [n - split, 8, 8, 1]), yTest = try Tensor(Array(y[(split * 10)...]), shape: [n - split, 10])
        let model = try Sequential([
            Conv2D(32, 3, activation: "relu", inputShape: [8, 8, 1]),
            Conv2D(64, 3, activation: "relu"),
            MaxPooling2D(2),
            Dropout(0.25),
            Flatten(),
            Dense(128, activation: "relu"),
            Dropout(0.5),
            Dense(10, activation: "softmax"),
        ])
        try model.compile(optimizer: Adam(learningRate: 1e-3), loss: "categorical_crossentropy", metrics: ["accuracy"])
        _ = try model.fit(xTrain, yTrain, batchSize: 32, epochs: 30, verbose: 0)
        let result = try model.evaluateDict(x: [xTest], y: [yTest])
        XCTAssertGreaterThanOrEqual(result["accuracy"]!, 0.95, "\(result)")
        XCTAssertLessThan(Date().timeIntervalSince(start), 60)
        print("digits CNN: held-out accuracy \(result["accuracy"]!), \(Date().timeIntervalSince(start)) s")
    }

    /// SeparableConv2D's two kernels keep their own initializer, regularizer
    /// and constraint, under Keras's depthwise_* and pointwise_* keys.
    func testSeparableConvKeepsBothKernelsSettings() throws {
        Naming.reset()
        let layer = SeparableConv2D(filters: 4, kernelSize: [3, 3], depthwiseInitializer: "ones", pointwiseInitializer: "zeros",
                                    depthwiseRegularizer: L2(l2: 0.1), pointwiseRegularizer: L1(l1: 0.2), pointwiseConstraint: NonNeg())
        _ = try layer(Input(shape: [5, 5, 2]))
        let c = layer.config
        XCTAssertNil(c["kernel_initializer"])
        XCTAssertEqual(c["pointwise_initializer"]?["class_name"]?.stringValue, "Zeros")
        XCTAssertEqual(c["depthwise_initializer"]?["class_name"]?.stringValue, "Ones")
        XCTAssertNotEqual(c["pointwise_regularizer"], JSON.null)
        XCTAssertNotEqual(c["depthwise_regularizer"], JSON.null)
        XCTAssertNotEqual(c["pointwise_constraint"], JSON.null)
        let back = try XCTUnwrap(try LayerRegistry.deserialize(["class_name": "SeparableConv2D", "config": c]) as? SeparableConv2D)
        XCTAssertEqual(back.config.serialized(), c.serialized())
        XCTAssertNotNil(back.pointwiseRegularizer)
        XCTAssertNotNil(back.pointwiseConstraint)
        XCTAssertThrowsError(try LayerRegistry.deserialize(["class_name": "BatchNormalization", "config": ["renorm": true, "name": "bn"]])) {
            XCTAssertTrue("\($0)".contains("renorm"), "\($0)")
        }
    }
}
