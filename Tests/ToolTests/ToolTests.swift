import Foundation
import Keras
import XCTest

/// Runs the built keras-demo and keras-bench binaries: bad input ends in a
/// message and a non-zero exit (never a crash), and short runs produce what
/// they promise (pictures, weights, JSON records).
final class ToolTests: XCTestCase {
    struct Result { var status: Int32; var out: String; var err: String }

    static func binary(_ name: String) -> URL {
        // The test bundle sits beside the package's executables in the build folder.
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [dir, dir.deletingLastPathComponent()] {
            let url = candidate.appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        return dir.appendingPathComponent(name)
    }

    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Runs a built tool (or, with `launcher`, a program that starts it, as
    /// mpirun does: the launcher's arguments, then the tool's path, then
    /// `args`), ended with SIGTERM after `timeout` seconds if given.
    func run(_ name: String, _ args: [String], environment: [String: String] = [:], launcher: [String] = [],
             timeout: TimeInterval? = nil) throws -> Result {
        let url = Self.binary(name)
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: url.path), "\(name) not built at \(url.path)")
        let p = Process()
        if let program = launcher.first {
            p.executableURL = URL(fileURLWithPath: program)
            p.arguments = Array(launcher.dropFirst()) + [url.path] + args
        } else {
            p.executableURL = url
            p.arguments = args
        }
        if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        p.currentDirectoryURL = Self.packageRoot
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        if let timeout { DispatchQueue.global().asyncAfter(deadline: .now() + timeout) { if p.isRunning { p.terminate() } } }
        // read both pipes concurrently so a chatty child cannot block on a full pipe
        final class Sink: @unchecked Sendable { var data = Data() }
        let errSink = Sink()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async { errSink.data = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        let o = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        let errData = errSink.data
        p.waitUntilExit()
        XCTAssertEqual(p.terminationReason, .exit, "\(name) \(args) did not exit normally (crash or signal)")
        return Result(status: p.terminationStatus, out: String(decoding: o, as: UTF8.self), err: String(decoding: errData, as: UTF8.self))
    }

    func temp(_ suffix: String) -> String { NSTemporaryDirectory() + "keras-tool-\(UUID().uuidString)" + suffix }

    func expectFailure(_ name: String, _ args: [String], status: Int32, mentions parts: [String], environment: [String: String] = [:],
                       file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try run(name, args, environment: environment)
        XCTAssertEqual(r.status, status, "\(name) \(args): \(r.err)", file: file, line: line)
        for p in parts { XCTAssertTrue(r.err.contains(p), "\(name) \(args): stderr '\(r.err)' does not mention '\(p)'", file: file, line: line) }
    }

    // MARK: keras-demo

    func testDemoRejectsBadFlags() throws {
        try expectFailure("keras-demo", ["--model", "resnet"], status: 2, mentions: ["unknown model 'resnet'"])
        try expectFailure("keras-demo", ["--threads", "0"], status: 2, mentions: ["--threads", "'0'"])
        try expectFailure("keras-demo", ["--epochs", "-3"], status: 2, mentions: ["--epochs", "'-3'"])
        try expectFailure("keras-demo", ["--frobnicate"], status: 2, mentions: ["unknown option '--frobnicate'"])
        try expectFailure("keras-demo", ["--epochs"], status: 2, mentions: ["--epochs needs a value"])
    }

    func testDemoRejectsMissingAndCorruptData() throws {
        try expectFailure("keras-demo", ["--data", "/no/such/digits.csv"], status: 1, mentions: ["/no/such/digits.csv", "no such file"])
        let csv = temp(".csv")
        try "1,2,3,0\n4,5,x,1\n".write(toFile: csv, atomically: true, encoding: .utf8)
        try expectFailure("keras-demo", ["--data", csv], status: 1, mentions: [csv, "line 2", "not a number"])
        let notSquare = temp(".csv")
        try "1,2,3,0\n4,5,6,1\n".write(toFile: notSquare, atomically: true, encoding: .utf8)
        try expectFailure("keras-demo", ["--data", notSquare], status: 1, mentions: [notSquare, "3 features", "not a square"])
        let idx = temp("-images-idx3-ubyte")
        try Data([0, 0, 8, 3, 0, 0, 0, 9, 0, 0, 0, 28, 0, 0, 0, 28, 1, 2, 3]).write(to: URL(fileURLWithPath: idx))
        try expectFailure("keras-demo", ["--data", idx], status: 1, mentions: [idx, "truncated"])
        let npz = temp(".npz")
        try Data("PK not really a zip archive at all".utf8).write(to: URL(fileURLWithPath: npz))
        try expectFailure("keras-demo", ["--data", npz], status: 1, mentions: [npz, "not a valid .npz"])
    }

    func testDemoTrainsAndWritesPictures() throws {
        let out = temp("")
        let r = try run("keras-demo", ["--model", "mlp", "--epochs", "2", "--out", out])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.out.contains("Total params"), "no summary in \(r.out)")
        XCTAssertTrue(r.out.contains("Epoch 2/2"), "no progress in \(r.out)")
        let accuracy = r.out.split(separator: "\n").first { $0.contains("held-out accuracy") }
        XCTAssertNotNil(accuracy, r.out)
        for f in ["history.svg", "model.svg", "model.dot", "weights.npz", "model.keras", "model.weights.h5", "model.h5"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/" + f), "keras-demo did not write \(f)")
        }
        // The trained model comes back from each file with the same predictions.
        let trained = try loadModel(from: out + "/model.keras")
        let fromH5 = try loadModel(from: out + "/model.h5")
        let probe = try Tensor([Float](repeating: 0.25, count: 64), shape: [1, 8, 8, 1])
        XCTAssertEqual(try trained.predict(probe).floats, try fromH5.predict(probe).floats)
        XCTAssertEqual(trained.optimizer.map { type(of: $0).kerasClassName }, "Adam", "saved compiled")
        let svg = try String(contentsOfFile: out + "/history.svg", encoding: .utf8)
        XCTAssertTrue(svg.contains(">validation<") && svg.contains(">accuracy<"), svg)
    }

