import Foundation
import XCTest
@testable import Keras

/// Two compiled plans running at once on two OS threads — a convolutional
/// model (few-channel first layer, indirect GEMM, pooling, dropout, Adam) and
/// the recurrent one (Embedding → LSTM, packed recurrent kernel) — give the
/// same weights, bit for bit, as each trained alone: no kernel shares
/// scratch between callers, and whichever caller finds the thread pool taken
/// runs its tasks itself.
final class ConcurrentPlansTests: XCTestCase {
    /// A model with its batch, trained by `steps` calls on whichever thread runs it.
    final class Job: @unchecked Sendable {
        let model: Model
        let x: Tensor, y: Tensor
        var weights: [UInt32] = []
        var error: Error?
        init(_ model: Model, _ batch: (Tensor, Tensor)) { self.model = model; (x, y) = batch }
        func train(steps: Int) {
            do {
                for _ in 0..<steps { _ = try model.trainOnBatch(x, y) }
                weights = model.getWeights().flatMap { $0.floats.map(\.bitPattern) }
            } catch { self.error = error }
        }
    }

    func jobs() throws -> [Job] {
        [Job(try SteadyStateTests.makeModel(), try SteadyStateTests.batch()),
         Job(try RecurrentSteadyStateTests.makeModel(), try RecurrentSteadyStateTests.batch())]
    }

    func testTwoPlansAtOnceGiveTheBitsEachGivesAlone() throws {
        let saved = KernelThreads.count
        defer { _ = try? KernelThreads.set(saved) }
        try KernelThreads.set(2)  // so both callers want the pool
        let steps = 6
        let alone = try jobs()
        for job in alone { job.train(steps: steps) }

        for round in 0..<3 {
            let together = try jobs()
            let done = DispatchGroup()
            for job in together {
                done.enter()
                let thread = Thread { job.train(steps: steps); done.leave() }
                thread.stackSize = 8 << 20
                thread.start()
            }
            done.wait()
            for (k, (a, b)) in zip(alone, together).enumerated() {
                XCTAssertNil(a.error ?? b.error, "model \(k) failed: \(String(describing: a.error ?? b.error))")
                XCTAssertEqual(a.weights.count, b.weights.count)
                XCTAssertGreaterThan(a.weights.count, 0)
                let differing = zip(a.weights, b.weights).filter { $0 != $1 }.count
                XCTAssertEqual(differing, 0, "round \(round), model \(a.model.name): \(differing) of \(a.weights.count) weights differ from training alone")
            }
        }
    }
}
