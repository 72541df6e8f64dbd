import Foundation
import Keras
import KerasConformance
import XCTest

/// Seeded mutation fuzzing of every reader that takes a user's file: the
/// kgraph text format (parsed, compiled and run), NumPy .npy/.npz, CSV and
/// IDX, and keras-conformance case folders. A reader may throw; it must never
/// trap, abort or read out of bounds (run under AddressSanitizer for the C
/// kernels). Skipped unless asked, because it runs for as long as it is told:
///
///     KERAS_FUZZ_SECONDS=600 [KERAS_FUZZ_SEED=1] swift test --filter Fuzz
///
/// Each target spends KERAS_FUZZ_SECONDS. The input under test is written to
/// a file first (printed at the start), so a trap leaves the input behind;
/// `KERAS_FUZZ_REPLAY=FILE swift test --filter FuzzTests/testFuzzX` runs it again.
final class FuzzTests: XCTestCase {
    struct Budget {
        var seconds: Double
        var seed: UInt64
        /// KERAS_FUZZ_REPLAY=FILE runs each target once on that input (a kept crash).
        var replay: String?
    }

    func budget() throws -> Budget {
        let env = ProcessInfo.processInfo.environment
        let replay = env["KERAS_FUZZ_REPLAY"]
        let seconds = env["KERAS_FUZZ_SECONDS"].flatMap(Double.init) ?? 0
        guard seconds > 0 || replay != nil else {
            throw XCTSkip("fuzzing runs only when KERAS_FUZZ_SECONDS (or KERAS_FUZZ_REPLAY) is set")
        }
        return Budget(seconds: seconds, seed: env["KERAS_FUZZ_SEED"].flatMap { UInt64($0) } ?? 1, replay: replay)
    }

    /// Runs `body` on mutants of `corpus` until the budget is spent; prints
    /// how many inputs ran and how many each outcome had.
    func fuzz(_ target: String, corpus: [[UInt8]], structured: ((inout Mutator, [UInt8]) -> [UInt8]?)? = nil,
              dictionary: [String], _ body: ([UInt8]) throws -> Void) throws {
        let b = try budget()
        if let replay = b.replay {
            let input = Array(try Data(contentsOf: URL(fileURLWithPath: replay)))
            do { try body(input); print("replay \(target): accepted") } catch { print("replay \(target): \(error)") }
            return
        }
        var m = Mutator(seed: b.seed, dictionary: dictionary.map { Array($0.utf8) })
        // One file per process: two fuzzing runs at once must not share (or remove) each other's input.
        let current = NSTemporaryDirectory() + "keras-fuzz-\(target)-\(ProcessInfo.processInfo.processIdentifier)-current"
        print("fuzz \(target): seed \(b.seed), \(Int(b.seconds)) s, input under test kept at \(current)")
        fflush(stdout)
        let start = Date()
        var runs = 0, accepted = 0, rejected = 0
        var errorKinds: [String: Int] = [:]
        while Date().timeIntervalSince(start) < b.seconds {
            var input = runs < corpus.count ? corpus[runs] : m.mutate(corpus[m.below(corpus.count)], corpus: corpus)
            if runs >= corpus.count, let structured, m.below(2) == 0 {
                // Half the mutants change the structure (a JSON value) instead of bytes.
                input = structured(&m, corpus[m.below(corpus.count)]) ?? input
            }
            _ = FileManager.default.createFile(atPath: current, contents: Data(input))
            do {
                try body(input)
                accepted += 1
            } catch {
                rejected += 1
                // Messages differ in their numbers (line, column, sizes); count their wording.
                let kind = String("\(error)".filter { !$0.isNumber }.prefix(40))
                errorKinds[kind, default: 0] += 1
            }
            runs += 1
        }
        try? FileManager.default.removeItem(atPath: current)
        print("fuzz \(target): \(runs) inputs in \(String(format: "%.0f", Date().timeIntervalSince(start))) s, \(accepted) accepted, \(rejected) rejected with an error, no trap; \(errorKinds.count) distinct error openings")
        fflush(stdout)
    }

    // MARK: targets

