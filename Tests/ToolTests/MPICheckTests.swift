import Foundation
import XCTest

/// keras-mpi-check: the MPI communicator across two ranks under mpirun
/// (skipped, saying why, where Open MPI's mpirun is absent), and MPI asked
/// for where the library is not: an error naming what was looked for.
extension ToolTests {
    /// mpirun's path, or a skip saying why the test cannot run here.
    static func requireMPIRun() throws -> String {
        guard let path = mpirun else { throw XCTSkip("mpirun not found on PATH: Open MPI is not installed (Debian: apt-get install openmpi-bin)") }
        return path
    }

    static var mpirun: String? {
        let dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init) + ["/usr/bin", "/usr/local/bin"]
        return dirs.map { $0 + "/mpirun" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    func testMPICheckAgreesAcrossTwoRanks() throws {
        let mpirun = try Self.requireMPIRun()
        let r = try run("keras-mpi-check", [], launcher: [mpirun, "--allow-run-as-root", "--oversubscribe", "-np", "2"], timeout: 120)
        XCTAssertEqual(r.status, 0, "mpirun -np 2 keras-mpi-check: \(r.err)")
        for rank in 0..<2 {
            XCTAssertTrue(r.out.contains("rank \(rank) of 2: allreduce (sum, average), broadcast and barrier agree"), "rank \(rank): \(r.out) \(r.err)")
        }
    }

    func testMPIAskedForWhereItIsAbsent() throws {
        try expectFailure("keras-mpi-check", [], status: 2, mentions: ["/nonexistent/libmpi.so", "KERAS_MPI_LIBRARY", "no MPI library could be loaded"],
                          environment: ["KERAS_MPI_LIBRARY": "/nonexistent/libmpi.so"])
        try expectFailure("keras-mpi-check", ["--ranks", "2"], status: 2, mentions: ["unknown argument '--ranks'", "usage:"])
        try expectFailure("keras-mpi-check", ["--train", "mlp", "--steps", "0"], status: 2, mentions: ["--steps must be a positive integer, got '0'"])
    }

    /// Data-parallel training of the suite's mlp (SGD with momentum) and
    /// mnist_cnn (Adam, two dropouts) over two ranks for 20 steps: bitwise the
    /// same weights on both, within 1e-5 of one process on the same global
    /// batches (keras-mpi-check checks both and says so).
    func testDataParallelTrainingAgreesAcrossRanksAndWithOneProcess() throws {
        let mpirun = try Self.requireMPIRun()
        for model in ["mlp", "mnist_cnn"] {
            let r = try run("keras-mpi-check", ["--train", model, "--steps", "20"],
                            launcher: [mpirun, "--allow-run-as-root", "--oversubscribe", "-np", "2"], timeout: 300)
            XCTAssertEqual(r.status, 0, "mpirun -np 2 keras-mpi-check --train \(model): \(r.err)")
            for rank in 0..<2 {
                XCTAssertTrue(r.out.contains("rank \(rank) of 2: \(model) trained 20 steps of 128: weights bitwise the same on every rank, within"),
                              "rank \(rank): \(r.out) \(r.err)")
            }
        }
    }

    /// A global batch that does not split evenly over the processes is an
    /// error on every rank, naming both numbers (128 rows, 3 ranks).
    func testBatchNotDivisibleByTheRanksIsAnError() throws {
        let mpirun = try Self.requireMPIRun()
        let r = try run("keras-mpi-check", ["--train", "mlp", "--steps", "2"], launcher: [mpirun, "--allow-run-as-root", "--oversubscribe", "-np", "3"],
                        timeout: 300)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.err.contains("batch_size 128 is not divisible by the 3 processes"), r.err)
    }

    /// Two ranks that built different models (mlp and mnist_cnn, one mpirun
    /// job of two programs) stop with an error before any weight is
    /// exchanged, rather than hang in a broadcast of different sizes.
    func testRanksWithDifferentModelsStopWithAnError() throws {
        let mpirun = try Self.requireMPIRun()
        let tool = Self.binary("keras-mpi-check").path
        let r = try run("keras-mpi-check", ["--train", "mlp", "--steps", "2"],
                        launcher: [mpirun, "--allow-run-as-root", "--oversubscribe", "-np", "1", tool, "--train", "mnist_cnn", "--steps", "2", ":", "-np", "1"],
                        timeout: 300)
        XCTAssertNotEqual(r.status, 0)
        // every rank throws; the first to exit aborts the job, which may stop the other before it prints
        XCTAssertGreaterThanOrEqual(r.err.components(separatedBy: "hold a different model than rank 0").count - 1, 1, r.err)
    }

