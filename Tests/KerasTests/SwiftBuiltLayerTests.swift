import Foundation
import Keras
import XCTest

/// The layer harness's other half: every registered class built from its
/// Swift initializer (non-default arguments where it has them) and from
/// that layer's config must agree: the same config again, the same weights
/// (names, shapes, trainable split) and, with the weights copied across, the
/// same outputs. Then masks: a Masking layer in front, the layer's output
/// mask is the one Keras gives (passed through, derived, or none).
final class SwiftBuiltLayerTests: XCTestCase {
    struct Case {
        var make: () throws -> Layer
        /// Input shapes without the batch; i32 inputs for Embedding.
        var inputs: [[Int]]
        var intInputs = false
        /// What the output mask is, given a [batch, time] mask on a rank-3 input.
        var mask: MaskRule = .none
    }
    enum MaskRule { case none, passed, ownZeros }

    static let cases: [String: Case] = [
        "Activation": Case(make: { Activation("tanh") }, inputs: [[3, 4]], mask: .passed),
        "ActivityRegularization": Case(make: { ActivityRegularization(l1: 0.01, l2: 0.02) }, inputs: [[3, 4]], mask: .passed),
        "Add": Case(make: { Add() }, inputs: [[3, 4], [3, 4]]),
        "AlphaDropout": Case(make: { AlphaDropout(0.2, seed: 3) }, inputs: [[3, 4]], mask: .passed),
        "Average": Case(make: { Average() }, inputs: [[3, 4], [3, 4]]),
        "AveragePooling1D": Case(make: { AveragePooling1D(poolSize: 2, strides: 1, padding: "same") }, inputs: [[5, 3]]),
        "AveragePooling2D": Case(make: { AveragePooling2D(poolSize: [2, 2], padding: "same") }, inputs: [[5, 4, 3]]),
        "AveragePooling3D": Case(make: { AveragePooling3D(poolSize: [2, 2, 2]) }, inputs: [[4, 4, 4, 2]]),
        "BatchNormalization": Case(make: { BatchNormalization(momentum: 0.9, epsilon: 1e-2) }, inputs: [[3, 4]], mask: .passed),
        "Bidirectional": Case(make: { try Bidirectional(LSTM(3, returnSequences: true), mergeMode: "sum") }, inputs: [[4, 2]], mask: .passed),
        "Concatenate": Case(make: { Concatenate(axis: 1) }, inputs: [[3, 4], [2, 4]]),
        "Conv1D": Case(make: { Conv1D(filters: 3, kernelSize: 2, strides: 1, padding: "causal", dilationRate: 2) }, inputs: [[6, 2]]),
        "Conv2D": Case(make: { Conv2D(filters: 3, kernelSize: [2, 3], strides: [1, 2], padding: "same", activation: "relu") }, inputs: [[5, 6, 2]]),
        "Conv2DTranspose": Case(make: { Conv2DTranspose(filters: 2, kernelSize: [3, 3], strides: [2, 2], padding: "same") }, inputs: [[3, 3, 2]]),
        "Conv3D": Case(make: { Conv3D(filters: 2, kernelSize: [2, 2, 2], useBias: false) }, inputs: [[3, 3, 3, 2]]),
        "Cropping1D": Case(make: { Cropping1D(cropping: (1, 2)) }, inputs: [[6, 2]]),
        "Cropping2D": Case(make: { Cropping2D(cropping: [(1, 0), (0, 2)]) }, inputs: [[4, 5, 2]]),
        "Cropping3D": Case(make: { Cropping3D(cropping: [(1, 0), (0, 1), (1, 1)]) }, inputs: [[3, 3, 4, 2]]),
        "Dense": Case(make: { Dense(5, activation: "sigmoid", kernelRegularizer: L2(l2: 0.01), kernelConstraint: MaxNorm(maxValue: 2, axis: [0])) },
                      inputs: [[3, 4]], mask: .passed),
        "DepthwiseConv2D": Case(make: { DepthwiseConv2D(kernelSize: [2, 2], depthMultiplier: 2) }, inputs: [[4, 4, 3]]),
        "Dot": Case(make: { Dot(axes: 1, normalize: true) }, inputs: [[4], [4]]),
        "Dropout": Case(make: { Dropout(0.3, seed: 5) }, inputs: [[3, 4]], mask: .passed),
        "ELU": Case(make: { ELU(alpha: 0.7) }, inputs: [[3, 4]], mask: .passed),
        "Embedding": Case(make: { Embedding(inputDim: 7, outputDim: 3, maskZero: true) }, inputs: [[4]], intInputs: true, mask: .ownZeros),
        "Flatten": Case(make: { Flatten() }, inputs: [[3, 4]]),
        "GRU": Case(make: { GRU(3, returnSequences: true, resetAfter: false) }, inputs: [[4, 2]], mask: .passed),
        "GaussianDropout": Case(make: { GaussianDropout(0.2, seed: 2) }, inputs: [[3, 4]], mask: .passed),
        "GaussianNoise": Case(make: { GaussianNoise(0.1, seed: 2) }, inputs: [[3, 4]], mask: .passed),
        "GlobalAveragePooling1D": Case(make: { GlobalAveragePooling1D(keepdims: true) }, inputs: [[4, 3]]),
        "GlobalAveragePooling2D": Case(make: { GlobalAveragePooling2D() }, inputs: [[3, 3, 2]]),
        "GlobalAveragePooling3D": Case(make: { GlobalAveragePooling3D() }, inputs: [[2, 2, 2, 2]]),
        "GlobalMaxPooling1D": Case(make: { GlobalMaxPooling1D() }, inputs: [[4, 3]]),
        "GlobalMaxPooling2D": Case(make: { GlobalMaxPooling2D(keepdims: true) }, inputs: [[3, 3, 2]]),
        "GlobalMaxPooling3D": Case(make: { GlobalMaxPooling3D() }, inputs: [[2, 2, 2, 2]]),
        "LSTM": Case(make: { LSTM(3, unitForgetBias: false) }, inputs: [[4, 2]]),
        "LayerNormalization": Case(make: { LayerNormalization(axis: -1, epsilon: 1e-2, center: false) }, inputs: [[3, 4]], mask: .passed),
        "LeakyReLU": Case(make: { LeakyReLU(negativeSlope: 0.2) }, inputs: [[3, 4]], mask: .passed),
        "LocallyConnected1D": Case(make: { LocallyConnected1D(filters: 2, kernelSize: 2, strides: 2) }, inputs: [[6, 3]]),
        "LocallyConnected2D": Case(make: { LocallyConnected2D(filters: 2, kernelSize: [2, 2]) }, inputs: [[3, 3, 2]]),
        "Masking": Case(make: { Masking(maskValue: 0.5) }, inputs: [[3, 4]], mask: .ownZeros),
        "MaxPooling1D": Case(make: { MaxPooling1D(poolSize: 3, strides: 1) }, inputs: [[5, 2]]),
        "MaxPooling2D": Case(make: { MaxPooling2D(poolSize: [2, 2], strides: [1, 1]) }, inputs: [[4, 4, 2]]),
        "MaxPooling3D": Case(make: { MaxPooling3D(poolSize: [2, 2, 2]) }, inputs: [[4, 4, 4, 1]]),
        "Maximum": Case(make: { Maximum() }, inputs: [[3, 4], [3, 4]]),
        "Minimum": Case(make: { Minimum() }, inputs: [[3, 4], [3, 4]]),
        "Multiply": Case(make: { Multiply() }, inputs: [[3, 4], [3, 4]]),
        "PReLU": Case(make: { PReLU(alphaInitializer: Constant(value: 0.25), sharedAxes: [1]) }, inputs: [[3, 4]], mask: .passed),
        "Permute": Case(make: { Permute([2, 1]) }, inputs: [[3, 4]]),
        "ReLU": Case(make: { ReLU(maxValue: 2, negativeSlope: 0.1, threshold: 0.2) }, inputs: [[3, 4]], mask: .passed),
        "RepeatVector": Case(make: { RepeatVector(3) }, inputs: [[4]]),
        "Reshape": Case(make: { Reshape([2, 6]) }, inputs: [[3, 4]]),
        "SeparableConv2D": Case(make: { SeparableConv2D(filters: 3, kernelSize: [2, 2], depthMultiplier: 2, pointwiseInitializer: "he_normal") },
                                inputs: [[4, 4, 2]]),
        "SimpleRNN": Case(make: { SimpleRNN(3, activation: "relu", returnSequences: true, goBackwards: true) }, inputs: [[4, 2]], mask: .passed),
        "Softmax": Case(make: { Softmax(axis: 1) }, inputs: [[3, 4]], mask: .passed),
        "SpatialDropout1D": Case(make: { SpatialDropout1D(0.3, seed: 1) }, inputs: [[3, 4]], mask: .passed),
        "SpatialDropout2D": Case(make: { SpatialDropout2D(0.3, seed: 1) }, inputs: [[3, 3, 2]]),
        "SpatialDropout3D": Case(make: { SpatialDropout3D(0.3, seed: 1) }, inputs: [[2, 2, 2, 2]]),
        "Subtract": Case(make: { Subtract() }, inputs: [[3, 4], [3, 4]]),
        "ThresholdedReLU": Case(make: { ThresholdedReLU(theta: 0.3) }, inputs: [[3, 4]], mask: .passed),
        "TimeDistributed": Case(make: { TimeDistributed(Dense(2)) }, inputs: [[3, 4]], mask: .passed),
        "UpSampling1D": Case(make: { UpSampling1D(size: 3) }, inputs: [[3, 2]]),
        "UpSampling2D": Case(make: { UpSampling2D(size: [2, 1], interpolation: "bilinear") }, inputs: [[3, 3, 2]]),
        "UpSampling3D": Case(make: { UpSampling3D(size: [1, 2, 1]) }, inputs: [[2, 2, 2, 1]]),
        "ZeroPadding1D": Case(make: { ZeroPadding1D(padding: (2, 1)) }, inputs: [[3, 2]]),
        "ZeroPadding2D": Case(make: { ZeroPadding2D(padding: [(1, 0), (0, 2)]) }, inputs: [[3, 3, 2]]),
        "ZeroPadding3D": Case(make: { ZeroPadding3D(padding: [(1, 0), (0, 1), (1, 1)]) }, inputs: [[2, 2, 2, 1]]),
    ]

