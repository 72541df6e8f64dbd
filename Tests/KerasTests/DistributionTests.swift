@testable import Keras
import KerasRuntime
import XCTest

/// DataParallel within one process: shards of a global batch, the batch
/// size that does not split evenly, and the graph a distributed step
/// compiles to (the ranks themselves: ToolTests' keras-mpi-check --train).
final class DistributionTests: XCTestCase {
    /// Rank 1 of 2, whose collectives leave buffers as they are (only what
    /// happens before the first collective is checked here).
    final class SecondOfTwo: Communicator {
        var rank: Int { 1 }
        var size: Int { 2 }
        func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws {}
        func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws {}
        func barrier() throws {}
    }

    func testShardsAreEqualAndTheRemainderIsDropped() {
        let dp = DataParallel(communicator: SecondOfTwo())
        XCTAssertEqual(dp.shard(0, 128), 64..<128)
        XCTAssertEqual(dp.shard(128, 133), 130..<132)  // 5 rows: 2 each, the fifth dropped
        XCTAssertEqual(dp.shard(7, 8), 7..<7)           // 1 row: nothing for either rank
    }

    func testBatchThatDoesNotSplitIsAnErrorAndTheStepAverages() throws {
        defer { setDistribution(nil) }
        let m = try Sequential([Dense(3, activation: "relu", inputShape: [4]), Dense(2)], name: "dp")
        try m.compile(optimizer: SGD(learningRate: 0.1), loss: "mse")
        let x = try Tensor((0..<24).map { Float($0) / 24 }, shape: [6, 4]), y = try Tensor([Float](repeating: 0.5, count: 12), shape: [6, 2])
        setDistribution(DataParallel(communicator: SecondOfTwo()))
        XCTAssertThrowsError(try m.fit(x, y, batchSize: 3, verbose: 0)) { error in
            XCTAssertTrue("\(error)".contains("batch_size 3 is not divisible by the 2 processes"), "\(error)")
        }
        // the training step of a distributed model averages its gradients, loss and metrics
        let text = try m.stepGraph(training: true).description
        XCTAssertEqual(text.components(separatedBy: "allreduce_mean").count - 1, 4 + 1, text)  // 2 kernels + 2 biases, the loss
        setDistribution(nil)
        XCTAssertFalse(try m.stepGraph(training: true).description.contains("allreduce_mean"))
    }

    /// Rank 0 holds another model (its fingerprint, broadcast, differs from
    /// this one's; the summed mismatch flags count another odd rank too):
    /// fit fails before any weight is exchanged, naming the difference.
    func testProcessesWithDifferentModelsAreAnError() throws {
        final class OtherModelAtRankZero: Communicator {
            var rank: Int { 1 }
            var size: Int { 3 }
            var broadcasts = 0
            func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws { for i in buffer.indices { buffer[i] += 1 } }
            func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws {
                broadcasts += 1
                for i in buffer.indices { buffer[i] = buffer[i] &+ 1 }
            }
            func barrier() throws {}
        }
        defer { setDistribution(nil) }
        let m = try Sequential([Dense(2, inputShape: [3])], name: "odd")
        try m.compile(optimizer: SGD(learningRate: 0.1), loss: "mse")
        let before = m.getWeights().map(\.floats)
        let comm = OtherModelAtRankZero()
        setDistribution(DataParallel(communicator: comm))
        let x = try Tensor([Float](repeating: 1, count: 12), shape: [4, 3]), y = try Tensor([Float](repeating: 0, count: 8), shape: [4, 2])
        XCTAssertThrowsError(try m.fit(x, y, batchSize: 3, verbose: 0)) { error in
            XCTAssertTrue("\(error)".contains("2 of the 3 processes hold a different model than rank 0"), "\(error)")
        }
        XCTAssertEqual(comm.broadcasts, 1, "only the fingerprint was exchanged")
        XCTAssertEqual(m.getWeights().map(\.floats), before, "no weight changed")
    }
}