    /// The demo under mpirun -np 2 --distributed: the single-process demo's
    /// held-out accuracy within a point, one progress bar, the outputs
    /// written once (by rank 0).
    func testDemoDistributedMatchesTheSingleProcessDemo() throws {
        let mpirun = try Self.requireMPIRun()
        func accuracy(_ out: String) -> Double? {
            guard let line = out.split(separator: "\n").first(where: { $0.hasPrefix("held-out accuracy: ") }) else { return nil }
            return Double(line.dropFirst("held-out accuracy: ".count).prefix { $0 != "%" })
        }
        let one = try run("keras-demo", ["--out", temp("-one"), "--threads", "1"])
        XCTAssertEqual(one.status, 0, one.err)
        let outDir = temp("-two")
        let two = try run("keras-demo", ["--out", outDir, "--threads", "1", "--distributed"],
                          launcher: [mpirun, "--allow-run-as-root", "--oversubscribe", "-np", "2"], timeout: 600)
        XCTAssertEqual(two.status, 0, two.err)
        let a1 = try XCTUnwrap(accuracy(one.out), one.out), a2 = try XCTUnwrap(accuracy(two.out), two.out)
        XCTAssertEqual(a2, a1, accuracy: 1.0, "held-out accuracy: one process \(a1)%, two \(a2)%")
        XCTAssertEqual(two.out.components(separatedBy: "Epoch 1/30").count - 1, 1, "one progress bar: \(two.out)")
        XCTAssertEqual(two.out.components(separatedBy: "held-out accuracy:").count - 1, 1)
        XCTAssertEqual(two.out.components(separatedBy: "wrote ").count - 1, 1)
        XCTAssertTrue(two.out.contains("2 processes"), two.out)
        for file in ["history.svg", "model.keras", "weights.npz"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: outDir + "/" + file), file)
        }
    }

    /// keras-bench --distributed under mpirun -np 2: one table, from rank 0,
    /// with the step alone and distributed, the allreduce's part and the efficiency.
    func testBenchDistributedReportsEfficiency() throws {
        let mpirun = try Self.requireMPIRun()
        let json = temp(".json")
        let r = try run("keras-bench", ["--distributed", "--model", "mlp", "--steps", "3", "--json", json],
                        launcher: [mpirun, "--allow-run-as-root", "--oversubscribe", "-np", "2"], timeout: 300)
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertEqual(r.out.components(separatedBy: "| mlp | 2 | 128 | 2.68 |").count - 1, 1, r.out)
        XCTAssertTrue(r.out.contains("efficiency"), r.out)
        let text = try String(contentsOfFile: json, encoding: .utf8)
        XCTAssertTrue(text.contains("\"allreduce_ms\"") && text.contains("\"efficiency\""), text)
        try expectFailure("keras-bench", ["--distributed", "--threads", "2"], status: 2, mentions: ["--distributed takes only"])
    }

    /// Two ranks training mlp for 20 steps with a fault on rank 1 (`fault`:
    /// keras-mpi-check's flags); the job must fail, with no rank finishing,
    /// within a minute. Returns what it printed and how long it took.
    func faultyTraining(_ fault: [String], environment: [String: String] = [:]) throws -> (Result, seconds: Double) {
        let mpirun = try Self.requireMPIRun()
        let start = Date()
        let passed = environment.keys.sorted().flatMap { ["-x", $0] }
        let r = try run("keras-mpi-check", ["--train", "mlp", "--steps", "20"] + fault, environment: environment,
                        launcher: [mpirun, "--allow-run-as-root", "--oversubscribe"] + passed + ["-np", "2"], timeout: 120)
        let took = Date().timeIntervalSince(start)
        XCTAssertNotEqual(r.status, 0, "\(fault)")
        XCTAssertFalse(r.out.contains("trained 20 steps"), "no rank finished: \(r.out)")
        XCTAssertLessThan(took, 60, "\(fault)")
        return (r, took)
    }

    /// A rank that leaves mid-training with a failure status (rank 1 at step
    /// 10 of 20) aborts the job: the other rank stops within the test's
    /// limit instead of waiting forever in its next allreduce.
    func testARankThatExitsMidTrainingStopsTheOthers() throws {
        let (r, _) = try faultyTraining(["--exit-rank", "1"])
        XCTAssertTrue(r.err.contains("rank 1 exits at step 10"), r.err)
    }

    /// A rank that leaves mid-training with status 0 (a script that returns
    /// early) aborts the job as well: leaving during a distributed fit is a
    /// fault whatever the status.
    func testARankThatExitsCleanlyMidTrainingStopsTheOthers() throws {
        let (r, _) = try faultyTraining(["--exit-rank", "1", "--exit-status", "0"])
        XCTAssertTrue(r.err.contains("rank 1 exits at step 10 with status 0"), r.err)
        XCTAssertTrue(r.err.contains("a process exited during distributed training (status 0)"), r.err)
    }

    /// A rank that stops making progress without exiting: the other waits in
    /// its allreduce until the collective timeout (5 s here), then ends, and
    /// mpirun stops the job, naming the call and the limit.
    func testAHungRankStopsTheJobAtTheCollectiveTimeout() throws {
        let (r, took) = try faultyTraining(["--hang-rank", "1"], environment: ["KERAS_COLLECTIVE_TIMEOUT": "5"])
        XCTAssertTrue(r.err.contains("rank 1 stops at step 10"), r.err)
        XCTAssertTrue(r.err.contains("rank 0: MPI_Allreduce of 669707 elements did not complete within 5 s (KERAS_COLLECTIVE_TIMEOUT)"), r.err)
        XCTAssertGreaterThanOrEqual(took, 5, "the job ended before the timeout")
    }

    /// A timeout that is not a number of seconds is an error naming the setting.
    func testABadCollectiveTimeoutIsAnError() throws {
        let mpirun = try Self.requireMPIRun()
        let r = try run("keras-mpi-check", [], environment: ["KERAS_COLLECTIVE_TIMEOUT": "soon"],
                        launcher: [mpirun, "--allow-run-as-root", "--oversubscribe", "-x", "KERAS_COLLECTIVE_TIMEOUT", "-np", "2"], timeout: 120)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.err.contains("KERAS_COLLECTIVE_TIMEOUT='soon' is not a number of seconds"), r.err)
    }

    /// Each rank first trains a step alone on data of its own (its own
    /// momentum and step count); the distributed fit starts every rank from
    /// rank 0's optimizer state as well as its weights, so they agree
    /// bitwise after (they do not when only the weights are sent).
    func testRankZerosOptimizerStateIsBroadcast() throws {
        let mpirun = try Self.requireMPIRun()
        let r = try run("keras-mpi-check", ["--train", "mlp", "--steps", "6", "--warm-up"],
                        launcher: [mpirun, "--allow-run-as-root", "--oversubscribe", "-np", "2"], timeout: 300)
        XCTAssertEqual(r.status, 0, r.err)
        for rank in 0..<2 {
            XCTAssertTrue(r.out.contains("rank \(rank) of 2: mlp trained 6 steps of 128: weights bitwise the same on every rank"), r.out)
        }
    }

    /// ModelCheckpoint and CSVLogger write on rank 0 only: given file names
    /// that carry the rank, only rank 0's exist after a distributed fit.
    func testOnlyRankZeroWritesCheckpointsAndLogs() throws {
        let mpirun = try Self.requireMPIRun()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("keras-mpi-files-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try run("keras-mpi-check", ["--train", "mlp", "--steps", "4", "--files", dir.path],
                        launcher: [mpirun, "--allow-run-as-root", "--oversubscribe", "-np", "2"], timeout: 300)
        XCTAssertEqual(r.status, 0, r.err)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        XCTAssertEqual(files, ["rank0-1.weights.h5", "rank0.csv"])
        let csv = try String(contentsOf: dir.appendingPathComponent("rank0.csv"), encoding: .utf8)
        XCTAssertTrue(csv.hasPrefix("epoch,loss"), csv)
    }
}