    /// Small random digit-like data in the .npz and .npy layouts the demo reads.
    func writeDataset(labels: [Float]) throws -> (npz: String, npy: String) {
        let n = labels.count
        var rng = SystemRandomNumberGenerator()
        let x = try Tensor((0..<(n * 64)).map { _ in Float.random(in: 0...16, using: &rng) }, shape: [n, 8, 8])
        let y = try Tensor(labels, shape: [n])
        let npz = temp(".npz")
        try Datasets.writeNPZ([("x", x), ("y", y)], to: npz)
        let dir = temp("")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try Datasets.writeNPY(x, to: dir + "/x_small.npy")
        try Datasets.writeNPY(y, to: dir + "/y_small.npy")
        return (npz, dir + "/x_small.npy")
    }

    func testDemoReadsNPZAndNPY() throws {
        let data = try writeDataset(labels: (0..<60).map { Float($0 % 3) })
        for path in [data.npz, data.npy] {
            let r = try run("keras-demo", ["--model", "mlp", "--epochs", "1", "--data", path, "--out", temp("")])
            XCTAssertEqual(r.status, 0, "\(path): \(r.err)")
            XCTAssertTrue(r.out.contains("60 images of 8x8, 3 classes"), r.out)
        }
    }

    func testDemoRejectsBadLabels() throws {
        for bad in [Float.nan, -1, 2.5, 1e20] {
            let data = try writeDataset(labels: [0, 1, bad, 1])
            try expectFailure("keras-demo", ["--data", data.npz], status: 1, mentions: [data.npz, "a label is"])
        }
        let lonely = temp("")
        try FileManager.default.createDirectory(atPath: lonely, withIntermediateDirectories: true)
        try Datasets.writeNPY(try Tensor([Float](repeating: 0, count: 64), shape: [1, 8, 8]), to: lonely + "/x.npy")
        try expectFailure("keras-demo", ["--data", lonely + "/x.npy"], status: 1, mentions: ["no labels file", "y.npy"])
    }

    // MARK: keras-bench

    func testBenchRejectsBadFlags() throws {
        try expectFailure("keras-bench", ["--model", "resnet50"], status: 2, mentions: ["unknown model 'resnet50'", "mlp, mnist_cnn, cifar_cnn, imdb_lstm"])
        try expectFailure("keras-bench", ["--threads", "0"], status: 2, mentions: ["--threads", "'0'"])
        try expectFailure("keras-bench", ["--steps", "zero"], status: 2, mentions: ["--steps", "'zero'"])
        try expectFailure("keras-bench", ["--bogus"], status: 2, mentions: ["unknown arguments"])
    }

