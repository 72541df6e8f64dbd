import Foundation
import Keras
import XCTest

/// Keras files written here: weights in both HDF5 layouts reload into a fresh
/// model with identical predictions, and the files keep the invariants h5py
/// relies on. With KERAS_EXPORT_DIR set, the files are also left there for
/// docs/check_keras_files.py to open with Keras itself.
final class KerasFileTests: XCTestCase {
    static let models = ConformanceTests.root + "/models"
    static let cases = ["mlp_sgd_cce", "cnn_bn_adam_bce", "embedding_lstm_sgd_mse"]

    func tempPath(_ suffix: String) -> String { NSTemporaryDirectory() + "keras-\(UUID().uuidString)\(suffix)" }

    func fixtureModel(_ name: String) throws -> Model {
        Naming.reset()
        let text = String(decoding: try XCTUnwrap(readBinaryFile("\(Self.models)/\(name)/model.json")), as: UTF8.self)
        let m = try modelFromJSON(text)
        try m.loadWeights(from: "\(Self.models)/\(name)/model.weights.h5")
        return m
    }

    func predictInput(_ name: String) throws -> Tensor {
        let dir = "\(Self.models)/\(name)"
        let json = try JSON.parse(String(decoding: try XCTUnwrap(readBinaryFile(dir + "/case.json")), as: UTF8.self))
        let spec = try XCTUnwrap(json["predict"]?["inputs"]?.arrayValue?.first)
        let file = try XCTUnwrap(spec["file"]?.stringValue), shape = try XCTUnwrap(spec["shape"]?.arrayValue).compactMap(\.intValue)
        let bytes = try XCTUnwrap(readBinaryFile(dir + "/" + file))
        var words: [UInt32] = []
        for p in stride(from: 0, to: bytes.count, by: 4) {
            var w: UInt32 = 0
            for k in 0..<4 { w |= UInt32(bytes[p + k]) << UInt32(8 * k) }
            words.append(w)
        }
        return file.hasSuffix(".i32") ? try Tensor(words.map { Int32(bitPattern: $0) }, shape: shape) : try Tensor(words.map { Float(bitPattern: $0) }, shape: shape)
    }

    func testWeightsRoundTripInBothLayouts() throws {
        let export = ProcessInfo.processInfo.environment["KERAS_EXPORT_DIR"]
        for name in Self.cases {
            let m = try fixtureModel(name)
            let x = try predictInput(name)
            let want = try m.predict(x).floats
            for suffix in [".weights.h5", ".h5"] {
                let path = export.map { "\($0)/\(name)\(suffix)" } ?? tempPath(suffix)
                try m.saveWeights(to: path)
                defer { if export == nil { try? FileManager.default.removeItem(atPath: path) } }
                let fresh = try modelFromJSON(String(decoding: try XCTUnwrap(readBinaryFile("\(Self.models)/\(name)/model.json")), as: UTF8.self))
                XCTAssertNotEqual(try fresh.predict(x).floats, want, "\(name): a fresh model starts elsewhere")
                try fresh.loadWeights(from: path)
                XCTAssertEqual(try fresh.predict(x).floats, want, "\(name)\(suffix)")
                try checkStructure(path)
            }
        }
    }

    /// Whole models: `.keras` and `.h5` from a compiled model after one step
    /// come back with the same predictions, compile arguments and (for
    /// `.keras`) optimizer state, so the next step is the same too.
    func testWholeModelRoundTrip() throws {
        let export = ProcessInfo.processInfo.environment["KERAS_EXPORT_DIR"]
        for name in Self.cases {
            let x = try predictInput(name)
            for suffix in [".keras", ".model.h5"] {
                let m = try fixtureModel(name)
                let out = try m.predict(x)
                let y = try Tensor(zeros: .f32(out.shape))
                try m.compile(optimizer: Adam(learningRate: 0.01), loss: "mse", metrics: ["mae"])
                _ = try m.trainOnBatch(x, y)
                let path = export.map { "\($0)/\(name)\(suffix)" } ?? tempPath(suffix)
                try m.save(to: path)
                defer { if export == nil { try? FileManager.default.removeItem(atPath: path) } }
                if let dir = export {
                    // What Keras should predict from the saved model (docs/check_keras_files.py).
                    try writeFileAtomically("\(dir)/\(name)\(suffix).predict.f32", try m.predict(x).floats.flatMap { f in
                        (0..<4).map { UInt8(truncatingIfNeeded: f.bitPattern >> (8 * $0)) }
                    })
                }
                Naming.reset()
                let r = try loadModel(from: path)
                XCTAssertEqual(try r.predict(x).floats, try m.predict(x).floats, "\(name)\(suffix): predictions")
                XCTAssertTrue(r.isCompiled, "\(name)\(suffix): compiled from its compile config")
                XCTAssertEqual(r.optimizer?.currentLearningRate, 0.01)
                if suffix == ".keras" {
                    XCTAssertEqual(r.optimizer?.iterations, 1, "\(name): the step count")
                    let a = try m.trainOnBatch(x, y), b = try r.trainOnBatch(x, y)
                    XCTAssertEqual(a, b, "\(name): the next step after loading is the next step")
                    XCTAssertEqual(r.getWeights().map(\.floats), m.getWeights().map(\.floats), "\(name): weights after the next step")
                }
                XCTAssertEqual(try modelFromJSON(m.toJSON()).toJSON(), m.toJSON(), "\(name): JSON round trip")
            }
        }
    }

