import Keras
import XCTest

/// The HDF5 reader on the files Keras 3 wrote for the model fixtures.
final class HDF5ReaderTests: XCTestCase {
    static let models = ConformanceTests.root + "/models"

    func open(_ model: String, _ file: String) throws -> HDF5File {
        let path = "\(Self.models)/\(model)/\(file)"
        return try HDF5File(bytes: try XCTUnwrap(readBinaryFile(path)), name: path)
    }

    func initialWeight(_ model: String, _ i: Int) throws -> [Float] {
        let bytes = try XCTUnwrap(readBinaryFile("\(Self.models)/\(model)/initial_weights/w\(i).f32"))
        return stride(from: 0, to: bytes.count, by: 4).map { p in
            Float(bitPattern: UInt32(bytes[p]) | UInt32(bytes[p + 1]) << 8 | UInt32(bytes[p + 2]) << 16 | UInt32(bytes[p + 3]) << 24)
        }
    }

    func testKeras3WeightsLayout() throws {
        let f = try open("embedding_lstm_sgd_mse", "model.weights.h5")
        XCTAssertEqual(try f.object(at: "layers").childNames(), ["dense", "embedding", "input_layer", "lstm"])
        let cell = try f.object(at: "layers/lstm/cell/vars")
        XCTAssertEqual(try cell.stringAttribute("name"), ["lstm_cell"])
        XCTAssertEqual(try cell.childNames(), ["0", "1", "2"])
        let kernel = try f.object(at: "layers/lstm/cell/vars/0").floats()
        XCTAssertEqual(kernel.shape, [4, 12])
        XCTAssertEqual(kernel.values, try initialWeight("embedding_lstm_sgd_mse", 1), "the LSTM kernel is get_weights()[1]")
        XCTAssertEqual(try f.object(at: "layers/embedding/vars/0").floats().values, try initialWeight("embedding_lstm_sgd_mse", 0))
        XCTAssertEqual(try f.object(at: "layers/lstm/vars").childNames(), [], "the layer's own vars group is empty")
    }

    func testLegacyLayoutAndScalars() throws {
        let f = try open("embedding_lstm_sgd_mse", "model.legacy.h5")
        let root = try f.root()
        XCTAssertEqual(try root.stringAttribute("layer_names"), ["tokens", "embedding", "lstm", "dense"])
        XCTAssertEqual(try root.stringAttribute("keras_version"), ["3.15.1"])
        XCTAssertEqual(try f.object(at: "tokens").stringAttribute("weight_names"), [], "an empty float64 array means no weights")
        XCTAssertEqual(try f.object(at: "lstm").stringAttribute("weight_names"),
                       ["lstm/lstm_cell/kernel", "lstm/lstm_cell/recurrent_kernel", "lstm/lstm_cell/bias"])
        XCTAssertEqual(try f.object(at: "lstm/lstm/lstm_cell/bias").floats().values, try initialWeight("embedding_lstm_sgd_mse", 3))
    }

    func testEveryModelFileReads() throws {
        for model in ["mlp_sgd_cce", "cnn_bn_adam_bce", "embedding_lstm_sgd_mse"] {
            for file in ["model.weights.h5", "model.legacy.h5"] {
                let f = try open(model, file)
                var datasets = 0
                func walk(_ o: HDF5Object, depth: Int) throws {
                    XCTAssertLessThan(depth, 10)
                    if o.isDataset { _ = try o.read(); datasets += 1; return }
                    _ = try o.attributes()
                    for name in try o.childNames() { try walk(try o.child(name), depth: depth + 1) }
                }
                try walk(try f.root(), depth: 0)
                XCTAssertGreaterThan(datasets, 0, "\(model)/\(file)")
            }
        }
    }

    /// What h5py writes with track_order or libver="latest": version-2 object
    /// headers, link messages, superblock v3.
    func testNewStyleFiles() throws {
        for name in ["h5py_track_order.h5", "h5py_libver_latest.h5"] {
            let path = ConformanceTests.root + "/../keras-files/" + name
            let f = try HDF5File(bytes: try XCTUnwrap(readBinaryFile(path)), name: path)
            XCTAssertEqual(try f.root().childNames(), ["layers"], name)
            let x = try f.object(at: "layers/x").floats()
            XCTAssertEqual(x.shape, [2, 3], name)
            XCTAssertEqual(x.values, [0, 1, 2, 3, 4, 5], name)
            if name.contains("track") { XCTAssertEqual(try f.object(at: "layers").stringAttribute("name"), ["hello"]) }
        }
    }

    /// Storage Keras never writes is an error naming the feature and the object.
    func testChunkedAndCompressedDataAreNamedErrors() throws {
        let path = ConformanceTests.root + "/../keras-files/h5py_chunked_gzip.h5"
        let f = try HDF5File(bytes: try XCTUnwrap(readBinaryFile(path)), name: path)
        XCTAssertThrowsError(try f.object(at: "chunked").read()) { e in XCTAssertTrue("\(e)".contains("/chunked: chunked datasets are not supported"), "\(e)") }
        XCTAssertThrowsError(try f.object(at: "gzip").read()) { e in XCTAssertTrue("\(e)".contains("/gzip: filtered (compressed) datasets are not supported"), "\(e)") }
    }
}