    /// Every registered class has a Swift-built case, so a new layer cannot skip the harness.
    func testEveryRegisteredClassHasASwiftBuiltCase() {
        let missing = LayerRegistry.canonicalClassNames.filter { !RegistryRoundTripTests.excluded.contains($0) && Self.cases[$0] == nil }
        XCTAssertEqual(missing, [], "registered classes without a Swift-built harness case")
    }

    func inputs(_ c: Case, batch: Int, rng: inout SplitMix64) throws -> [Tensor] {
        try c.inputs.map { s in
            let n = batch * s.reduce(1, *)
            return c.intInputs ? try Tensor((0..<n).map { _ in Int32(rng.next() % 7) }, shape: [batch] + s)
                               : try Tensor((0..<n).map { _ in rng.uniform(-1, 1) }, shape: [batch] + s)
        }
    }

    func model(_ layer: Layer, _ c: Case) throws -> Model {
        let ins = c.inputs.map { Input(shape: $0, dtype: c.intInputs ? .i32 : .f32) }
        let outs: [KerasTensor] = try layer(ins.count == 1 ? [ins[0]] : ins)
        return try Model(inputs: ins, outputs: [outs[0]])
    }

    func testSwiftBuiltAndConfigBuiltLayersAgree() throws {
        var rng = SplitMix64(seed: 17)
        for (cls, c) in Self.cases.sorted(by: { $0.key < $1.key }) {
            Naming.reset()
            let swift = try c.make()
            XCTAssertEqual(swift.kerasClassName, cls)
            let serialized: JSON = ["class_name": .string(cls), "config": swift.config]
            let fromConfig = try LayerRegistry.deserialize(try JSON.parse(serialized.serialized()))
            XCTAssertEqual(fromConfig.config.serialized(), swift.config.serialized(), "\(cls): config of the config-built layer")
            let a = try model(swift, c), b = try model(fromConfig, c)
            // Weights: the same names, shapes and trainable split.
            func describe(_ l: Layer) -> [String] { l.weights.map { "\($0.name) \($0.shape) \($0.trainable)" } }
            XCTAssertEqual(describe(fromConfig), describe(swift), "\(cls): weights")
            XCTAssertEqual(swift.trainableWeights.count + swift.nonTrainableWeights.count, swift.weights.count, "\(cls): trainable split")
            XCTAssertEqual(Set(swift.weights.map(\.path)).count, swift.weights.count, "\(cls): weight paths unique")
            try fromConfig.setWeights(swift.getWeights())
            let xs = try inputs(c, batch: 3, rng: &rng)
            let ya = try a.predict(xs)[0], yb = try b.predict(xs)[0]
            XCTAssertEqual(ya.shape, yb.shape, cls)
            XCTAssertEqual(ya.floats.map(\.bitPattern), yb.floats.map(\.bitPattern), "\(cls): outputs of the Swift-built and config-built layers")
        }
    }

