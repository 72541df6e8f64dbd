import CMallocCounter
import Foundation
import XCTest
@testable import Keras

/// A convolutional training step, run as its compiled plan, allocates nothing
/// once warm — the few-channel first layer, the indirect-GEMM second layer,
/// pooling, dropout and Adam included — and gives bitwise the same weights on
/// one and two threads.
final class SteadyStateTests: XCTestCase {
    static func makeModel() throws -> Sequential {
        RandomSeed.set(5)
        let m = try Sequential([
            Conv2D(8, 3, activation: "relu", inputShape: [20, 20, 1]), Conv2D(16, 3, padding: "same", activation: "relu"),
            MaxPooling2D(2), Dropout(0.25), Flatten(), Dense(10, activation: "softmax"),
        ], name: "steady_cnn")
        try m.compile(optimizer: Adam(learningRate: 1e-3), loss: "categorical_crossentropy")
        return m
    }

    static func batch() throws -> (Tensor, Tensor) {
        var g = SplitMix64(seed: 3)
        // large enough that the first layer's GEMM and the elementwise kernels split across threads
        let x = try Tensor((0..<(64 * 400)).map { _ in Float(g.next() % 1000) / 1000 }, shape: [64, 20, 20, 1])
        let y = try toCategorical((0..<64).map { _ in Int(g.next() % 10) }, numClasses: 10)
        return (x, y)
    }

    func testConvolutionalTrainingStepAllocatesNothing() throws {
        try XCTSkipIf(mc_active() == 0, "the allocation counter stands aside under a sanitizer")
        let (x, y) = try Self.batch()
        let (counts, loss) = try steadyStepAllocations(try Self.makeModel(), x, y)
        XCTAssertEqual(counts, [0, 0, 0, 0, 0], "heap allocations per steady-state convolutional step")
        XCTAssertTrue(loss.isFinite)
    }

    func testConvolutionalTrainingIsBitwiseTheSameOnOneAndTwoThreads() throws {
        let results = try weightsAfterTrainingOnOneAndTwoThreads(Self.makeModel, Self.batch)
        XCTAssertEqual(results[0].count, results[1].count)
        XCTAssertTrue(results[0] == results[1], "weights differ between 1 and 2 threads")
    }

    func testThreadCountIsCheckedAndRestored() throws {
        let saved = KernelThreads.count
        XCTAssertThrowsError(try KernelThreads.set(0)) { XCTAssertTrue("\($0)".contains("between 1 and"), "\($0)") }
        XCTAssertThrowsError(try KernelThreads.set(KernelThreads.maximum + 1))
        XCTAssertEqual(KernelThreads.count, saved, "a refused count changes nothing")
        XCTAssertEqual(try KernelThreads.set(1), saved)
        XCTAssertEqual(KernelThreads.count, 1)
        try KernelThreads.set(saved)
    }
}

/// The recurrent model of the benchmark suite (Embedding → LSTM → Dense
/// sigmoid, Adam) at test size: a warm training step allocates nothing and
/// training is bitwise the same on one and two threads.
final class RecurrentSteadyStateTests: XCTestCase {
    static func makeModel() throws -> Model {
        RandomSeed.set(6)
        let ids = Input(shape: [12], dtype: .i32)
        let h = try LSTM(32)(try Embedding(inputDim: 200, outputDim: 16)(ids))
        let m = try Model(inputs: ids, outputs: try Dense(1, activation: "sigmoid")(h), name: "steady_lstm")
        try m.compile(optimizer: Adam(learningRate: 1e-3), loss: "binary_crossentropy")
        return m
    }

    static func batch() throws -> (Tensor, Tensor) {
        var g = SplitMix64(seed: 4)
        let x = try Tensor((0..<(64 * 12)).map { _ in Int32(g.next() % 200) }, shape: [64, 12])
        let y = try Tensor((0..<64).map { _ in Float(g.next() % 2) }, shape: [64, 1])
        return (x, y)
    }

    func testLSTMTrainingStepAllocatesNothing() throws {
        try XCTSkipIf(mc_active() == 0, "the allocation counter stands aside under a sanitizer")
        let (x, y) = try Self.batch()
        let (counts, loss) = try steadyStepAllocations(try Self.makeModel(), x, y)
        XCTAssertEqual(counts, [0, 0, 0, 0, 0], "heap allocations per steady-state LSTM step")
        XCTAssertTrue(loss.isFinite)
    }

