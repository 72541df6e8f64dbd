/// The processes that train one model together (data parallelism, after
/// Horovod and keras.distribution.DataParallel): each knows its rank and the
/// group's size, and they meet in the collectives a synchronous training
/// step needs — gradients averaged in place, rank 0's initial weights
/// broadcast, a barrier. One process is a group of one; `MPICommunicator`
/// spans processes and machines.
public protocol Communicator: AnyObject {
    /// This process's index in the group, 0 ..< size.
    var rank: Int { get }
    /// How many processes the group has.
    var size: Int { get }
    /// Every rank's `buffer` replaced by the element-wise sum over the ranks.
    func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws
    /// Every rank's `buffer` replaced by `root`'s bytes.
    func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws
    /// Returns once every rank has called it.
    func barrier() throws
    /// While on, the process is in work every rank does in step (a
    /// distributed fit), where leaving would leave the others waiting.
    func setInLockstep(_ on: Bool)
}

extension Communicator {
    public func setInLockstep(_ on: Bool) {}

    /// The element-wise mean over the ranks: the sum, then one scaling by
    /// 1/size, the same on every rank (so the ranks keep bitwise-equal weights).
    public func allreduceAverage(_ buffer: UnsafeMutableBufferPointer<Float>) throws {
        try allreduceSum(buffer)
        if size > 1 {
            let scale = 1 / Float(size)
            for i in buffer.indices { buffer[i] *= scale }
        }
    }
}

/// A group of one: the collectives leave every buffer as it is.
public final class SingleProcessCommunicator: Communicator {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws {}
    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws {
        guard root == 0 else { throw CommunicatorError.badRoot(root: root, size: 1) }
    }
    public func barrier() throws {}
}

/// Why a collective or the set-up of a group failed.
public enum CommunicatorError: Error, CustomStringConvertible, Equatable {
    /// No MPI library could be loaded: the paths tried and the loader's last message.
    case mpiNotFound(tried: [String], reason: String)
    /// The library loaded but lacks a symbol this Open MPI ABI needs.
    case mpiSymbolMissing(library: String, symbol: String)
    /// An MPI call returned an error code.
    case mpiCallFailed(call: String, code: Int32, message: String)
    /// A broadcast from a rank outside the group.
    case badRoot(root: Int, size: Int)
    /// KERAS_COLLECTIVE_TIMEOUT is not a number of seconds.
    case badTimeout(String)

    public var description: String {
        switch self {
        case let .mpiNotFound(tried, reason):
            return "MPI was asked for but no MPI library could be loaded (tried \(tried.joined(separator: ", ")); last error: \(reason)). "
                + "Install Open MPI (Debian: apt-get install openmpi-bin) or set KERAS_MPI_LIBRARY to its libmpi.so."
        case let .mpiSymbolMissing(library, symbol):
            return "\(library) has no symbol '\(symbol)': not an Open MPI library this build can use (Open MPI 4 or later's ABI is expected)"
        case let .mpiCallFailed(call, code, message):
            return "\(call) failed with MPI error \(code): \(message)"
        case let .badRoot(root, size):
            return "broadcast root \(root) is not a rank of a group of \(size)"
        case let .badTimeout(text):
            return "KERAS_COLLECTIVE_TIMEOUT='\(text)' is not a number of seconds >= 0 (0 turns the collective timeout off)"
        }
    }
}