    func testFuzzGraphText() throws {
        _ = try budget()
        let corpus = try graphCorpus().map { Array($0.utf8) }
        try fuzz("kgraph", corpus: corpus, dictionary: ["f32[", "i32[", "?", "param", "{", "}", "[", "]", "=", ",", "%0", "%1", "->", "(", ")",
                                                        "groups=", "residual=true", "bias=true", "value=", "pads=", "axes=", "shape=", "perm=",
                                                        "strides=", "dilation=", "input_shape=", "conv", "gather", "reshape", "pad", "concat",
                                                        "transpose", "broadcast_to", "softmax", "gemm_bias_act", "matmul", "slice", "constant"]) { bytes in
            guard let text = String(validating: bytes, as: UTF8.self) else { return }
            let g = try GraphParser.parse(text)
            try Verifier.verify(g)
            try MemoryLimit.withLimit(64 << 20) {
                let plan = try ExecutionPlan(g, batchSize: 2, store: ParameterStore())
                var rng = SplitMix64(seed: 9)
                for name in plan.inputNames {
                    guard let t = plan.inputType(name), let n = t.elementCount else { continue }
                    if t.dtype == .f32 {
                        try plan.setInput(name, try Tensor((0..<n).map { _ in rng.uniform(-2, 2) }, shape: t.shape))
                    } else {
                        try plan.setInput(name, try Tensor((0..<n).map { _ in Int32(rng.next() % 4) }, shape: t.shape))
                    }
                }
                try plan.run()
            }
        }
    }

    func testFuzzNumPy() throws {
        _ = try budget()
        let f = try Tensor((0..<24).map { Float($0) * 0.5 }, shape: [2, 3, 4]), i = try Tensor((0..<6).map { Int32($0) }, shape: [6])
        var corpus = [NumPy.encode(f), NumPy.encode(i), NumPy.encode(Tensor(3)), try NumPy.encodeArchive([("x", f), ("y", i)])]
        for name in ["compressed.npz", "stored-blocks.npz"] {
            corpus.append(Array(try Data(contentsOf: Self.fixtures.appendingPathComponent("npz/" + name))))
        }
        try fuzz("numpy", corpus: corpus, dictionary: ["'shape': (", ")", "(", "'descr': '<f4'", "'<f8'", "'<i8'", "'|u1'", "'<c16'", "True", "False",
                                                       "fortran_order", ",", "PK\u{03}\u{04}", "PK\u{01}\u{02}", "PK\u{05}\u{06}"]) { bytes in
            if bytes.starts(with: [0x93]) { _ = try NumPy.decode(bytes, name: "fuzz.npy") } else { _ = try NumPy.decodeArchive(bytes, name: "fuzz.npz") }
        }
    }

