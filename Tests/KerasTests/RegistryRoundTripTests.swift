import Foundation
import Keras
import XCTest

/// Every registered layer class survives config -> JSON -> config and
/// config -> YAML -> config unchanged, and a model around it saved in each
/// file format loads back with identical outputs. Samples come from the
/// conformance fixtures (Keras's own configs and inputs); the classes Keras 3
/// has no fixture for get a config written here.
final class RegistryRoundTripTests: XCTestCase {
    struct Sample {
        var serialized: JSON
        var inputs: [Tensor]
    }

    static let root = ConformanceTests.root

    /// Configs for the registered classes without a fixture case.
    static let manual: [String: (JSON, [[Int]])] = [
        "AlphaDropout": (["class_name": "AlphaDropout", "config": ["rate": 0.2]], [[2, 4]]),
        "GlobalAveragePooling3D": (["class_name": "GlobalAveragePooling3D", "config": [:]], [[2, 3, 3, 3, 2]]),
        "GlobalMaxPooling3D": (["class_name": "GlobalMaxPooling3D", "config": ["keepdims": true]], [[2, 3, 3, 3, 2]]),
        "LocallyConnected1D": (["class_name": "LocallyConnected1D", "config": ["filters": 2, "kernel_size": [2]]], [[2, 5, 3]]),
        "LocallyConnected2D": (["class_name": "LocallyConnected2D", "config": ["filters": 2, "kernel_size": [2, 2]]], [[2, 4, 4, 3]]),
        "SpatialDropout1D": (["class_name": "SpatialDropout1D", "config": ["rate": 0.3]], [[2, 4, 3]]),
        "SpatialDropout2D": (["class_name": "SpatialDropout2D", "config": ["rate": 0.3]], [[2, 4, 4, 3]]),
        "SpatialDropout3D": (["class_name": "SpatialDropout3D", "config": ["rate": 0.3]], [[2, 3, 3, 3, 2]]),
        "ThresholdedReLU": (["class_name": "ThresholdedReLU", "config": ["theta": 0.5]], [[2, 4]]),
    ]
    /// Classes covered elsewhere: models by KerasFileTests; Lambda holds a Swift closure no file can carry.
    static let excluded: Set<String> = ["InputLayer", "Sequential", "Functional", "Lambda"]

    func fixtureSamples() throws -> [String: Sample] {
        var out: [String: Sample] = [:]
        for family in try FileManager.default.contentsOfDirectory(atPath: Self.root).sorted() where family != "models" {
            let dir = Self.root + "/" + family
            guard let cases = try? FileManager.default.contentsOfDirectory(atPath: dir) else { continue }
            for c in cases.sorted() {
                guard let bytes = try readBinaryFile("\(dir)/\(c)/case.json") else { continue }
                let json = try JSON.parse(String(decoding: bytes, as: UTF8.self))
                guard let cls = json["layer"]?.stringValue, out[cls] == nil, ["positional", "list"].contains(json["call"]?.stringValue ?? ""),
                      let ser = json["keras_serialized"], let specs = json["inputs"]?.arrayValue else { continue }
                let inputs = try specs.map { spec -> Tensor in
                    let file = spec["file"]?.stringValue ?? "", shape = spec["shape"]?.arrayValue?.compactMap(\.intValue) ?? []
                    let raw = try XCTUnwrap(readBinaryFile("\(dir)/\(c)/\(file)"))
                    var words: [UInt32] = []
                    for p in stride(from: 0, to: raw.count, by: 4) {
                        var w: UInt32 = 0
                        for k in 0..<4 { w |= UInt32(raw[p + k]) << UInt32(8 * k) }
                        words.append(w)
                    }
                    return file.hasSuffix(".i32") ? try Tensor(words.map { Int32(bitPattern: $0) }, shape: shape)
                                                  : try Tensor(words.map { Float(bitPattern: $0) }, shape: shape)
                }
                out[cls] = Sample(serialized: ser, inputs: inputs)
            }
        }
        return out
    }