    /// The invariants h5py relies on: signature, superblock end-of-file
    /// address equal to the file size, every object reachable and readable,
    /// B-tree and heap blocks carrying their signatures (the reader checks
    /// each as it follows it).
    func checkStructure(_ path: String) throws {
        let bytes = try XCTUnwrap(readBinaryFile(path))
        XCTAssertEqual(Array(bytes[0..<8]), [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a], path)
        XCTAssertEqual(bytes[8], 0, "superblock version 0")
        let eof = (0..<8).reduce(0) { $0 | Int(bytes[40 + $1]) << (8 * $1) }
        XCTAssertEqual(eof, bytes.count, "end-of-file address")
        let f = try HDF5File(bytes: bytes, name: path)
        XCTAssertEqual(try f.structuralProblems(), [], path)
        func walk(_ o: HDF5Object) throws {
            _ = try o.attributes()
            if o.isDataset { _ = try o.read(); return }
            for n in try o.childNames() { try walk(try o.child(n)) }
        }
        try walk(try f.root())
    }
}

/// Groups larger than one symbol node (8 links) and than one B-tree node
/// (32 symbol nodes): 300 layers, written, checked and read back; h5py's
/// own files pass the same structural checks.
final class LargeGroupTests: XCTestCase {
    func testThreeHundredLayers() throws {
        Naming.reset()
        var layers: [Layer] = [Dense(2, inputShape: [2])]
        for _ in 0..<299 { layers.append(Dense(2)) }
        let m = try Sequential(layers, name: "deep")
        let export = ProcessInfo.processInfo.environment["KERAS_EXPORT_DIR"]
        let path = export.map { $0 + "/deep.weights.h5" } ?? NSTemporaryDirectory() + "keras-\(UUID().uuidString).weights.h5"
        defer { if export == nil { try? FileManager.default.removeItem(atPath: path) } }
        try m.saveWeights(to: path)
        let f = try HDF5File(bytes: try XCTUnwrap(readBinaryFile(path)), name: path)
        XCTAssertEqual(try f.structuralProblems(), [])
        XCTAssertEqual(try f.object(at: "layers").childNames().count, 300)
        let before = m.getWeights().map(\.floats)
        for w in m.weights { try w.assign(try Tensor(zeros: w.type)) }
        try m.loadWeights(from: path)
        XCTAssertEqual(m.getWeights().map(\.floats), before)
    }

    func testH5pyFilesPassTheStructuralChecks() throws {
        for model in ["mlp_sgd_cce", "cnn_bn_adam_bce", "embedding_lstm_sgd_mse"] {
            for file in ["model.weights.h5", "model.legacy.h5"] {
                let path = "\(ConformanceTests.root)/models/\(model)/\(file)"
                let f = try HDF5File(bytes: try XCTUnwrap(readBinaryFile(path)), name: path)
                XCTAssertEqual(try f.structuralProblems(), [], path)
            }
        }
    }
}

