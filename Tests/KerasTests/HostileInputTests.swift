import Foundation
import Keras
import KerasConformance
import XCTest

/// Inputs a hostile or careless user gives the library (issue 9): each is a
/// thrown error naming the thing and the numbers, never a trap, an abort in
/// malloc or a silent wrong answer; state is unchanged where state exists.
/// Every input is made here, small; sizes that would need gigabytes are
/// declared, never allocated.
final class HostileInputTests: XCTestCase {
    override func setUp() { Naming.reset(); RandomSeed.set(5) }

    func message(_ body: () throws -> Void) -> String {
        do { try body() } catch { return "\(error)" }
        return "no error"
    }

    func assertMessage(_ body: () throws -> Void, contains parts: [String], file: StaticString = #filePath, line: UInt = #line) {
        let m = message(body)
        XCTAssertNotEqual(m, "no error", "expected an error mentioning \(parts)", file: file, line: line)
        for p in parts { XCTAssertTrue(m.contains(p), "'\(m)' does not mention '\(p)'", file: file, line: line) }
    }

    // MARK: NumPy headers and archives (items 2, 3)

    /// A .npy of one float32 [2, 2] array whose header text is replaced.
    func npy(header: String, dataBytes: Int = 16) -> [UInt8] {
        var h = header
        h += String(repeating: " ", count: (64 - (10 + h.utf8.count + 1) % 64) % 64) + "\n"
        let n = h.utf8.count
        return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(n & 0xff), UInt8(n >> 8)] + Array(h.utf8) + [UInt8](repeating: 0, count: dataBytes)
    }

    func testNumPyHeaderWithReversedParenthesesIsAnError() throws {
        let bad = npy(header: "{'descr': '<f4', 'fortran_order': False, 'shape': )50, 64(, }")
        assertMessage({ _ = try NumPy.decode(bad, name: "reversed.npy") }, contains: ["reversed.npy", "not a valid .npy", "shape"])
        // Inside an archive, and as a weights file given to loadWeights.
        let honest = zipArchive(entry: "dense/kernel.npy", data: NumPy.encode(try Tensor([1, 2, 3, 4], shape: [2, 2])))
        XCTAssertEqual(try NumPy.decodeArchive(honest)[0].1.floats, [1, 2, 3, 4], "the same archive with a good header reads")
        let archive = zipArchive(entry: "dense/kernel.npy", data: bad)
        assertMessage({ _ = try NumPy.decodeArchive(archive, name: "w.npz") }, contains: ["w.npz", "shape"])
        let path = NSTemporaryDirectory() + "hostile-\(UUID().uuidString).npz"
        try Data(archive).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let layer = Dense(2)
        _ = try layer.computeOutputShape([nil, 2])
        let before = layer.getWeights()
        assertMessage({ try layer.loadWeights(path) }, contains: [path, "shape"])
        XCTAssertEqual(layer.getWeights(), before, "a failed load changes no weight")
    }

    /// A zip of one entry: `data` stored (method 0), or as a DEFLATE stream of
    /// one stored block (method 8); the sizes written are the real ones unless
    /// `declaredSize` says otherwise, the CRC-32 is that of `data`.
    func zipArchive(entry name: String, data: [UInt8], deflate: Bool = false, declaredSize: UInt32? = nil) -> [UInt8] {
        let n = data.count
        let body: [UInt8] = deflate ? [0x01, UInt8(n & 0xff), UInt8(n >> 8), UInt8(~n & 0xff), UInt8((~n >> 8) & 0xff)] + data : data
        let method = deflate ? 8 : 0, size = declaredSize ?? UInt32(n)
        var out: [UInt8] = [], central: [UInt8] = []
        func u16(_ v: Int, _ a: inout [UInt8]) { a += [UInt8(v & 0xff), UInt8((v >> 8) & 0xff)] }
        func u32(_ v: UInt32, _ a: inout [UInt8]) { a += (0..<4).map { UInt8((v >> (8 * $0)) & 0xff) } }
        let file = Array(name.utf8), crc = NumPy.crc32(data)
        u32(0x04034b50, &out); u16(20, &out); u16(0, &out); u16(method, &out); u16(0, &out); u16(0x21, &out)
        u32(crc, &out); u32(UInt32(body.count), &out); u32(size, &out); u16(file.count, &out); u16(0, &out)
        out += file + body
        u32(0x02014b50, &central); u16(20, &central); u16(20, &central); u16(0, &central); u16(method, &central); u16(0, &central)
        u16(0x21, &central); u32(crc, &central); u32(UInt32(body.count), &central); u32(size, &central)
        u16(file.count, &central); u16(0, &central); u16(0, &central); u16(0, &central); u16(0, &central); u32(0, &central); u32(0, &central)
        central += file
        let cd = out.count
        out += central
        u32(0x06054b50, &out); u16(0, &out); u16(0, &out); u16(1, &out); u16(1, &out)
        u32(UInt32(central.count), &out); u32(UInt32(cd), &out); u16(0, &out)
        return out
    }

    /// An archive of one DEFLATE entry (a stored block of `payload`) declaring `declaredSize`.
    func deflatedArchive(_ payload: [UInt8], declaredSize: UInt32) -> [UInt8] {
        zipArchive(entry: "x.npy", data: payload, deflate: true, declaredSize: declaredSize)
    }

    func testDeflatedEntryDeclaringGigabytesIsRejectedBeforeInflating() throws {
        let payload = NumPy.encode(try Tensor([1, 2, 3, 4], shape: [2, 2]))
        // The honest archive reads.
        XCTAssertEqual(try NumPy.decodeArchive(deflatedArchive(payload, declaredSize: UInt32(payload.count)))[0].1.floats, [1, 2, 3, 4])
        // ~4 GB declared from ~150 compressed bytes: more than DEFLATE can expand to.
        assertMessage({ _ = try NumPy.decodeArchive(self.deflatedArchive(payload, declaredSize: 4_000_000_000), name: "bomb.npz") },
                      contains: ["bomb.npz", "x.npy", "4000000000", "more than DEFLATE can expand to"])
        // Within the ratio but over the memory limit.
        MemoryLimit.withLimit(100) {
            assertMessage({ _ = try NumPy.decodeArchive(self.deflatedArchive(payload, declaredSize: UInt32(payload.count)), name: "big.npz") },
                          contains: ["big.npz", "inflated", "more than the memory limit of 100 bytes"])
        }
    }

    func testNumPyShapeLargerThanItsDataIsRejectedBeforeAllocating() throws {
        let huge = npy(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (1048576, 1048576), }")
        assertMessage({ _ = try NumPy.decode(huge, name: "huge.npy") }, contains: ["huge.npy", "holds 16 data bytes"])
        let overflow = npy(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }")
        assertMessage({ _ = try NumPy.decode(overflow, name: "overflow.npy") }, contains: ["overflow.npy"])
        let complex = npy(header: "{'descr': '<c16', 'fortran_order': False, 'shape': (2,), }")
        assertMessage({ _ = try NumPy.decode(complex, name: "c.npy") }, contains: ["c.npy", "unsupported dtype '<c16'"])
    }

    // MARK: sizes reaching malloc (item 4)

    func testHugeWeightsAreANamedErrorAndNotAnAbort() throws {
        // Dense(Int32.max) on 3 features: 3×2147483647 floats is 24 GiB.
        assertMessage({ _ = try Sequential([Dense(Int(Int32.max), inputShape: [3])]) },
                      contains: ["dense/kernel", "3×2147483647 floats", "more than this machine's"])
        // A config asking for the same.
        assertMessage({ _ = try Sequential([try LayerRegistry.deserialize(try JSON.parse(#"{"class_name": "Dense", "config": {"units": 2147483647, "batch_input_shape": [null, 3]}}"#))]).predict(try Tensor([1, 2, 3], shape: [1, 3])) },
                      contains: ["2147483647", "more than this machine's"])
        // Under a small limit an ordinary layer reports it the same way.
        MemoryLimit.withLimit(1 << 20) {
            assertMessage({ _ = try Dense(1000).computeOutputShape([nil, 1000]) }, contains: ["kernel", "1000×1000 floats is 3.8 MiB", "more than the memory limit of 1 MiB"])
        }
    }

    func testHugeUpSamplingAndReshapeAreErrors() throws {
        let x = Input(shape: [4, 4, 1])
        assertMessage({ _ = try UpSampling2D(size: [1 << 40, 1])(x) }, contains: ["up_sampling2d", "positive sizes"])
        assertMessage({ _ = try UpSampling2D(size: [1 << 20, 1 << 20], interpolation: "bilinear")(x) }, contains: ["up_sampling2d"])
        assertMessage({ _ = try Reshape([1 << 32, 1 << 32])(Input(shape: [16])) }, contains: ["reshape"])
        assertMessage({ _ = try Tensor([Float](), shape: [1 << 32, 1 << 32, 1 << 32]) }, contains: ["tensor", "64-bit"])
        assertMessage({ _ = try Tensor([1, 2, 3, 4], shape: [2, 2]).reshaped([1 << 32, 1 << 32, 1 << 32]) }, contains: ["reshape"])
        assertMessage({ _ = try Tensor(zeros: .f32([1 << 20, 1 << 20, 1 << 10])) }, contains: ["zeros", "more than this machine's"])
    }

    func testToCategoricalWithHugeClassCountIsAnError() throws {
        assertMessage({ _ = try toCategorical([0, 1], numClasses: Int.max / 2) }, contains: ["to_categorical", "more than"])
        assertMessage({ _ = try toCategorical([0, Int.max]) }, contains: ["to_categorical"])
        assertMessage({ _ = try toCategorical([0, -3]) }, contains: ["to_categorical", "label -3"])
    }

    // MARK: conversions and arithmetic (item 5)

    func testBatchSizeIntMaxDoesNotOverflow() throws {
        let model = try Sequential([Dense(2, inputShape: [3])])
        try model.compile(optimizer: "sgd", loss: "mse")
        let x = try Tensor([Float](repeating: 0.5, count: 12), shape: [4, 3]), y = try Tensor([Float](repeating: 1, count: 8), shape: [4, 2])
        _ = try model.fit(x, y, batchSize: Int.max, epochs: 1, verbose: 0)
        XCTAssertEqual(try model.evaluate(x, y, batchSize: Int.max).count, 1)
        XCTAssertEqual(try model.predict(x, batchSize: Int.max).shape, [4, 2])
        _ = try model.evaluateDict(x: [x], y: [y], batchSize: Int.max, verbose: 0)
    }

    func testFloatsThatAreNotInt32sAreErrors() throws {
        assertMessage({ _ = try Tensor([Float.nan], shape: [1]).ints }, contains: ["nan", "index 0", "not an int32"])
        assertMessage({ _ = try Tensor([1, 3e9], shape: [2]).ints }, contains: ["3e+09", "index 1"])
        XCTAssertEqual(try Tensor([1, -2.5, 7], shape: [3]).ints, [1, -2, 7], "whole parts, as NumPy's astype")
        // Embedding ids given as floats.
        let model = try Sequential([Embedding(inputDim: 10, outputDim: 2, inputLength: 2)])
        try model.compile(optimizer: "sgd", loss: "mse")
        let before = model.getWeights()
        // The model's input is float32 (as in Keras); the graph's saturating cast makes
        // 3e9 and NaN ids out of range, which the gather reports before any update.
        for bad: Float in [3e9, .nan] {
            assertMessage({ _ = try model.predict(try Tensor([1, bad], shape: [1, 2])) }, contains: ["embedding", "at position 1", "out of range [0, 10)"])
            assertMessage({ _ = try model.fit(try Tensor([1, bad], shape: [1, 2]), try Tensor([Float](repeating: 0, count: 4), shape: [1, 2, 2]), verbose: 0) },
                          contains: ["embedding", "out of range"])
        }
        XCTAssertEqual(model.getWeights(), before)
        // An int32 input converts the floats first, and names the bad one.
        let ids = Input(shape: [2], dtype: .i32)
        let m2 = try Model(inputs: ids, outputs: try Embedding(inputDim: 10, outputDim: 2)(ids))
        for bad: Float in [3e9, .nan] {
            assertMessage({ _ = try m2.predict(try Tensor([1, bad], shape: [1, 2])) }, contains: ["index 1", "not an int32"])
        }
    }

    func testClassWeightsWithNaNOrHugeLabelsAreErrors() throws {
        let model = try Sequential([Dense(1, inputShape: [2])])
        try model.compile(optimizer: "sgd", loss: "mse")
        let before = model.getWeights()
        let x = try Tensor([1, 2, 3, 4], shape: [2, 2])
        for bad: Float in [.nan, 1e30, -1, 0.5] {
            assertMessage({ _ = try model.fit(x, try Tensor([0, bad], shape: [2, 1]), verbose: 0, classWeight: [0: 1, 1: 2]) },
                          contains: ["class_weight", "row 1"])
        }
        XCTAssertEqual(model.getWeights(), before)
    }

    // MARK: indices and ranges (item 6)

    func testEmitWithNoInputsOrMismatchedMasksIsAnError() throws {
        let b = GraphBuilder(name: "g")
        let ctx = CallContext(builder: b, training: false)
        let d = Dense(2)
        assertMessage({ _ = try d.emit([], masks: [], context: ctx) }, contains: ["dense", "no inputs"])
        let x = try b.input("x", .f32([-1, 3]))
        assertMessage({ _ = try d.emit([x], masks: [], context: ctx) }, contains: ["dense", "1 input(s) and 0 mask(s)"])
        assertMessage({ _ = try d.emit([Value(99)], masks: [nil], context: ctx) }, contains: ["dense", "v99"])
    }

    func testFunctionalConfigWithNegativeTensorIndexIsAnError() throws {
        func config(history: Int, output: Int) -> String {
            #"{"class_name": "Functional", "config": {"name": "f", "layers": ["#
                + #"{"class_name": "InputLayer", "config": {"name": "in", "batch_shape": [null, 3]}, "inbound_nodes": []},"#
                + #"{"class_name": "Dense", "config": {"name": "d", "units": 2}, "inbound_nodes": [{"args": [{"class_name": "__keras_tensor__", "#
                + #""config": {"shape": [null, 3], "dtype": "float32", "keras_history": ["in", 0, \#(history)]}}], "kwargs": {}}]}],"#
                + #""input_layers": [["in", 0, 0]], "output_layers": [["d", 0, \#(output)]]}}"#
        }
        XCTAssertNoThrow(try LayerRegistry.deserialize(try JSON.parse(config(history: 0, output: 0))))
        assertMessage({ _ = try LayerRegistry.deserialize(try JSON.parse(config(history: -1, output: 0))) }, contains: ["cannot resolve the inputs of d"])
        assertMessage({ _ = try LayerRegistry.deserialize(try JSON.parse(config(history: 0, output: -1))) }, contains: ["bad tensor reference", "output_layers"])
    }

    func testCheckpointFileNameFieldsAreBounded() throws {
        let model = try Sequential([Dense(1, inputShape: [2])])
        try model.compile(optimizer: "sgd", loss: "mse")
        let dir = NSTemporaryDirectory() + "hostile-ckpt-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let x = try Tensor([1, 2, 3, 4], shape: [2, 2]), y = try Tensor([1, 0], shape: [2, 1])
        // A huge zero-padded width and precision: a name too long for the file system, reported, not a trap.
        let huge = try ModelCheckpoint(dir + "/w-{epoch:0999999999999d}-{loss:.99999999999f}.npz", monitor: "loss")
        assertMessage({ _ = try model.fit(x, y, epochs: 1, verbose: 0, callbacks: [huge]) }, contains: ["cannot create"])
        // Ordinary fields still work.
        _ = try model.fit(x, y, epochs: 1, verbose: 0, callbacks: [try ModelCheckpoint(dir + "/w-{epoch:03d}.npz", monitor: "loss")])
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/w-001.npz"))
    }

    func testNegativeShuffleCountIsAnError() {
        assertMessage({ _ = try shuffledIndices(-5, seed: 1) }, contains: ["shuffledIndices", "-5"])
    }

    // MARK: CSV (item 7)

    func testCSVFirstRowIsAHeaderOnlyWhenItHasNoNumbers() throws {
        XCTAssertEqual(try Datasets.parseCSV(Array("a,b,label\n1,2,0\n".utf8), name: "h.csv").rows, 1)
        let bom = try Datasets.parseCSV([0xEF, 0xBB, 0xBF] + Array("1,2,0\n3,4,1\n".utf8), name: "bom.csv")
        XCTAssertEqual(bom.rows, 2, "a byte-order mark is dropped, not taken for a header")
        XCTAssertEqual(bom.values, [1, 2, 0, 3, 4, 1])
        assertMessage({ _ = try Datasets.parseCSV(Array("1,,0\n3,4,1\n".utf8), name: "empty.csv") }, contains: ["empty.csv", "line 1, column 2 is empty"])
        assertMessage({ _ = try Datasets.parseCSV([0x31, 0x2C, 0xFF, 0xFE, 0x0A] + Array("3,4\n".utf8), name: "bad.csv") },
                      contains: ["bad.csv", "line 1", "UTF-8"])
        assertMessage({ _ = try Datasets.parseCSV(Array("1,2\n3,nan\n".utf8), name: "nan.csv") }, contains: ["nan.csv", "line 2, column 2", "finite"])
        assertMessage({ _ = try Datasets.parseCSV(Array("1,2\n-inf,1\n".utf8), name: "inf.csv") }, contains: ["line 2, column 1"])
        XCTAssertEqual(try Datasets.parseCSV(Array("1,2\r\n3,4\r\n".utf8), name: "crlf.csv").values, [1, 2, 3, 4])
    }

    func testIDXShapesAreCheckedAgainstTheFile() {
        let header: [UInt8] = [0, 0, 0x0D, 3, 0x7F, 0xFF, 0xFF, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF]
        assertMessage({ _ = try Datasets.parseIDX(header, name: "big.idx") }, contains: ["big.idx"])
    }

    // MARK: error texts stay bounded (item 7)

    func testErrorMessagesDoNotEchoHugeLists() throws {
        let values = [Float](repeating: 1.5, count: 1_000_000)
        let m = message { _ = try Tensor(values, shape: [3]) }
        XCTAssertLessThan(m.count, 2100)
        let b = GraphBuilder(name: "g")
        let m2 = message { _ = try b.emit("reduce_sum", [try b.input("x", .f32([2]))], ["axes": .floats(values)]) }
        XCTAssertTrue(m2.contains("axes"), m2)
        XCTAssertLessThan(m2.count, 600, "the attribute value is abbreviated")
    }
}

/// keras-conformance case files with missing keys, indices out of range and
/// shapes that lie about their files: each a FAIL line naming the case and
/// the key, never a trap of the runner.
final class HostileConformanceCaseTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/conformance").path

    /// A copy of `family/name` under a fresh root, with its case.json changed by `edit`.
    func mutatedCase(_ family: String, _ name: String, _ edit: (inout [String: Any]) -> Void) throws -> (root: String, path: String) {
        let root = NSTemporaryDirectory() + "hostile-conformance-\(UUID().uuidString)"
        let dst = root + "/" + family + "/" + name
        try FileManager.default.createDirectory(atPath: root + "/" + family, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Self.fixtures + "/" + family + "/" + name, toPath: dst)
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dst + "/case.json"))) as! [String: Any]
        edit(&json)
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: dst + "/case.json"))
        return (root, family + "/" + name)
    }

    func assertFails(_ family: String, _ name: String, mentioning parts: [String], file: StaticString = #filePath, line: UInt = #line,
                     _ edit: (inout [String: Any]) -> Void) throws {
        let (root, path) = try mutatedCase(family, name, edit)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let report = try ConformanceRunner(root: root).run()
        XCTAssertEqual(report.failed, 1, report.lines.joined(separator: "\n"), file: file, line: line)
        let text = report.lines.joined(separator: "\n")
        XCTAssertTrue(text.hasPrefix("FAIL \(path)"), text, file: file, line: line)
        for p in parts { XCTAssertTrue(text.contains(p), "'\(text)' does not mention '\(p)'", file: file, line: line) }
    }

    func testTheUnchangedCopyPasses() throws {
        let (root, _) = try mutatedCase("core", "dense_linear") { _ in }
        defer { try? FileManager.default.removeItem(atPath: root) }
        XCTAssertEqual(try ConformanceRunner(root: root).run().passed, 1)
    }

    func testLayerCaseKeys() throws {
        try assertFails("core", "dense_linear", mentioning: ["'inputs'"]) { $0.removeValue(forKey: "inputs") }
        try assertFails("core", "dense_linear", mentioning: ["'inputs'"]) { $0["inputs"] = [Any]() }
        for bad in [5, -1] {
            try assertFails("core", "dense_linear", mentioning: ["input_index \(bad)"]) { j in
                var g = (j["grad_inputs"] as! [[String: Any]]); g[0]["input_index"] = bad; j["grad_inputs"] = g
            }
        }
        try assertFails("core", "dense_linear", mentioning: ["weight_index -1"]) { j in
            var g = (j["grad_weights"] as! [[String: Any]]); g[0]["weight_index"] = -1; j["grad_weights"] = g
        }
    }

    func testTensorDescriptorsThatLie() throws {
        func editInput(_ change: @escaping (inout [String: Any]) -> Void) -> (inout [String: Any]) -> Void {
            return { j in var ins = j["inputs"] as! [[String: Any]]; change(&ins[0]); j["inputs"] = ins }
        }
        try assertFails("core", "dense_linear", mentioning: ["dtype 'complex128'"], editInput { $0["dtype"] = "complex128" })
        try assertFails("core", "dense_linear", mentioning: ["input_0.f32", "the file has 60 bytes", "needs 4398046511104"],
                        editInput { $0["shape"] = [1 << 20, 1 << 20] })
        try assertFails("core", "dense_linear", mentioning: ["input_0.f32", "64-bit"], editInput { $0["shape"] = [1 << 30, 1 << 30, 1 << 30] })
        try assertFails("core", "dense_linear", mentioning: ["bad dimension"], editInput { $0["shape"] = [3, 5e20] })
        try assertFails("core", "dense_linear", mentioning: ["inside the case folder"], editInput { $0["file"] = "../../../../etc/passwd" })
    }

    func testModelCaseTrainingKeys() throws {
        try assertFails("models", "mlp_sgd_cce", mentioning: ["'x' and 'y'"]) { j in
            var t = j["training"] as! [String: Any]; t["x"] = [Any](); j["training"] = t
        }
        try assertFails("models", "mlp_sgd_cce", mentioning: ["batch_size", "-1"]) { j in
            var t = j["training"] as! [String: Any]; t["batch_size"] = -1; j["training"] = t
        }
    }
}