    func testEveryRegisteredClassRoundTrips() throws {
        let fixtures = try fixtureSamples()
        var rng = SplitMix64(seed: 5)
        var checked: [String] = []
        for cls in LayerRegistry.canonicalClassNames where !Self.excluded.contains(cls) {
            let sample: Sample
            if let s = fixtures[cls] { sample = s } else {
                let (ser, shapes) = try XCTUnwrap(Self.manual[cls], "\(cls): no fixture case and no manual sample")
                sample = Sample(serialized: ser, inputs: try shapes.map { s in try Tensor((0..<s.reduce(1, *)).map { _ in rng.uniform(-1, 1) }, shape: s) })
            }
            try check(cls, sample, fromKeras: fixtures[cls] != nil)
            checked.append(cls)
        }
        XCTAssertGreaterThanOrEqual(checked.count, 65, "classes checked: \(checked.joined(separator: ", "))")
    }

    func check(_ cls: String, _ sample: Sample, fromKeras: Bool = false) throws {
        Naming.reset()
        let layer = try LayerRegistry.deserialize(sample.serialized)
        if fromKeras {
            // The config names what Keras's does: no key Keras 3's from_config would refuse, none missing.
            let ours = Set(layer.config.keys), theirs = Set(sample.serialized["config"]?.keys ?? [])
            XCTAssertEqual(ours.subtracting(theirs).sorted(), [], "\(cls): config keys Keras does not write")
            XCTAssertEqual(theirs.subtracting(ours).sorted(), [], "\(cls): Keras's config keys this config lacks")
        }
        let serialized: JSON = ["class_name": .string(layer.kerasClassName), "config": layer.config]
        // config -> JSON text -> config, and through YAML.
        let viaJSON = try LayerRegistry.deserialize(try JSON.parse(serialized.serialized()))
        XCTAssertEqual(viaJSON.config.serialized(), layer.config.serialized(), "\(cls): JSON round trip")
        let yaml = YAML.emit(serialized)
        let viaYAML = try LayerRegistry.deserialize(try YAML.parse(yaml))
        XCTAssertEqual(viaYAML.config.serialized(), layer.config.serialized(), "\(cls): YAML round trip\n\(yaml)")

        // "trainable": false in a config freezes the layer, and its config says so again.
        var frozenConfig = sample.serialized["config"] ?? [:]
        frozenConfig.set("trainable", false)
        var frozen = sample.serialized
        frozen.set("config", frozenConfig)
        let f = try LayerRegistry.deserialize(frozen)
        XCTAssertFalse(f.trainable, "\(cls): trainable false in its config")
        XCTAssertEqual(f.config["trainable"], false, "\(cls): its config after trainable false")

        // A model around it, saved in each format and loaded back.
        let ins = sample.inputs.map { t in Input(shape: Array(t.shape.dropFirst()), dtype: t.dtype) }
        let outs: [KerasTensor] = try layer(ins.count == 1 ? [ins[0]] : ins)
        let model = try Model(inputs: ins, outputs: [outs[0]], name: "around")
        let want = try model.predict(sample.inputs)[0].floats
        for suffix in [".weights.h5", ".h5", ".keras", ".model.h5", ".npz"] {
            let path = NSTemporaryDirectory() + "keras-registry-\(UUID().uuidString)\(suffix)"
            defer { try? FileManager.default.removeItem(atPath: path) }
            let loaded: Model
            if suffix == ".keras" || suffix == ".model.h5" {
                try model.save(to: path)
                Naming.reset()
                loaded = try loadModel(from: path)
            } else {
                try model.saveWeights(to: path)
                Naming.reset()
                loaded = try modelFromJSON(model.toJSON())
                try loaded.loadWeights(from: path)
            }
            let got = try loaded.predict(sample.inputs)[0].floats
            XCTAssertEqual(got.count, want.count, "\(cls)\(suffix)")
            for (g, w) in zip(got, want) where !(g == w || (g.isNaN && w.isNaN)) {
                XCTFail("\(cls)\(suffix): \(g) != \(w)")
                break
            }
        }
        try harness(cls, layer, model, sample)  // last: it trains the model
    }
}

