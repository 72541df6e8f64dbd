import KerasIR
@testable import KerasRuntime
import CMallocCounter
import XCTest

/// The communicator's contract on one process, and the average built on
/// the sum (the MPI implementation across ranks: ToolTests' keras-mpi-check).
final class CommunicatorTests: XCTestCase {
    func testSingleProcessLeavesBuffersAsTheyAre() throws {
        let c = SingleProcessCommunicator()
        XCTAssertEqual(c.rank, 0)
        XCTAssertEqual(c.size, 1)
        var x: [Float] = [1, -2.5, .infinity, 3e-38]
        try x.withUnsafeMutableBufferPointer { try c.allreduceSum($0) }
        try x.withUnsafeMutableBufferPointer { try c.allreduceAverage($0) }
        XCTAssertEqual(x, [1, -2.5, .infinity, 3e-38])
        var bytes: [UInt8] = [1, 2, 3]
        try bytes.withUnsafeMutableBytes { try c.broadcast($0, root: 0) }
        XCTAssertEqual(bytes, [1, 2, 3])
        try c.barrier()
        XCTAssertThrowsError(try bytes.withUnsafeMutableBytes { try c.broadcast($0, root: 1) }) { error in
            XCTAssertEqual(error as? CommunicatorError, .badRoot(root: 1, size: 1))
            XCTAssertTrue("\(error)".contains("root 1"), "\(error)")
        }
    }

    /// Three ranks holding the same buffer, simulated: the sum triples it,
    /// and the average scales the sum by 1/3 once, giving back the values.
    func testAverageIsTheSumScaledOnce() throws {
        final class ThreeIdenticalRanks: Communicator {
            var rank: Int { 1 }
            var size: Int { 3 }
            func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws { for i in buffer.indices { buffer[i] *= 3 } }
            func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws {}
            func barrier() throws {}
        }
        var x: [Float] = [3, 6, -9, 0.75]
        try x.withUnsafeMutableBufferPointer { try ThreeIdenticalRanks().allreduceAverage($0) }
        XCTAssertEqual(x, [3, 6, -9, 0.75].map { Float($0) * 3 * (1 / Float(3)) })
    }

    func testMissingMPIIsExplained() {
        let e = CommunicatorError.mpiNotFound(tried: ["/x/libmpi.so"], reason: "cannot open")
        XCTAssertTrue(e.description.contains("/x/libmpi.so") && e.description.contains("KERAS_MPI_LIBRARY") && e.description.contains("openmpi-bin"), e.description)
    }

    /// A plan's allreduce_mean goes through the communicator the process
    /// uses: a copy with none; with two simulated ranks (the other holding
    /// 10 everywhere) the mean; a failed collective is an error naming the
    /// layer, the op and the communicator's reason.
    func testPlansAllreduceThroughTheCommunicatorInUse() throws {
        final class TwoRanks: Communicator {
            var fail = false
            var rank: Int { 0 }
            var size: Int { 2 }
            func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws {
                if fail { throw CommunicatorError.mpiCallFailed(call: "MPI_Allreduce", code: 15, message: "MPI_ERR_PROC_FAILED: rank 1 is gone") }
                for i in buffer.indices { buffer[i] += 10 }
            }
            func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws {}
            func barrier() throws {}
        }
        defer { Collectives.use(nil) }
        let b = GraphBuilder(name: "avg")
        let x = try b.input("x", .f32([-1, 3]))
        b.setOutputs([try b.withLayer("grads") { try b.allreduceMean(x) }])
        let plan = try ExecutionPlan(b.graph, batchSize: 2, store: ParameterStore())
        let values: [Float] = [1, -2, 3.5, 0, 4, -6]
        try plan.setInput("x", Tensor(values, shape: [2, 3]))
        Collectives.use(nil)
        try plan.run()
        XCTAssertEqual(plan.output(0).floats, values)
        let two = TwoRanks()
        Collectives.use(two)
        XCTAssertTrue(Collectives.communicator === two)
        try plan.run()
        XCTAssertEqual(plan.output(0).floats, values.map { ($0 + 10) * 0.5 })
        two.fail = true
        XCTAssertThrowsError(try plan.run()) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("grads") && text.contains("allreduce_mean") && text.contains("rank 1 is gone"), text)
        }
    }
}

/// The collective watchdog's per-call cost: arming and disarming a deadline
/// around a call allocates nothing once its thread runs, and returns the
/// call's result (its firing ends the process: ToolTests' hung-rank test).
final class CollectiveWatchdogTests: XCTestCase {
    func testGuardingACallAllocatesNothing() throws {
        try XCTSkipIf(mc_active() == 0, "the allocation counter stands aside under a sanitizer")
        let watchdog = CollectiveWatchdog(timeout: 600, rank: 0)
        XCTAssertEqual(watchdog.guarding("MPI_Barrier", count: 0) { Int32(7) }, 7)  // starts the thread
        var sum: Int32 = 0
        mc_start()
        for i in 0..<100 { sum &+= watchdog.guarding("MPI_Allreduce", count: i) { Int32(i) } }
        XCTAssertEqual(mc_stop(), 0, "heap allocations in 100 guarded calls")
        XCTAssertEqual(sum, 4950)
        let off = CollectiveWatchdog(timeout: 0, rank: 0)
        XCTAssertEqual(off.guarding("MPI_Barrier", count: 0) { Int32(3) }, 3, "a timeout of 0 runs the call unguarded")
    }
}