    func testBenchWritesModelRecordsAndNamesTheMissingLayer() throws {
        let json = temp(".json")
        let r = try run("keras-bench", ["--model", "mlp", "--threads", "1", "--steps", "2", "--json", json])
        XCTAssertEqual(r.status, 0, r.err)
        let records = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as! [[String: Any]]
        XCTAssertEqual(records.count, 1)
        let rec = records[0]
        for key in ["model", "threads", "train_ms_median", "predict_ms_median", "predict1_ms_median", "gflops", "pct_peak",
                    "compile_ms", "arena_bytes", "peak_rss_bytes"] {
            XCTAssertNotNil(rec[key], "record lacks \(key): \(rec)")
        }
        XCTAssertEqual(rec["model"] as? String, "mlp")
        XCTAssertGreaterThan(rec["train_ms_median"] as? Double ?? 0, 0)
        XCTAssertGreaterThan(rec["arena_bytes"] as? Int ?? 0, 0)
        // matmul FLOPs of a step: forward and weight gradients for all three
        // layers, input gradients for the last two (none for the data itself)
        let matmulFlops = 2 * 2 * 128 * (784 * 512 + 512 * 512 + 5120) + 2 * 128 * (512 * 512 + 5120)
        let flops = rec["train_flops"] as? Int ?? 0
        XCTAssertGreaterThanOrEqual(flops, matmulFlops)
        XCTAssertLessThan(flops, matmulFlops * 21 / 20, "elementwise work should add under 5%")

        // --profile: every kernel call of the training step and of predict, with its cost, in the record.
        let profiled = try run("keras-bench", ["--model", "mlp", "--threads", "1", "--steps", "2", "--profile", "--json", json])
        XCTAssertEqual(profiled.status, 0, profiled.err)
        XCTAssertTrue(profiled.out.contains("profile mlp train threads=1") && profiled.out.contains("% peak"), profiled.out)
        let prec = (try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as! [[String: Any]])[0]
        let profile = prec["profile"] as? [String: Any]
        let train = profile?["train"] as? [[String: Any]] ?? [], predict = profile?["predict"] as? [[String: Any]] ?? []
        XCTAssertEqual(train.count, 17, "one row per kernel call of the mlp training step")
        XCTAssertGreaterThan(predict.count, 2)
        for row in train + predict {
            for key in ["step", "op", "kernel", "ms", "flops", "bytes"] { XCTAssertNotNil(row[key], "profile row lacks \(key): \(row)") }
        }
        XCTAssertEqual(train.map { $0["flops"] as? Int ?? 0 }.reduce(0, +), flops, "the calls' FLOPs add up to the step's")

        // imdb_lstm is built from the layer registry; with LSTM registered it trains.
        let lstm = try run("keras-bench", ["--model", "imdb_lstm", "--threads", "1", "--steps", "1", "--json", json])
        XCTAssertEqual(lstm.status, 0, lstm.err)
        let lrec = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as! [[String: Any]]
        XCTAssertEqual(lrec.first?["status"] as? String, "ok")
        XCTAssertGreaterThan(lrec.first?["train_ms_median"] as? Double ?? 0, 0)
    }

    /// --svg draws the model table, with the peers' bars from --peers; a bad peers file fails before the run.
    func testBenchDrawsTheModelTableWithPeers() throws {
        let svg = temp(".svg"), peers = temp(".json")
        try #"[{"peer": "pytorch", "model": "mlp", "threads": 1, "train_ms_median": 5.35}]"#.write(toFile: peers, atomically: true, encoding: .utf8)
        let r = try run("keras-bench", ["--model", "mlp", "--threads", "1", "--steps", "1", "--svg", svg, "--peers", peers])
        XCTAssertEqual(r.status, 0, r.err)
        let text = try String(contentsOfFile: svg, encoding: .utf8)
        XCTAssertTrue(text.hasPrefix("<svg") && text.contains(">this library<") && text.contains(">pytorch<") && text.contains(">5.35 ms<"), text)
        XCTAssertTrue(text.contains("mlp, 1 thread"), text)
        try "{}".write(toFile: peers, atomically: true, encoding: .utf8)
        try expectFailure("keras-bench", ["--model", "mlp", "--threads", "1", "--steps", "1", "--svg", svg, "--peers", peers], status: 1,
                          mentions: ["expected a JSON array of peer records"])
        try expectFailure("keras-bench", ["--model", "mlp", "--peers", peers], status: 2, mentions: ["--peers goes with --svg"])
    }

    // MARK: hostile input (issue 9)

