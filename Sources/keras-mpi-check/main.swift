// keras-mpi-check: whether this machine's MPI carries a data-parallel
// training step. Run it as the training will run, e.g.
//     mpirun -np 2 keras-mpi-check
// Every rank loads MPI the way training does (KERAS_MPI_LIBRARY, else
// libmpi.so.40, else libmpi.so), then checks the collectives a step uses
// against values it can work out alone: an allreduce sum and average (a
// short buffer and one of 3M floats), broadcasts from the first and last
// rank, a barrier. Prints a line per rank; exit 0 when all agree, 1 when a
// value is wrong, 2 when MPI cannot be loaded or a call fails.
import Foundation
import KerasRuntime

func fail(_ message: String, status: Int32) -> Never {
    FileHandle.standardError.write(Data("keras-mpi-check: \(message)\n".utf8))
    exit(status)
}

if CommandLine.arguments.count > 1 {
    if ["-h", "--help"].contains(CommandLine.arguments[1]) {
        print("usage: mpirun -np N keras-mpi-check   (checks allreduce, broadcast and barrier across the N ranks)")
        exit(0)
    }
    fail("takes no arguments, got '\(CommandLine.arguments.dropFirst().joined(separator: " "))'", status: 2)
}

do {
    let comm = try MPICommunicator.world()
    let r = comm.rank, n = comm.size
    // every element is a small integer times (rank + 1): sums over the ranks are exact
    for count in [1000, 3_000_000] {
        var x = (0..<count).map { Float($0 % 7) * Float(r + 1) }
        try x.withUnsafeMutableBufferPointer { try comm.allreduceSum($0) }
        let ranks = Float(n * (n + 1) / 2)
        if let i = x.indices.first(where: { x[$0] != Float($0 % 7) * ranks }) {
            fail("rank \(r): allreduce sum of \(count) floats: element \(i) is \(x[i]), expected \(Float(i % 7) * ranks)", status: 1)
        }
        var y = (0..<count).map { _ in Float(2 * (r + 1)) }
        try y.withUnsafeMutableBufferPointer { try comm.allreduceAverage($0) }
        if let i = y.indices.first(where: { y[$0] != Float(n + 1) }) {
            fail("rank \(r): allreduce average of \(count) floats: element \(i) is \(y[i]), expected \(Float(n + 1))", status: 1)
        }
    }
    for root in n > 1 ? [0, n - 1] : [0] {  // the same order on every rank (a Set's is per process)
        var bytes = [UInt8](repeating: UInt8(truncatingIfNeeded: r), count: 4099)
        if r == root { for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: i &* 31 &+ root) } }
        try bytes.withUnsafeMutableBytes { try comm.broadcast($0, root: root) }
        if let i = bytes.indices.first(where: { bytes[$0] != UInt8(truncatingIfNeeded: $0 &* 31 &+ root) }) {
            fail("rank \(r): broadcast from rank \(root): byte \(i) is \(bytes[i])", status: 1)
        }
    }
    try comm.barrier()
    print("rank \(r) of \(n): allreduce (sum, average), broadcast and barrier agree (\(comm.library))")
} catch let e as CommunicatorError {
    fail(e.description, status: 2)
} catch {
    fail("\(error)", status: 2)
}
