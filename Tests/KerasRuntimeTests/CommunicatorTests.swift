import KerasRuntime
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
}