/// Layer arguments a careless user (or a config file) gives: each call ends
/// in a result or a thrown error, never a trap.
final class HostileLayerArgumentTests: XCTestCase {
    override func setUp() { Naming.reset() }

    func testHostileArgumentsThrowOrWork() throws {
        let big = Int.max, i32 = Int(Int32.max)
        let image = { Input(shape: [6, 6, 2]) }, seq = { Input(shape: [5, 3]) }, flat = { Input(shape: [4]) }
        // (case, a fragment its error must contain or nil where it may succeed, the call)
        let cases: [(String, String?, () throws -> Any)] = [
            ("Dense(-1)", "dense: units must be positive", { try Dense(-1)(flat()) }),
            ("Dense(0)", "dense: units must be positive", { try Dense(0)(flat()) }),
            ("Dense(Int.max)", "dense/kernel", { try Dense(big)(flat()) }),
            ("Conv2D kernel Int.max", "conv2d: kernel_size", { try Conv2D(filters: 2, kernelSize: [big, 1])(image()) }),
            ("Conv2D filters Int.max", "filters 9223372036854775807", { try Conv2D(filters: big, kernelSize: [1, 1])(image()) }),
            ("Conv2D strides 0", "strides [0, 1]", { try Conv2D(filters: 2, kernelSize: [1, 1], strides: [0, 1])(image()) }),
            ("Conv2D kernel []", "kernel_size []", { try Conv2D(filters: 2, kernelSize: [])(image()) }),
            ("Conv2D dilation huge", "effective size 2147483648", { try Conv2D(filters: 2, kernelSize: [2, 2], dilationRate: [i32, 1])(image()) }),
            ("Conv1D groups Int.max", "groups 9223372036854775807", { try Conv1D(filters: 2, kernelSize: 1, groups: big)(seq()) }),
            ("DepthwiseConv2D multiplier Int.max", "depth_multiplier", { try DepthwiseConv2D(kernelSize: [1, 1], depthMultiplier: big)(image()) }),
            ("SeparableConv2D multiplier huge", "separable_conv2d/depthwise_kernel", { try SeparableConv2D(filters: 2, kernelSize: [1, 1], depthMultiplier: i32)(image()) }),
            ("Conv2DTranspose strides huge", "conv2d_transpose", { try Conv2DTranspose(filters: 2, kernelSize: [2, 2], strides: [i32, i32])(image()) }),
            ("Conv2DTranspose output padding [1]", "output_padding [1]", { try Conv2DTranspose(filters: 2, kernelSize: [2, 2], strides: [2, 2], outputPadding: [1])(image()) }),
            ("Conv2DTranspose strides [2]", nil, { try Conv2DTranspose(filters: 2, kernelSize: [2, 2], strides: [2])(image()) }),
            ("Conv2DTranspose kernel [2]", nil, { try Conv2DTranspose(filters: 2, kernelSize: [2])(image()) }),
            // Found by the conformance fuzzer: a config with dilation_rate [] indexed past the list.
            ("Conv2DTranspose dilation []", "dilation_rate []", { try Conv2DTranspose(filters: 2, kernelSize: [2, 2], dilationRate: [])(image()) }),
            // Found by the conformance fuzzer: a pooling config with pool_size [] was read at index 0.
            ("AveragePooling1D config pool_size []", "must not be empty",
             { try LayerRegistry.deserialize(try JSON.parse(#"{"class_name": "AveragePooling1D", "config": {"pool_size": []}}"#)) }),
            // Found by the conformance fuzzer in the final run: a Conv1D config with kernel_size [].
            ("Conv1D config kernel_size []", "must not be empty",
             { try LayerRegistry.deserialize(try JSON.parse(#"{"class_name": "Conv1D", "config": {"filters": 2, "kernel_size": []}}"#)) }),
            ("Conv2D config strides []", "must not be empty",
             { try LayerRegistry.deserialize(try JSON.parse(#"{"class_name": "Conv2D", "config": {"filters": 2, "kernel_size": [3, 3], "strides": []}}"#)) }),
            ("MaxPooling1D config strides []", "must not be empty",
             { try LayerRegistry.deserialize(try JSON.parse(#"{"class_name": "MaxPooling1D", "config": {"strides": []}}"#)) }),
            ("Conv2DTranspose output padding", "output_padding", { try Conv2DTranspose(filters: 2, kernelSize: [2, 2], strides: [2, 2], outputPadding: [big, 1])(image()) }),
            ("MaxPooling2D pool Int.max", "max_pooling2d: pool_size", { try MaxPooling2D(poolSize: [big, 1])(image()) }),
            ("AveragePooling2D strides 0", "strides [0, 0]", { try AveragePooling2D(poolSize: [2, 2], strides: [0, 0])(image()) }),
            ("MaxPooling1D same huge", nil, { try MaxPooling1D(poolSize: i32, padding: "same")(seq()) }),
            ("Cropping2D huge", "cropping2d", { try Cropping2D(cropping: [(big, big), (0, 0)])(image()) }),
            ("Cropping1D negative", "cropping1d", { try Cropping1D(cropping: (-1, 0))(seq()) }),
            ("ZeroPadding2D huge", "zero_padding2d", { try ZeroPadding2D(padding: [(big, big), (0, 0)])(image()) }),
            ("ZeroPadding2D 2^30", "zero_padding2d", { try ZeroPadding2D(padding: [(1 << 30, 1 << 30), (1 << 30, 1 << 30)])(image()) }),
            ("UpSampling1D 0", "up_sampling1d", { try UpSampling1D(size: 0)(seq()) }),
            ("UpSampling3D huge", "up_sampling3d", { try UpSampling3D(size: [i32, i32, i32])(Input(shape: [2, 2, 2, 1])) }),
            ("UpSampling2D []", "up_sampling2d", { try UpSampling2D(size: [])(image()) }),
            ("Reshape [-1, -1]", "reshape: target_shape", { try Reshape([-1, -1])(flat()) }),
            ("Reshape [0]", "reshape: target_shape", { try Reshape([0])(flat()) }),
            ("Permute [5, 1]", "permute", { try Permute([5, 1])(seq()) }),
            ("Permute [1, 1]", "permute", { try Permute([1, 1])(seq()) }),
            ("Permute []", "permute", { try Permute([])(seq()) }),
            ("RepeatVector -1", "repeat_vector", { try RepeatVector(-1)(flat()) }),
            ("RepeatVector Int.max", "repeat_vector", { try RepeatVector(big)(flat()) }),
            ("RepeatVector 2^31", "repeat_vector", { try RepeatVector(1 << 31)(flat()) }),
            ("Embedding -1", "embedding", { try Embedding(inputDim: -1, outputDim: 2)(Input(shape: [3], dtype: .i32)) }),
            ("Embedding huge", "embedding/embeddings", { try Embedding(inputDim: big, outputDim: big)(Input(shape: [3], dtype: .i32)) }),
            ("Dropout NaN", "dropout: rate", { try Dropout(.nan)(flat()) }),
            ("Dropout 2", "dropout: rate", { try Dropout(2)(flat()) }),
            ("Dropout noise shape", nil, { try Dropout(0.5, noiseShape: [big, nil])(flat()) }),
            ("GaussianNoise NaN", nil, { try GaussianNoise(.nan)(flat()) }),
            ("Softmax axis 99", "softmax", { try Softmax(axis: 99)(flat()) }),
            ("Softmax axes []", nil, { try Softmax(axes: [])(flat()) }),
            ("ReLU NaN", "re_lu", { try ReLU(maxValue: .nan, negativeSlope: .nan)(flat()) }),
            ("Flatten scalar-ish", nil, { try Flatten()(Input(shape: [Int]())) }),
            ("GlobalMaxPooling2D on 1D", "global_max_pooling2d", { try GlobalMaxPooling2D()(seq()) }),
            ("Masking on i32", "masking", { try Masking(maskValue: .nan)(Input(shape: [3], dtype: .i32)) }),
            ("Input negative shape", "dense", { try Dense(2)(Input(shape: [-5])) }),
            ("Input huge shape", "dense/kernel", { try Dense(2)(Input(shape: [big])) }),
            ("Input 2^31 shape", "dense/kernel", { try Dense(2)(Input(shape: [1 << 31])) }),
            ("Input batch negative", "dimension -2", { try Dense(2)(Input(shape: [3], batchSize: -2)) }),
            ("Sequential empty predict", "sequential", { try Sequential([]).predict(try Tensor([1, 2], shape: [1, 2])) }),
        ]
        for (name, fragment, body) in cases {
            Naming.reset()
            var outcome = "ok"
            do { _ = try body() } catch { outcome = "\(error)" }
            if let fragment {
                XCTAssertTrue(outcome.contains(fragment), "\(name): '\(outcome)' does not mention '\(fragment)'")
            }
        }
    }
}

final class ArchiveWriterLimitTests: XCTestCase {
    func testNamesAndCountsPastZipFieldsAreErrors() throws {
        let t = try Tensor([1], shape: [1])
        XCTAssertThrowsError(try NumPy.encodeArchive([(String(repeating: "n", count: 70_000), t)])) { e in
            XCTAssertTrue("\(e)".contains("too long"), "\(e)")
        }
        XCTAssertThrowsError(try NumPy.encodeArchive([(String, Tensor)](repeating: ("a", t), count: 70_000))) { e in
            XCTAssertTrue("\(e)".contains("65535"), "\(e)")
        }
        XCTAssertEqual(try NumPy.decodeArchive(try NumPy.encodeArchive([("a", t)]))[0].1, t)
    }
}