/// Legacy .h5 loading by name and with shape mismatches skipped.
final class LegacyWeightsLoadingTests: XCTestCase {
    func testByNameAndSkipMismatch() throws {
        let path = NSTemporaryDirectory() + "keras-\(UUID().uuidString).h5"
        defer { try? FileManager.default.removeItem(atPath: path) }
        Naming.reset()
        let source = try Sequential([Dense(3, inputShape: [4], name: "a"), Dense(2, name: "b"), Dense(1, name: "c")], name: "s")
        try source.saveWeights(to: path)
        // By name: only the layers whose names match load; the others keep their weights.
        let target = try Sequential([Dense(3, inputShape: [4], name: "a"), Dense(2, name: "x"), Dense(2, name: "b2")], name: "t")
        let kept = target.layers[1].getWeights().map(\.floats)
        try target.loadWeights(from: path, byName: true)
        XCTAssertEqual(target.layers[0].getWeights().map(\.floats), source.layers[0].getWeights().map(\.floats))
        XCTAssertEqual(target.layers[1].getWeights().map(\.floats), kept)
        // By order, the shapes of the third layer differ: an error listing it, and nothing loaded...
        let before = target.getWeights().map(\.floats)
        XCTAssertThrowsError(try target.loadWeights(from: path)) { e in
            XCTAssertTrue("\(e)".contains("c/c/kernel has shape (2, 1), b2/kernel is (2, 2)"), "\(e)")
        }
        XCTAssertEqual(target.getWeights().map(\.floats), before)
        // ...unless mismatches are skipped: the first two load, the third keeps its weights.
        try target.loadWeights(from: path, skipMismatch: true)
        XCTAssertEqual(target.layers[1].getWeights().map(\.floats), source.layers[1].getWeights().map(\.floats))
        XCTAssertEqual(target.layers[2].getWeights().map(\.floats), Array(before[4...]))
        // by_name is a legacy-format option, as in Keras.
        let k3 = NSTemporaryDirectory() + "keras-\(UUID().uuidString).weights.h5"
        defer { try? FileManager.default.removeItem(atPath: k3) }
        try source.saveWeights(to: k3)
        XCTAssertThrowsError(try source.loadWeights(from: k3, byName: true)) { e in XCTAssertTrue("\(e)".contains("by_name"), "\(e)") }
    }
}

/// Other tools' variants of the same files.
final class KerasFileVariantTests: XCTestCase {
    /// A .keras archive re-zipped with DEFLATE (as other zip tools write it) loads the same.
    func testDeflatedArchive() throws {
        let path = ConformanceTests.root + "/../keras-files/mlp_deflated.keras"
        let bytes = try XCTUnwrap(readBinaryFile(path))
        XCTAssertEqual(bytes[8], 8, "the first entry is DEFLATED")
        Naming.reset()
        let a = try loadModel(from: path)
        Naming.reset()
        let b = try loadModel(from: ConformanceTests.root + "/models/mlp_sgd_cce/model.keras")
        XCTAssertEqual(a.getWeights().map(\.floats), b.getWeights().map(\.floats))
    }

    /// Predicting with an uncompiled model leaves it uncompiled: no compile
    /// config and no optimizer in its files, and training still asks for compile().
    func testPredictDoesNotCompile() throws {
        Naming.reset()
        let m = try Sequential([Dense(2, inputShape: [3])], name: "p")
        _ = try m.predict(try Tensor(zeros: .f32([1, 3])))
        XCTAssertFalse(m.isCompiled)
        XCTAssertNil(m.optimizer)
        XCTAssertThrowsError(try m.trainOnBatch(try Tensor(zeros: .f32([1, 3])), try Tensor(zeros: .f32([1, 2])))) { e in
            XCTAssertTrue("\(e)".contains("compile()"), "\(e)")
        }
        XCTAssertEqual(m.kerasSerialized["compile_config"]?.serialized(), "{}")
        let path = NSTemporaryDirectory() + "keras-\(UUID().uuidString).keras"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try m.save(to: path)
        let h5 = try XCTUnwrap(ZipArchive.read(try XCTUnwrap(readBinaryFile(path)), name: path, kind: "keras").first { $0.0 == "model.weights.h5" }?.1)
        XCTAssertNil(try HDF5File(bytes: h5, name: path).objectIfPresent(at: "optimizer"))
        XCTAssertFalse(try loadModel(from: path).isCompiled)
    }