extension RegistryRoundTripTests {
    /// The layer harness every registered class goes through (in the spirit
    /// of Keras's run_layer_test): the inferred output shape against the
    /// executed one at batch 1 and at the sample's batch, and one training
    /// step of a model around the layer (finite loss; with the layer frozen,
    /// its weights do not move).
    func harness(_ cls: String, _ layer: Layer, _ model: Model, _ sample: Sample) throws {
        let inferred = try layer.computeOutputShape(sample.inputs.map { [nil] + $0.shape.dropFirst().map { Optional($0) } })[0]
        for n in Set([1, sample.inputs[0].shape[0]]).sorted() {
            let xs = try sample.inputs.map { t in try t.rows(0..<n) }
            let y = try model.predict(xs)[0]
            XCTAssertEqual(y.shape.count, inferred.count, "\(cls): rank at batch \(n)")
            for (a, (got, want)) in zip(y.shape, inferred).enumerated() where a > 0 && want != nil {
                XCTAssertEqual(got, want!, "\(cls): output axis \(a) at batch \(n): inferred \(inferred), executed \(y.shape)")
            }
        }
        // Training steps against random targets: finite, and for a layer with
        // trainable weights the loss goes down (the second step's loss is
        // measured after the first step's update); then fit with the layer frozen.
        let out = try model.predict(sample.inputs)[0]
        let zeros = try Tensor([Float](repeating: 0, count: out.shape.reduce(1, *)), shape: out.shape)
        var rng = SplitMix64(seed: UInt64(cls.utf8.count))
        let targets = try Tensor((0..<out.shape.reduce(1, *)).map { _ in rng.uniform(-1, 1) }, shape: out.shape)
        try model.compile(optimizer: SGD(learningRate: 0.001), loss: "mse")
        let first = try model.trainOnBatch(x: sample.inputs, y: [targets])[0]
        let second = try model.trainOnBatch(x: sample.inputs, y: [targets])[0]
        XCTAssertTrue(first.isFinite && second.isFinite, "\(cls): training losses \(first), \(second)")
        XCTAssertTrue(layer.weights.allSatisfy { $0.value.floats.allSatisfy(\.isFinite) }, "\(cls): weights after two steps")
        let random = ["Dropout", "AlphaDropout", "GaussianDropout", "GaussianNoise", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D"]
        if !layer.trainableWeights.isEmpty && !random.contains(cls) && first > 1e-12 {
            XCTAssertLessThan(second, first, "\(cls): the loss after one step")
        }
        layer.trainable = false
        try model.compile(optimizer: SGD(learningRate: 0.5), loss: "mse")
        let before = layer.weights.map(\.value.floats)
        _ = try model.fit(x: sample.inputs, y: [zeros], batchSize: sample.inputs[0].shape[0], epochs: 1, verbose: 0)
        XCTAssertEqual(layer.weights.map(\.value.floats), before, "\(cls): a frozen layer's weights moved in fit")
        layer.trainable = true
    }
}

/// Keras 1 configs' keys read as their Keras 2/3 names: the layer built from
/// the old config has the same config as the one built from the new.
final class Keras1ConfigTests: XCTestCase {
    func same(_ old: JSON, _ new: JSON, file: StaticString = #filePath, line: UInt = #line) throws {
        Naming.reset()
        let a = try LayerRegistry.deserialize(old).config
        Naming.reset()
        let b = try LayerRegistry.deserialize(new).config
        XCTAssertEqual(a.serialized(), b.serialized(), file: file, line: line)
    }