    func testFuzzCSVAndIDX() throws {
        _ = try budget()
        let digits = try String(contentsOf: Self.fixtures.deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Data/digits/digits.csv"), encoding: .utf8)
        let csv = digits.split(separator: "\n").prefix(6).joined(separator: "\n") + "\n"
        let idx: [UInt8] = [0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 3] + (0..<18).map { UInt8($0) }
        let idxFloat: [UInt8] = [0, 0, 0x0D, 1, 0, 0, 0, 2, 0x3F, 0x80, 0, 0, 0x7F, 0xC0, 0, 0]
        let corpus = [Array(csv.utf8), Array("a,b,label\r\n1,2,0\r\n3.5,-4e2,1\r\n".utf8), idx, idxFloat]
        try fuzz("csv-idx", corpus: corpus, dictionary: [",", "\n", "\r\n", "nan", "inf", "\u{FEFF}", "e308", "-", "."]) { bytes in
            if bytes.first == 0 {
                _ = try Datasets.parseIDX(bytes, name: "fuzz.idx")
            } else {
                let t = try Datasets.parseCSV(bytes, name: "fuzz.csv")
                XCTAssertEqual(t.values.count, t.rows * t.columns)
                XCTAssertTrue(t.values.allSatisfy(\.isFinite))
            }
        }
    }

    func testFuzzConformanceCases() throws {
        _ = try budget()
        // Every layer case of the families that run today (their configs exercise
        // every layer's from(config:)), and one model case.
        let conformance = Self.fixtures.appendingPathComponent("conformance").path
        var cases = ["models/mlp_sgd_cce", "models/embedding_lstm_sgd_mse"]
        for family in ["activations", "convolutional", "core", "merging", "normalization", "pooling", "regularization", "reshaping", "rnn"] {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: conformance + "/" + family)) ?? []
            cases += names.sorted().map { family + "/" + $0 }
        }
        cases = Array(cases.filter { FileManager.default.fileExists(atPath: conformance + "/" + $0 + "/case.json") }.prefix(256))
        XCTAssertGreaterThanOrEqual(cases.count, 50, "fuzz corpus cases exist")
        let root = NSTemporaryDirectory() + "keras-fuzz-conformance-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        var corpus: [[UInt8]] = []
        for c in cases {
            let family = String(c.split(separator: "/")[0])
            try FileManager.default.createDirectory(atPath: root + "/" + family, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: Self.fixtures.appendingPathComponent("conformance/" + c).path, toPath: root + "/" + c)
            // The case's index rides in front of its JSON so that mutants stay with their folder.
            corpus.append([UInt8(corpus.count)] + Array(try Data(contentsOf: URL(fileURLWithPath: root + "/" + c + "/case.json"))))
        }
        let runner = ConformanceRunner(root: root)
        try fuzz("conformance", corpus: corpus, structured: { m, input in
            guard let first = input.first, let json = try? JSONSerialization.jsonObject(with: Data(input.dropFirst()), options: [.fragmentsAllowed]) else { return nil }
            var value = json
            for _ in 0...m.below(3) { value = Mutator.mutateJSON(value, &m) }
            guard let data = try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed]) else { return nil }
            return [first] + Array(data)
        }, dictionary: ["\"shape\": [", "\"input_index\": ", "\"weight_index\": ", "\"batch_size\": ", "\"dtype\": \"int32\"",
                                                             "\"dtype\": \"complex128\"", "null", "[]", "{}", "\"file\": \"../", "-1", "1e300"]) { bytes in
            guard let first = bytes.first else { return }
            let c = cases[Int(first) % cases.count]
            _ = FileManager.default.createFile(atPath: root + "/" + c + "/case.json", contents: Data(bytes.dropFirst()))
            if case .fail(let why) = MemoryLimit.withLimit(64 << 20, { runner.runCase(c) }) { throw KerasError(why) }
        }
    }

    /// The HDF5 reader over Keras's and this library's weight files: parse,
    /// then walk every reachable object (bounded: a link back to an ancestor
    /// is legal HDF5), reading attributes and datasets.
    func testFuzzHDF5() throws {
        _ = try budget()
        var corpus: [[UInt8]] = []
        for model in ["mlp_sgd_cce", "cnn_bn_adam_bce", "embedding_lstm_sgd_mse"] {
            for file in ["model.weights.h5", "model.legacy.h5"] {
                corpus.append(Array(try Data(contentsOf: Self.fixtures.appendingPathComponent("conformance/models/\(model)/\(file)"))))
            }
        }
        for file in ["h5py_track_order.h5", "h5py_libver_latest.h5"] {
            corpus.append(Array(try Data(contentsOf: Self.fixtures.appendingPathComponent("keras-files/" + file))))
        }
        try fuzz("hdf5", corpus: corpus, dictionary: ["TREE", "SNOD", "HEAP", "GCOL", "OHDR", "OCHK", "\u{1}\u{0}", "\u{10}\u{0}", "\u{11}\u{0}"]) { bytes in
            let f = try HDF5File(bytes: bytes, name: "fuzz.h5")
            var visited = 0
            func walk(_ o: HDF5Object, depth: Int) throws {
                visited += 1
                guard depth < 8, visited < 10_000 else { return }
                _ = try o.attributes()
                if o.isDataset { _ = try o.read(); return }
                for n in try o.childNames() { try walk(try o.child(n), depth: depth + 1) }
            }
            try walk(try f.root(), depth: 0)
        }
    }

    /// loadModel over .keras archives (zip, config JSON, weights HDF5, optimizer state).
    func testFuzzKerasArchive() throws {
        _ = try budget()
        var corpus: [[UInt8]] = []
        for model in ["mlp_sgd_cce", "cnn_bn_adam_bce", "embedding_lstm_sgd_mse"] {
            for file in ["model.keras", "trained.keras"] {
                corpus.append(Array(try Data(contentsOf: Self.fixtures.appendingPathComponent("conformance/models/\(model)/\(file)"))))
            }
        }
        let path = NSTemporaryDirectory() + "keras-fuzz-archive-\(ProcessInfo.processInfo.processIdentifier).keras"
        defer { try? FileManager.default.removeItem(atPath: path) }
        // Half the mutants change one entry and zip it again with a correct CRC, reaching the JSON and HDF5 readers inside.
        let rezip: (inout Mutator, [UInt8]) -> [UInt8]? = { m, archive in
            guard var entries = try? ZipArchive.read(archive, name: "fuzz", kind: "keras"), !entries.isEmpty else { return nil }
            let k = m.below(entries.count)
            entries[k].1 = m.mutate(entries[k].1, corpus: [entries[k].1])
            return try? ZipArchive.write(entries, kind: "keras")
        }
        try fuzz("keras-archive", corpus: corpus, structured: rezip, dictionary: ["PK\u{3}\u{4}", "PK\u{1}\u{2}", "PK\u{5}\u{6}", "config.json", "model.weights.h5",
                                                            "\"class_name\"", "\"layers\"", "TREE", "SNOD", "HEAP"]) { bytes in
            _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
            Naming.reset()
            _ = try loadModel(from: path)
        }
    }

    /// modelFromJSON over the fixtures' model.json files, and toJSON of what it builds.
    func testFuzzModelJSON() throws {
        _ = try budget()
        let corpus = try ["mlp_sgd_cce", "cnn_bn_adam_bce", "embedding_lstm_sgd_mse"].map {
            Array(try Data(contentsOf: Self.fixtures.appendingPathComponent("conformance/models/\($0)/model.json")))
        }
        try fuzz("model-json", corpus: corpus, dictionary: ["{", "}", "[", "]", "null", "true", "-1", "1e9", "\"units\"", "\"inbound_nodes\"",
                                                         "\"keras_history\"", "\"batch_shape\"", "\"Functional\"", "\"Sequential\""]) { bytes in
            Naming.reset()
            let m = try modelFromJSON(String(decoding: bytes, as: UTF8.self))
            _ = m.toJSON()
        }
    }

    /// The YAML parser over PyYAML's output for the model fixtures, then
    /// modelFromYAML on what parses.
    func testFuzzYAML() throws {
        _ = try budget()
        let corpus = try ["mlp_sgd_cce", "cnn_bn_adam_bce", "embedding_lstm_sgd_mse"].map {
            Array(try Data(contentsOf: Self.fixtures.appendingPathComponent("yaml/\($0).yaml")))
        }
        try fuzz("yaml", corpus: corpus, dictionary: ["- ", ": ", "\n", "  ", "[", "]", "{", "}", "'", "\"", "null", "~", "#", "---", "&a", "*a", "|", ".inf"]) { bytes in
            let v = try YAML.parse(String(decoding: bytes, as: UTF8.self))
            _ = YAML.emit(v)
            Naming.reset()
            _ = try modelFromYAML(String(decoding: bytes, as: UTF8.self))
        }
    }

    // MARK: corpus

    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")

    /// Training graphs of three small models (dense, convolutional, embedding)
    /// as the dump prints them, plus the IR's example MLP.
    func graphCorpus() throws -> [String] {
        RandomSeed.set(1)
        var texts = [try ExampleGraphs.mlpTraining(hidden: 8).description]
        let models: [(Model, Tensor, Tensor)] = [
            (try Sequential([Dense(4, activation: "relu", inputShape: [3]), Dense(2, activation: "softmax")]),
             try Tensor([Float](repeating: 0.5, count: 6), shape: [2, 3]), try Tensor([1, 0, 0, 1], shape: [2, 2])),
            (try Sequential([Conv2D(2, 3, activation: "relu", inputShape: [6, 6, 1]), MaxPooling2D(2), Flatten(), Dense(2)]),
             try Tensor([Float](repeating: 0.5, count: 72), shape: [2, 6, 6, 1]), try Tensor([1, 0, 0, 1], shape: [2, 2])),
            (try Sequential([Embedding(inputDim: 5, outputDim: 3, inputLength: 4), Flatten(), Dense(1, activation: "sigmoid")]),
             try Tensor([0, 1, 2, 3, 4, 3, 2, 1], shape: [2, 4]), try Tensor([1, 0], shape: [2, 1])),
        ]
        for (model, x, y) in models {
            try model.compile(optimizer: "adam", loss: "mse")
            texts.append(try model.trainingPlan(x: [x], y: [y]).graph.description)
        }
        return texts
    }
}