    /// Keras <= 2.1 wrote a Sequential's config as the bare list of its layers.
    func testKeras21SequentialConfig() throws {
        Naming.reset()
        let m = try modelFromJSON(#"{"class_name": "Sequential", "config": [{"class_name": "Dense", "config": {"name": "d", "units": 3, "batch_input_shape": [null, 2]}}, {"class_name": "Dense", "config": {"name": "e", "units": 1}}]}"#)
        XCTAssertEqual(m.layers.map(\.name), ["d", "e"])
        XCTAssertEqual(try m.predict(try Tensor([1, 2], shape: [1, 2])).shape, [1, 1])
    }

    /// ModelCheckpoint saves the whole model each epoch when asked.
    func testCheckpointSavesWholeModels() throws {
        Naming.reset()
        let m = try Sequential([Dense(2, inputShape: [3])], name: "ck")
        try m.compile(optimizer: Adam(learningRate: 0.01), loss: "mse")
        let dir = NSTemporaryDirectory() + "keras-ck-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let x = try Tensor((0..<12).map { Float($0) / 12 }, shape: [4, 3]), y = try Tensor(zeros: .f32([4, 2]))
        _ = try m.fit(x, y, epochs: 2, verbose: 0, callbacks: [try ModelCheckpoint(dir + "/m-{epoch:02d}.keras", monitor: "loss", saveWeightsOnly: false)])
        let r = try loadModel(from: dir + "/m-02.keras")
        XCTAssertEqual(r.getWeights().map(\.floats), m.getWeights().map(\.floats))
        XCTAssertEqual(r.optimizer?.iterations, 2)
        XCTAssertThrowsError(try ModelCheckpoint(dir + "/m.npz", saveWeightsOnly: false)) { e in XCTAssertTrue("\(e)".contains(".keras or .h5"), "\(e)") }
    }
}

/// A model with every kind of nesting Keras's files have: two inputs, a
/// shared layer, a nested Sequential, Bidirectional(LSTM) (forward_layer and
/// backward_layer cells), TimeDistributed, GRU, BatchNormalization, two
/// outputs. Saved and loaded here in every format; with KERAS_EXPORT_DIR set
/// the .keras file and the expected predictions are left for
/// docs/check_keras_files.py, which loads them with Keras.
final class NestedModelFileTests: XCTestCase {
    func testNestedModelInEveryFormat() throws {
        Naming.reset()
        RandomSeed.set(9)
        let seq = Input(shape: [5, 3], name: "seq"), side = Input(shape: [4], name: "side")
        let bi = try Bidirectional(LSTM(4, returnSequences: true))(seq)
        let td = try TimeDistributed(Dense(3))(bi)
        let g = try GRU(4)(td)
        let shared = Dense(2, name: "shared")
        let inner = try Sequential([Dense(4, activation: "relu", inputShape: [4]), BatchNormalization()], name: "inner")
        let s1 = try shared(try inner(side)), s2 = try shared(g)
        let merged = try Concatenate()([s1, s2])
        let out1 = try Dense(1, name: "out1")(merged), out2 = try Dense(3, activation: "softmax", name: "out2")(s2)
        let model = try Model(inputs: [seq, side], outputs: [out1, out2], name: "zoo")
        try model.compile(optimizer: Adam(learningRate: 0.01), loss: ["mse", "categorical_crossentropy"])
        var rng = SplitMix64(seed: 3)
        let xs = [try Tensor((0..<(6 * 15)).map { _ in rng.uniform(-1, 1) }, shape: [6, 5, 3]), try Tensor((0..<24).map { _ in rng.uniform(-1, 1) }, shape: [6, 4])]
        let ys = [try Tensor(zeros: .f32([6, 1])), try Tensor([Float](repeating: 1.0 / 3, count: 18), shape: [6, 3])]
        _ = try model.trainOnBatch(x: xs, y: ys)
        let want = try model.predict(xs).map(\.floats)
        let export = ProcessInfo.processInfo.environment["KERAS_EXPORT_DIR"]
        for suffix in [".keras", ".model.h5", ".weights.h5", ".h5"] {
            let path = export.map { "\($0)/zoo\(suffix)" } ?? NSTemporaryDirectory() + "keras-\(UUID().uuidString)\(suffix)"
            defer { if export == nil { try? FileManager.default.removeItem(atPath: path) } }
            let loaded: Model
            Naming.reset()
            if suffix == ".keras" || suffix == ".model.h5" {
                try model.save(to: path)
                loaded = try loadModel(from: path)
            } else {
                try model.saveWeights(to: path)
                loaded = try modelFromJSON(model.toJSON())
                try loaded.loadWeights(from: path)
            }
            XCTAssertEqual(try loaded.predict(xs).map(\.floats), want, "zoo\(suffix)")
            let fileBytes = try XCTUnwrap(readBinaryFile(path))
            let h5 = suffix == ".keras" ? try ZipArchive.read(fileBytes, name: path, kind: "keras").first { $0.0 == "model.weights.h5" }?.1 : fileBytes
            XCTAssertEqual(try HDF5File(bytes: try XCTUnwrap(h5), name: path).structuralProblems(), [], "zoo\(suffix)")
        }
        if let dir = export {
            for (k, x) in xs.enumerated() { try writeFileAtomically("\(dir)/zoo.input\(k).f32", x.floats.flatMap { f in (0..<4).map { UInt8(truncatingIfNeeded: f.bitPattern >> (8 * $0)) } }) }
            for (k, w) in want.enumerated() { try writeFileAtomically("\(dir)/zoo.output\(k).f32", w.flatMap { f in (0..<4).map { UInt8(truncatingIfNeeded: f.bitPattern >> (8 * $0)) } }) }
            try writeFileAtomically("\(dir)/zoo.json", model.toJSON())
        }
        // The keys Keras gives the nested groups.
        let keysPath = NSTemporaryDirectory() + "keras-\(UUID().uuidString).keras"
        defer { try? FileManager.default.removeItem(atPath: keysPath) }
        try model.save(to: keysPath)
        let entries = try ZipArchive.read(try XCTUnwrap(readBinaryFile(keysPath)), name: keysPath, kind: "keras")
        let f = try HDF5File(bytes: try XCTUnwrap(entries.first { $0.0 == "model.weights.h5" }?.1), name: keysPath)
        for path in ["layers/bidirectional/forward_layer/cell/vars/0", "layers/bidirectional/backward_layer/cell/vars/2",
                     "layers/time_distributed/layer/vars/1", "layers/gru/cell/vars/2", "layers/sequential/layers/batch_normalization/vars/3",
                     "optimizer/vars/0"] {
            XCTAssertTrue(try f.objectIfPresent(at: path)?.isDataset ?? false, path)
        }
    }
}

/// Keras 2's functional layout: inbound nodes as nested lists of
/// [layer name, node index, tensor index, kwargs], input_layers as lists.
final class Keras2JSONTests: XCTestCase {
    func testKeras2FunctionalConfig() throws {
        let text = #"""
        {"class_name": "Model", "keras_version": "2.2.4", "backend": "tensorflow", "config": {"name": "model_1",
         "layers": [
          {"name": "input_1", "class_name": "InputLayer", "config": {"batch_input_shape": [null, 3], "dtype": "float32", "sparse": false, "name": "input_1"}, "inbound_nodes": []},
          {"name": "input_2", "class_name": "InputLayer", "config": {"batch_input_shape": [null, 3], "dtype": "float32", "sparse": false, "name": "input_2"}, "inbound_nodes": []},
          {"name": "dense_1", "class_name": "Dense", "config": {"name": "dense_1", "trainable": true, "units": 2, "activation": "relu", "use_bias": true,
            "kernel_initializer": {"class_name": "VarianceScaling", "config": {"scale": 1.0, "mode": "fan_avg", "distribution": "uniform", "seed": null}},
            "bias_initializer": {"class_name": "Zeros", "config": {}}, "kernel_regularizer": null, "bias_regularizer": null,
            "activity_regularizer": null, "kernel_constraint": null, "bias_constraint": null},
           "inbound_nodes": [[["input_1", 0, 0, {}]], [["input_2", 0, 0, {}]]]},
          {"name": "add_1", "class_name": "Add", "config": {"name": "add_1", "trainable": true},
           "inbound_nodes": [[["dense_1", 0, 0, {}], ["dense_1", 1, 0, {}]]]}
         ],
         "input_layers": [["input_1", 0, 0], ["input_2", 0, 0]], "output_layers": [["add_1", 0, 0]]}}
        """#
        Naming.reset()
        let m = try modelFromJSON(text)
        XCTAssertEqual(m.layers.map(\.name), ["input_1", "input_2", "dense_1", "add_1"])
        let a = try Tensor([1, 2, 3], shape: [1, 3]), b = try Tensor([-1, 0, 2], shape: [1, 3])
        let dense = m.layers[2]
        let i = Input(shape: [3])
        let alone = try Model(inputs: i, outputs: try dense(i))
        let want = try alone.predict(a).floats, want2 = try alone.predict(b).floats
        XCTAssertEqual(try m.predict([a, b])[0].floats, zip(want, want2).map(+), "the shared layer's two calls, added")
    }
}