    func testKeras1KeysReadAsTheirNewNames() throws {
        try same(["class_name": "Dense", "config": ["output_dim": 7, "init": "he_normal", "W_regularizer": ["l1": 0, "l2": 0.01, "name": "L1L2Regularizer"],
                                                    "bias": false, "name": "d"]],
                 ["class_name": "Dense", "config": ["units": 7, "kernel_initializer": "he_normal", "kernel_regularizer": ["class_name": "L1L2", "config": ["l1": 0, "l2": 0.01]],
                                                    "use_bias": false, "name": "d"]])
        try same(["class_name": "Convolution2D", "config": ["nb_filter": 8, "nb_row": 3, "nb_col": 5, "border_mode": "same", "subsample": [2, 1],
                                                            "dim_ordering": "th", "name": "c"]],
                 ["class_name": "Conv2D", "config": ["filters": 8, "kernel_size": [3, 5], "padding": "same", "strides": [2, 1],
                                                     "data_format": "channels_first", "name": "c"]])
        try same(["class_name": "Convolution1D", "config": ["nb_filter": 4, "filter_length": 3, "subsample_length": 2, "name": "c1"]],
                 ["class_name": "Conv1D", "config": ["filters": 4, "kernel_size": [3], "strides": [2], "name": "c1"]])
        try same(["class_name": "MaxPooling1D", "config": ["pool_length": 3, "stride": 2, "border_mode": "valid", "name": "p"]],
                 ["class_name": "MaxPooling1D", "config": ["pool_size": [3], "strides": [2], "padding": "valid", "name": "p"]])
        try same(["class_name": "Embedding", "config": ["input_dim": 10, "output_dim": 4, "init": "uniform", "name": "e"]],
                 ["class_name": "Embedding", "config": ["input_dim": 10, "output_dim": 4, "embeddings_initializer": "uniform", "name": "e"]])
    }

    /// The less common layers' Keras 1 keys.
    func testKeras1KeysOfRecurrentNormalizationNoiseAndOtherLayers() throws {
        try same(["class_name": "LSTM", "config": ["output_dim": 5, "init": "he_uniform", "inner_init": "glorot_normal", "forget_bias_init": "one",
                                                   "inner_activation": "hard_sigmoid", "U_regularizer": ["class_name": "L2", "config": ["l2": 0.1]],
                                                   "dropout_W": 0.25, "dropout_U": 0.5, "return_sequences": true, "name": "l"]],
                 ["class_name": "LSTM", "config": ["units": 5, "kernel_initializer": "he_uniform", "recurrent_initializer": "glorot_normal",
                                                   "unit_forget_bias": true, "recurrent_activation": "hard_sigmoid",
                                                   "recurrent_regularizer": ["class_name": "L2", "config": ["l2": 0.1]],
                                                   "dropout": 0.25, "recurrent_dropout": 0.5, "return_sequences": true, "name": "l"]])
        try same(["class_name": "GRU", "config": ["output_dim": 3, "U_constraint": ["class_name": "NonNeg", "config": [:]], "name": "g"]],
                 ["class_name": "GRU", "config": ["units": 3, "recurrent_constraint": ["class_name": "NonNeg", "config": [:]], "name": "g"]])
        try same(["class_name": "SimpleRNN", "config": ["output_dim": 2, "name": "s"]], ["class_name": "SimpleRNN", "config": ["units": 2, "name": "s"]])
        try same(["class_name": "Dropout", "config": ["p": 0.4, "name": "d"]], ["class_name": "Dropout", "config": ["rate": 0.4, "name": "d"]])
        try same(["class_name": "SpatialDropout2D", "config": ["p": 0.2, "dim_ordering": "tf", "name": "d"]],
                 ["class_name": "SpatialDropout2D", "config": ["rate": 0.2, "data_format": "channels_last", "name": "d"]])
        try same(["class_name": "GaussianDropout", "config": ["p": 0.3, "name": "d"]], ["class_name": "GaussianDropout", "config": ["rate": 0.3, "name": "d"]])
        try same(["class_name": "GaussianNoise", "config": ["sigma": 0.3, "name": "n"]], ["class_name": "GaussianNoise", "config": ["stddev": 0.3, "name": "n"]])
        try same(["class_name": "BatchNormalization", "config": ["beta_init": "ones", "gamma_init": "zeros", "epsilon": 0.01, "name": "b"]],
                 ["class_name": "BatchNormalization", "config": ["beta_initializer": "ones", "gamma_initializer": "zeros", "epsilon": 0.01, "name": "b"]])
        try same(["class_name": "PReLU", "config": ["init": "ones", "name": "p"]], ["class_name": "PReLU", "config": ["alpha_initializer": "ones", "name": "p"]])
        try same(["class_name": "UpSampling1D", "config": ["length": 3, "name": "u"]], ["class_name": "UpSampling1D", "config": ["size": 3, "name": "u"]])
        try same(["class_name": "Convolution3D", "config": ["nb_filter": 2, "kernel_dim1": 1, "kernel_dim2": 2, "kernel_dim3": 3, "subsample": [1, 1, 2],
                                                            "border_mode": "same", "name": "c3"]],
                 ["class_name": "Conv3D", "config": ["filters": 2, "kernel_size": [1, 2, 3], "strides": [1, 1, 2], "padding": "same", "name": "c3"]])
        try same(["class_name": "Convolution2D", "config": ["nb_filter": 2, "nb_row": 3, "nb_col": 3, "atrous_rate": [2, 2], "name": "a"]],
                 ["class_name": "Conv2D", "config": ["filters": 2, "kernel_size": [3, 3], "dilation_rate": [2, 2], "name": "a"]])
    }
}

/// The other objects configs hold: each kind's serialized form, written as
/// JSON text and read back, gives the same serialized form.
final class ConfigObjectRoundTripTests: XCTestCase {
    func roundTrip(_ j: JSON) throws -> JSON { try JSON.parse(j.serialized()) }

