import Foundation
import KerasRuntime

/// Synchronous data parallelism (keras.distribution.DataParallel; Horovod's
/// design): every process builds the same model, starts from rank 0's
/// weights, trains on its shard of every batch, and averages the gradients
/// with one allreduce per step before the same optimizer update, so the
/// processes keep the same weights. Set it with `setDistribution(_:)`, or
/// with `KERAS_DISTRIBUTION=mpi` in the environment of an `mpirun` job.
public final class DataParallel {
    public let communicator: Communicator

    public init(communicator: Communicator) { self.communicator = communicator }

    /// Over the processes of the MPI job this process belongs to.
    public convenience init() throws { self.init(communicator: try MPICommunicator.world()) }

    public var rank: Int { communicator.rank }
    public var size: Int { communicator.size }

    /// Checks that every process holds the same model before anything else
    /// is exchanged (a broadcast of different weights would hang or tear):
    /// rank 0's fingerprint is broadcast, each rank compares its own, and
    /// the mismatches are summed, so that every rank throws, not only the
    /// odd one out while the others wait.
    func checkSameModel(_ fingerprint: UInt64, model: String) throws {
        var first = fingerprint
        try withUnsafeMutableBytes(of: &first) { try communicator.broadcast($0, root: 0) }
        var mismatched: [Float] = [first == fingerprint ? 0 : 1]
        try mismatched.withUnsafeMutableBufferPointer { try communicator.allreduceSum($0) }
        if mismatched[0] > 0 {
            throw KerasError("\(model): \(Int(mismatched[0])) of the \(size) processes hold a different model than rank 0 "
                + "(layers, weight names, shapes or the loss and optimizer differ); every process must build the same model")
        }
    }

    /// Rows [lo, hi) of a global batch, for this process: the batch in
    /// `size` equal shards, rank r taking the r-th; rows past the last
    /// multiple of `size` (the end of an epoch) are dropped.
    func shard(_ lo: Int, _ hi: Int) -> Range<Int> {
        let each = (hi - lo) / size
        return (lo + rank * each)..<(lo + (rank + 1) * each)
    }
}

/// The distribution training uses (nil: one process, the default).
public func setDistribution(_ d: DataParallel?) {
    Distribution.lock.lock()
    defer { Distribution.lock.unlock() }
    Distribution.current = d
    Distribution.fromEnvironmentChecked = true
    Collectives.use(d.map(\.communicator))
}

/// The distribution in effect: the one set, else KERAS_DISTRIBUTION's
/// ("mpi"; unset or empty: none), read once.
public func distribution() throws -> DataParallel? {
    Distribution.lock.lock()
    if Distribution.fromEnvironmentChecked {
        defer { Distribution.lock.unlock() }
        return Distribution.current
    }
    Distribution.lock.unlock()
    let value = ProcessInfo.processInfo.environment["KERAS_DISTRIBUTION"] ?? ""
    switch value {
    case "": setDistribution(nil)
    case "mpi": setDistribution(try DataParallel())
    default: throw KerasError("KERAS_DISTRIBUTION='\(value)' is not a distribution (mpi, or unset for one process)")
    }
    return Distribution.current
}

enum Distribution {
    static let lock = NSLock()
    nonisolated(unsafe) static var current: DataParallel?
    nonisolated(unsafe) static var fromEnvironmentChecked = false

    /// Whether this process writes what training saves (checkpoints, CSV
    /// logs): rank 0 of a distribution, or the only process. The others
    /// hold the same weights and logs, so one copy is the whole result.
    static var writesFiles: Bool { ((try? active()) ?? nil)?.rank ?? 0 == 0 }

    /// The distribution when it spans more than one process.
    static func active() throws -> DataParallel? {
        guard let d = try distribution(), d.size > 1 else { return nil }
        return d
    }
}
