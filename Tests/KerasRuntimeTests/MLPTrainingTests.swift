import CKernels
import CMallocCounter
import KerasIR
import KerasRuntime
import TestSupport
import XCTest

/// The engine end to end: an MLP written directly against the IR, gradients
/// by autodiff, SGD updates as ops, one compiled plan, a loss that goes down,
/// and no heap allocation in a steady-state step.
final class MLPTrainingTests: XCTestCase {
    typealias RNG = SplitMix64

    static func mlpGraph(learningRate: Float) throws -> Graph {
        try TestGraphs.mlpTraining(learningRate: learningRate)
    }

    /// A fixed synthetic problem: 10 Gaussian clusters in 784 dimensions.
    static func dataset(count: Int, rng: inout RNG) -> ([Float], [Float]) {
        var centers = [Float](repeating: 0, count: 10 * 784)
        for i in centers.indices { centers[i] = rng.uniform(-1, 1) }
        var xs = [Float](repeating: 0, count: count * 784), ys = [Float](repeating: 0, count: count * 10)
        for i in 0..<count {
            let c = Int(rng.next() % 10)
            for j in 0..<784 { xs[i * 784 + j] = centers[c * 784 + j] + rng.uniform(-1.5, 1.5) }
            ys[i * 10 + c] = 1
        }
        return (xs, ys)
    }

    static func initialize(_ store: ParameterStore, rng: inout RNG) throws {
        for (name, fanIn, fanOut) in [("dense.kernel", 784, 64), ("dense_1.kernel", 64, 10)] {
            let limit = (6 / Float(fanIn + fanOut)).squareRoot()
            try store.set(name, (0..<(fanIn * fanOut)).map { _ in rng.uniform(-limit, limit) })
        }
    }

    func testMLPTrainsAndSteadyStepsAllocateNothing() throws {
        let batch = 32, batches = 8
        let store = ParameterStore()
        let plan = try ExecutionPlan(try Self.mlpGraph(learningRate: 0.05), batchSize: batch, store: store)
        var rng = RNG(seed: 11)
        try Self.initialize(store, rng: &rng)
        let (xs, ys) = Self.dataset(count: batch * batches, rng: &rng)
        let batchX = (0..<batches).map { Array(xs[($0 * batch * 784)..<(($0 + 1) * batch * 784)]) }
        let batchY = (0..<batches).map { Array(ys[($0 * batch * 10)..<(($0 + 1) * batch * 10)]) }
        var losses: [Float] = []
        var allocations: [Int64] = []
        try XCTSkipIf(mc_active() == 0, "the allocation counter stands aside under a sanitizer")
        for epoch in 0..<6 {
            var total: Float = 0
            for k in 0..<batches {
                mc_start()
                try batchX[k].withUnsafeBytes { try plan.setInput("x", bytes: $0) }
                try batchY[k].withUnsafeBytes { try plan.setInput("y", bytes: $0) }
                try plan.run()
                let loss = plan.scalarOutput(0)
                let n = mc_stop()
                if epoch > 0 { allocations.append(n) }
                total += loss
            }
            losses.append(total / Float(batches))
        }
        XCTAssertEqual(allocations.count, 5 * batches)
        XCTAssertEqual(allocations.reduce(0, +), 0, "heap allocations per steady-state step: \(allocations)")
        XCTAssertLessThan(losses.last!, 0.25 * losses.first!, "epoch losses \(losses)")
        XCTAssertTrue(losses.allSatisfy(\.isFinite))
    }

    /// The same training run on 1 and 2 kernel threads gives bitwise identical losses and weights.
    func testOneAndTwoThreadsTrainBitwiseIdentically() throws {
        let saved = ck_threads_get()
        defer { _ = ck_threads_set(saved) }
        var runs: [([Float], [Float])] = []
        for threads: Int32 in [1, 2] {
            _ = ck_threads_set(threads)
            let store = ParameterStore()
            let plan = try ExecutionPlan(try Self.mlpGraph(learningRate: 0.05), batchSize: 64, store: store)
            var rng = RNG(seed: 21)
            try Self.initialize(store, rng: &rng)
            let (xs, ys) = Self.dataset(count: 64 * 3, rng: &rng)
            var losses: [Float] = []
            for k in 0..<3 {
                let x = try Tensor(Array(xs[(k * 64 * 784)..<((k + 1) * 64 * 784)]), shape: [64, 784])
                let y = try Tensor(Array(ys[(k * 640)..<((k + 1) * 640)]), shape: [64, 10])
                losses.append(try plan.run(["x": x, "y": y])[0].scalar)
            }
            runs.append((losses, try store.tensor("dense.kernel").floats))
        }
        XCTAssertEqual(runs[0].0.map(\.bitPattern), runs[1].0.map(\.bitPattern))
        XCTAssertEqual(runs[0].1.map(\.bitPattern), runs[1].1.map(\.bitPattern))
    }

    /// The counter does see allocations, so a zero above means something.
    func testAllocationCounterCountsAllocations() throws {
        try XCTSkipIf(mc_active() == 0, "the allocation counter stands aside under a sanitizer")
        mc_start()
        let a = [Int](repeating: 1, count: Int.random(in: 100...200))
        let n = mc_stop()
        XCTAssertGreaterThan(n, 0)
        XCTAssertGreaterThan(a.count, 0)
    }

    /// The same plan on the reference kernels follows the same trajectory
    /// (within float tolerance), and two runs from the same state agree bitwise.
    func testReferenceAndOptimizedKernelsAgreeAndRunsAreDeterministic() throws {
        let g = try Self.mlpGraph(learningRate: 0.05)
        var trajectories: [[Float]] = []
        var finals: [[Float]] = []
        for isa in [ck_best_isa(), CK_ISA_REF, ck_best_isa()] {
            let store = ParameterStore()
            let plan = try ExecutionPlan(g, batchSize: 16, store: store, isa: isa)
            var rng = RNG(seed: 5)
            try Self.initialize(store, rng: &rng)
            let (xs, ys) = Self.dataset(count: 16 * 4, rng: &rng)
            var losses: [Float] = []
            for k in 0..<4 {
                let x = try Tensor(Array(xs[(k * 16 * 784)..<((k + 1) * 16 * 784)]), shape: [16, 784])
                let y = try Tensor(Array(ys[(k * 160)..<((k + 1) * 160)]), shape: [16, 10])
                losses.append(try plan.run(["x": x, "y": y])[0].scalar)
            }
            trajectories.append(losses)
            finals.append(try store.tensor("dense.kernel").floats)
        }
        XCTAssertEqual(trajectories[0], trajectories[2], "two runs of the same plan differ")
        XCTAssertEqual(finals[0], finals[2])
        for (a, b) in zip(trajectories[0], trajectories[1]) { XCTAssertEqual(a, b, accuracy: 1e-4 * (1 + abs(b))) }
    }
}