/// Byte-level and token-level mutations, seeded.
struct Mutator {
    var rng: SplitMix64
    let dictionary: [[UInt8]]
    static let numbers = ["0", "-1", "1", "2", "3", "7", "64", "65535", "2147483647", "2147483648", "-2147483649", "4294967296", "1099511627776",
                          "9223372036854775807", "-9223372036854775808", "99999999999999999999", "1e20", "-1e20", "1e-45", "nan", "inf",
                          "-inf", "0.5", "3e9", "1048576"].map { Array($0.utf8) }
    static let words: [UInt32] = [0, 1, 0xFF, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0x0010_0000, 0xEF_FFFF]

    init(seed: UInt64, dictionary: [[UInt8]]) {
        rng = SplitMix64(seed: seed)
        self.dictionary = dictionary
    }

    mutating func below(_ n: Int) -> Int { n <= 0 ? 0 : Int(rng.next() % UInt64(n)) }

    /// Values that break assumptions in configs and case files.
    static let jsonValues: [Any] = [Int.max, Int.min, -1, 0, 1, 2147483648, 1e300, -1e300, 0.5, "complex128", "", "same", "channels_first",
                                    NSNull(), [Any](), [String: Any](), [1 << 40, 1], [-1, -1], [0], true, [Int](repeating: 3, count: 9)]