    func testDemoHostileFlagsAndData() throws {
        try expectFailure("keras-demo", ["--threads", "2147483648"], status: 2, mentions: ["--threads", "2147483648"])
        try expectFailure("keras-demo", ["--threads", "99999999999999999999"], status: 2, mentions: ["--threads"])
        // A batch of Int.max is the whole data set (no overflow in the batch count).
        let data = try writeDataset(labels: (0..<40).map { Float($0 % 2) })
        let ok = try run("keras-demo", ["--model", "mlp", "--epochs", "1", "--batch-size", "9223372036854775807", "--data", data.npz, "--out", temp("")])
        XCTAssertEqual(ok.status, 0, ok.err)
        // NaN in the features: named with the sample and the column, before training.
        let n = 4
        var features = [Float](repeating: 1, count: n * 64)
        features[2 * 64 + 5] = .nan
        let nanPath = temp(".npz")
        try Datasets.writeNPZ([("x", try Tensor(features, shape: [n, 8, 8])), ("y", try Tensor([0, 1, 0, 1], shape: [4]))], to: nanPath)
        try expectFailure("keras-demo", ["--data", nanPath], status: 1, mentions: [nanPath, "sample 2", "column 6", "nan"])
        // x_xnan.npy takes its labels from y_xnan.npy: only the leading x changes.
        let dir = temp("")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try Datasets.writeNPY(try Tensor([Float](repeating: 1, count: 4 * 64), shape: [4, 8, 8]), to: dir + "/x_xnan.npy")
        try Datasets.writeNPY(try Tensor([0, 1, 0, 1], shape: [4]), to: dir + "/y_xnan.npy")
        let pair = try run("keras-demo", ["--model", "mlp", "--epochs", "1", "--data", dir + "/x_xnan.npy", "--out", temp("")])
        XCTAssertEqual(pair.status, 0, pair.err)
        // A 300x300-pixel CSV for the CNN under a 400 MiB limit: a named error, not an abort.
        let big = temp(".csv")
        let row = String(repeating: "0.5,", count: 300 * 300)
        try ((0..<3).map { row + String($0 % 2) }.joined(separator: "\n") + "\n").write(toFile: big, atomically: true, encoding: .utf8)
        try expectFailure("keras-demo", ["--data", big, "--epochs", "1"], status: 1, mentions: ["kernel", "more than the memory limit of 400 MiB"],
                          environment: ["KERAS_MEMORY_LIMIT": "400M"])
        try expectFailure("keras-demo", ["--data", big], status: 1, mentions: ["KERAS_MEMORY_LIMIT='lots'"], environment: ["KERAS_MEMORY_LIMIT": "lots"])
        // A device that never ends is read up to a bound, not until memory runs out.
        try expectFailure("keras-demo", ["--data", "/dev/zero"], status: 1, mentions: ["/dev/zero", "larger than half the memory limit"],
                          environment: ["KERAS_MEMORY_LIMIT": "64M"])
        // KERAS_ISA must name an ISA.
        try expectFailure("keras-demo", ["--model", "mlp", "--epochs", "1"], status: 1, mentions: ["KERAS_ISA='bogus'"], environment: ["KERAS_ISA": "bogus"])
    }

    func testDemoChecksItsOutputFolderBeforeTraining() throws {
        let file = temp(".txt")
        try "not a folder".write(toFile: file, atomically: true, encoding: .utf8)
        let r = try run("keras-demo", ["--model", "mlp", "--epochs", "1", "--out", file + "/sub"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.err.contains("--out \(file)/sub"), r.err)
        XCTAssertFalse(r.out.contains("Epoch 1/1"), "the folder is checked before training")
        // A folder that already holds older results keeps them whole until the new ones are complete.
        let out = temp("")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let ok = try run("keras-demo", ["--model", "mlp", "--epochs", "1", "--out", out])
        XCTAssertEqual(ok.status, 0, ok.err)
        let names = try FileManager.default.contentsOfDirectory(atPath: out).sorted()
        XCTAssertEqual(names, ["history.svg", "model.dot", "model.h5", "model.keras", "model.svg", "model.weights.h5", "weights.npz"],
                       "no staging or probe files are left behind")
    }

    func testConformanceRunnerHostileCases() throws {
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: Self.binary("keras-conformance").path), "keras-conformance not built")
        let help = try run("keras-conformance", ["--help"])
        XCTAssertEqual(help.status, 0)
        XCTAssertTrue(help.out.contains("usage: keras-conformance DIR"), help.out)
        try expectFailure("keras-conformance", ["--frobnicate"], status: 2, mentions: ["unknown option '--frobnicate'"])
        let root = temp("")
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try #"{"cases": [{"path": 7}, {"path": ["core"]}]}"#.write(toFile: root + "/index.json", atomically: true, encoding: .utf8)
        try expectFailure("keras-conformance", [root], status: 2, mentions: ["index.json", "cases[0]", "'path'"])
    }
}