    /// A [batch, time] mask into every layer that takes a single sequence
    /// (rank 3): passed through by the layers that support masking, made by
    /// Masking and Embedding(maskZero), dropped by the rest.
    func testMasksInAndOut() throws {
        var rng = SplitMix64(seed: 23)
        for (cls, c) in Self.cases.sorted(by: { $0.key < $1.key }) where c.inputs.count == 1 && (c.inputs[0].count == 2 || c.intInputs) {
            Naming.reset()
            let layer = try c.make()
            var xs = try inputs(c, batch: 2, rng: &rng)
            let input = Input(shape: c.inputs[0], dtype: c.intInputs ? .i32 : .f32)
            let masked: KerasTensor
            var want: [Float]? = nil
            if c.intInputs {
                masked = input  // Embedding makes its own mask from the zero ids
                xs = [try Tensor([0, 3, 2, 0, 5, 0, 1, 4].map { Int32($0) }, shape: [2, 4])]
                want = [0, 1, 1, 0, 1, 0, 1, 1]
            } else if cls == "Masking" {
                masked = input
                var v = xs[0].floats
                for k in 4..<8 { v[k] = 0.5 }  // sample 0, step 1: all features at the mask value
                xs = [try Tensor(v, shape: xs[0].shape)]
                want = [1, 0, 1, 1, 1, 1]
            } else {
                masked = try Masking(maskValue: 0)(input)
                var v = xs[0].floats
                let width = c.inputs[0][1], steps = c.inputs[0][0]
                for k in (steps * width + width)..<(steps * width + 2 * width) { v[k] = 0 }  // sample 1, step 1
                xs = [try Tensor(v, shape: xs[0].shape)]
                if c.mask == .passed { want = (0..<(2 * steps)).map { $0 == steps + 1 ? 0 : 1 } }
            }
            let out = try layer(masked)
            let mask = try layer.outputMask
            if let w = want {
                let m = try XCTUnwrap(mask, "\(cls): no output mask")
                let model = try Model(inputs: [input], outputs: [out, m])
                let got = try model.predict(xs)[1].floats
                XCTAssertEqual(got, w, "\(cls): output mask")
            } else {
                XCTAssertNil(mask, "\(cls): an output mask where Keras gives none")
                _ = try Model(inputs: [input], outputs: [out]).predict(xs)  // a mask in is accepted
            }
        }
    }
}