    func testLSTMTrainingIsBitwiseTheSameOnOneAndTwoThreads() throws {
        let results = try weightsAfterTrainingOnOneAndTwoThreads(Self.makeModel, Self.batch)
        XCTAssertEqual(results[0].count, results[1].count)
        XCTAssertTrue(results[0] == results[1], "weights differ between 1 and 2 threads")
    }
}

/// Heap allocations of each of `runs` warm training steps of `model` on (x, y),
/// run as its compiled plan.
func steadyStepAllocations(_ model: Model, _ x: Tensor, _ y: Tensor, runs: Int = 5) throws -> (counts: [Int64], loss: Float) {
    let plan = try model.trainingPlan(x: [x], y: [y])
    for _ in 0..<3 { _ = try model.trainOnBatch(x, y) }  // warm: staging buffers, kernel scratch
    try x.withRawBytes { try plan.setInput(model.inputNames[0], bytes: $0) }
    try y.withRawBytes { try plan.setInput(model.outputNames[0] + "_target", bytes: $0) }
    var counts: [Int64] = []
    for _ in 0..<runs {
        mc_start()
        try plan.run()
        counts.append(mc_stop())
    }
    return (counts, plan.scalarOutput(0))
}

/// The weights' bit patterns after four training steps on 1 and on 2 threads.
func weightsAfterTrainingOnOneAndTwoThreads(_ make: () throws -> Model, _ batch: () throws -> (Tensor, Tensor)) throws -> [[UInt32]] {
    let saved = KernelThreads.count
    defer { _ = try? KernelThreads.set(saved) }
    var results: [[UInt32]] = []
    for threads in [1, 2] {
        try KernelThreads.set(threads)
        let model = try make()
        let (x, y) = try batch()
        for _ in 0..<4 { _ = try model.trainOnBatch(x, y) }
        results.append(model.getWeights().flatMap { $0.floats.map(\.bitPattern) })
    }
    return results
}

/// A data-parallel step in one process, against two simulated ranks that
/// hold the same gradients (their sum is twice the gradient, and halving is
/// exact): one allreduce per step over the packed gradients, no heap
/// allocation once warm (the hook, the communicator and the averaging
/// included), and bitwise the weights of training without a distribution —
/// so every gradient reaches its update through its block of the pack.
final class DataParallelStepTests: XCTestCase {
    final class TwoIdenticalRanks: Communicator {
        var rank: Int { 0 }
        var size: Int { 2 }
        func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws {
            for i in buffer.indices { buffer[i] += buffer[i] }
        }
        func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws {}
        func barrier() throws {}
    }

    func testOneAllreducePerStepAllocatesNothingAndMatchesOneProcess() throws {
        let (x, y) = try SteadyStateTests.batch()
        let alone = try SteadyStateTests.makeModel()
        for _ in 0..<4 { _ = try alone.trainOnBatch(x, y) }
        setDistribution(DataParallel(communicator: TwoIdenticalRanks()))
        defer { setDistribution(nil) }
        let model = try SteadyStateTests.makeModel()
        for _ in 0..<4 { _ = try model.trainOnBatch(x, y) }
        XCTAssertTrue(model.getWeights().map { $0.floats.map(\.bitPattern) } == alone.getWeights().map { $0.floats.map(\.bitPattern) },
                      "weights after 4 data-parallel steps differ from one process's")
        let plan = try model.trainingPlan(x: [x], y: [y])
        let collectives = plan.steps.filter { plan.graph.nodes[$0.node].op == "allreduce_mean" }
        XCTAssertEqual(collectives.count, 1, "one allreduce per step")
        XCTAssertTrue(plan.steps.allSatisfy { plan.graph.nodes[$0.node].op != "pack" }, "every gradient written in place in the pack")
        if mc_active() != 0 {
            let (counts, loss) = try steadyStepAllocations(model, x, y)
            XCTAssertEqual(counts, [0, 0, 0, 0, 0], "heap allocations per steady-state data-parallel step")
            XCTAssertTrue(loss.isFinite)
        }
    }
}