    func testInitializersRegularizersConstraintsOptimizersLosses() throws {
        let initializers: [Initializer] = [Zeros(), Ones(), Constant(value: 0.5), RandomUniform(minval: -1, maxval: 2, seed: 3),
                                           RandomNormal(mean: 1, stddev: 0.5, seed: 4), TruncatedNormal(mean: 0, stddev: 2, seed: 5),
                                           GlorotUniform(seed: 1), GlorotNormal(), HeUniform(), HeNormal(), LecunUniform(), LecunNormal(),
                                           Orthogonal(gain: 2, seed: 6), Identity(gain: 3),
                                           try VarianceScaling(scale: 2, mode: "fan_out", distribution: "uniform", seed: 7)]
        for i in initializers {
            let s = Initializers.serialize(i)
            XCTAssertEqual(Initializers.serialize(try Initializers.get(try roundTrip(s))).serialized(), s.serialized(), "\(s.serialized())")
        }
        let regularizers: [Regularizer] = [L1(l1: 0.1), L2(l2: 0.2), L1L2(l1: 0.3, l2: 0.4)]
        for r in regularizers {
            XCTAssertEqual(try Regularizers.get(try roundTrip(r.serialized))?.serialized.serialized(), r.serialized.serialized())
        }
        let constraints: [Constraint] = [MaxNorm(maxValue: 3, axis: [0]), NonNeg(), UnitNorm(axis: [1]), MinMaxNorm(minValue: 0.5, maxValue: 2, rate: 0.9, axis: [0])]
        for c in constraints {
            XCTAssertEqual(try Constraints.get(try roundTrip(c.serialized))?.serialized.serialized(), c.serialized.serialized())
        }
        let optimizers: [Optimizer] = [SGD(learningRate: 0.1, momentum: 0.9, nesterov: true), RMSprop(learningRate: 0.01, rho: 0.8, centered: true),
                                       Adagrad(learningRate: 0.2), Adadelta(learningRate: 0.3, rho: 0.9), Adam(learningRate: 0.004, beta1: 0.8, amsgrad: true),
                                       Adamax(learningRate: 0.005), Nadam(learningRate: 0.006)]
        for o in optimizers {
            let s: JSON = ["class_name": .string(type(of: o).kerasClassName), "config": o.config]
            let back = try Optimizers.get(try roundTrip(s))
            XCTAssertEqual(back.config.serialized(), o.config.serialized(), type(of: o).kerasClassName)
        }
        // Losses and metrics through a model's compile config.
        Naming.reset()
        let m = try Sequential([Dense(2, inputShape: [3])], name: "c")
        for loss in ["mse", "mae", "binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy", "hinge", "huber", "poisson"] {
            try m.compile(optimizer: "sgd", loss: loss, metrics: ["accuracy", "mae"])
            let back = try modelFromJSON(m.toJSON())
            XCTAssertEqual(back.toJSON(), m.toJSON(), loss)
        }
        try m.compile(optimizer: "adam", loss: try Loss.get("binary_crossentropy", fromLogits: true))
        let back = try modelFromJSON(m.toJSON())
        XCTAssertEqual(back.toJSON(), m.toJSON(), "a loss with from_logits keeps it")
    }
}