    /// Replaces one value (or deletes one key) somewhere inside a JSON value.
    static func mutateJSON(_ v: Any, _ m: inout Mutator) -> Any {
        if var d = v as? [String: Any], !d.isEmpty, m.below(4) != 0 {
            let keys = d.keys.sorted(), k = keys[m.below(keys.count)]
            switch m.below(6) {
            case 0: d.removeValue(forKey: k)
            case 1: d[k] = jsonValues[m.below(jsonValues.count)]
            default: d[k] = mutateJSON(d[k]!, &m)
            }
            return d
        }
        if var a = v as? [Any], !a.isEmpty, m.below(4) != 0 {
            let i = m.below(a.count)
            switch m.below(6) {
            case 0: a.remove(at: i)
            case 1: a.append(a[i])
            default: a[i] = mutateJSON(a[i], &m)
            }
            return a
        }
        return jsonValues[m.below(jsonValues.count)]
    }

    mutating func mutate(_ input: [UInt8], corpus: [[UInt8]]) -> [UInt8] {
        var b = input
        for _ in 0...below(4) {
            let i = below(b.count + 1)
            switch below(9) {
            case 0 where !b.isEmpty:  // flip a bit
                let j = min(i, b.count - 1)
                b[j] ^= UInt8(1 << below(8))
            case 1 where !b.isEmpty:  // an interesting byte
                b[min(i, b.count - 1)] = [0, 0xFF, 0x7F, 0x80, UInt8(below(256))][below(5)]
            case 2 where !b.isEmpty:  // delete a range
                let n = 1 + below(min(64, b.count))
                b.removeSubrange(min(i, b.count - n)..<(min(i, b.count - n) + n))
            case 3 where !b.isEmpty:  // duplicate a range somewhere
                let from = below(b.count), n = 1 + below(min(64, b.count - from))
                b.insert(contentsOf: b[from..<(from + n)], at: below(b.count + 1))
            case 4 where !dictionary.isEmpty:  // insert a token
                b.insert(contentsOf: dictionary[below(dictionary.count)], at: i)
            case 5:  // replace a run of digits with an interesting number
                if let start = (0..<b.count).dropFirst(below(b.count)).first(where: { b[$0] >= 0x30 && b[$0] <= 0x39 }) {
                    var end = start
                    while end < b.count && ((b[end] >= 0x30 && b[end] <= 0x39) || b[end] == 0x2E) { end += 1 }
                    b.replaceSubrange(start..<end, with: Mutator.numbers[below(Mutator.numbers.count)])
                }
            case 6 where b.count >= 4:  // a little-endian 32-bit word (sizes, offsets in binary formats)
                let j = below(b.count - 3), w = Mutator.words[below(Mutator.words.count)]
                for k in 0..<4 { b[j + k] = UInt8((w >> (8 * UInt32(k))) & 0xFF) }
            case 7:  // splice with another input
                let other = corpus[below(corpus.count)]
                if !other.isEmpty {
                    let from = below(other.count)
                    b = Array(b.prefix(i)) + Array(other[from...].prefix(1 + below(256)))
                }
            default:  // truncate
                b = Array(b.prefix(i))
            }
        }
        return b
    }
}
