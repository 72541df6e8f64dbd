#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// The processes of an MPI job (`mpirun -np N ...`) as a `Communicator`.
///
/// MPI is not a build dependency: the system's libmpi is opened at run time
/// (`KERAS_MPI_LIBRARY`, else Open MPI's `libmpi.so.40`, else `libmpi.so`)
/// and its functions and predefined handles are looked up by name in Open
/// MPI's ABI, where a handle is the address of a global object
/// (`MPI_COMM_WORLD` is `&ompi_mpi_comm_world`) and `MPI_IN_PLACE` is 1. So a
/// machine without MPI builds and runs everything else, and asking for MPI
/// there is an error that names what was looked for. MPI is initialized once
/// per process (funneled: only the calling thread talks to MPI), errors
/// return codes instead of aborting the job, and at exit MPI is finalized —
/// or, when the process exits with a failure status (an error on one rank)
/// or in the middle of lockstep work (`setInLockstep`), the whole job is
/// aborted, so the other ranks stop instead of waiting forever in their next
/// collective. Every blocking call (and the finalize) runs under a deadline
/// (`CollectiveWatchdog`, KERAS_COLLECTIVE_TIMEOUT seconds): a rank that
/// hangs, or dies in a way no handler sees, stops the job within it.
public final class MPICommunicator: Communicator, @unchecked Sendable {
    public let rank: Int
    public let size: Int
    /// The library that was loaded.
    public let library: String
    private let api: MPIFunctions
    private let watchdog: CollectiveWatchdog

    /// The job's world communicator, set up on first use.
    public static func world() throws -> MPICommunicator {
        worldLock.lock()
        defer { worldLock.unlock() }
        if let w = worldInstance { return w }
        let w = try MPICommunicator()
        worldInstance = w
        return w
    }
    private static let worldLock = NSLock()
    nonisolated(unsafe) private static var worldInstance: MPICommunicator?

    /// Where MPI is looked for, in order.
    public static var librarySearchPath: [String] {
        if let path = ProcessInfo.processInfo.environment["KERAS_MPI_LIBRARY"], !path.isEmpty { return [path] }
        return ["libmpi.so.40", "libmpi.so"]
    }

    private init() throws {
        let timeout = try CollectiveWatchdog.configuredTimeout()
        let (handle, path) = try Self.open(Self.librarySearchPath)
        let api = try MPIFunctions(handle: handle, library: path)
        var initialized: Int32 = 0
        try api.check(api.initialized(&initialized), "MPI_Initialized")
        if initialized == 0 {
            var provided: Int32 = 0
            try api.check(api.initThread(nil, nil, 1 /* MPI_THREAD_FUNNELED */, &provided), "MPI_Init_thread")
            mpiAtExit = (api.finalize, api.abort, api.commWorld)
            // a clean exit finalizes (under the deadline); a failing one (a rank's error), or any exit in
            // the middle of lockstep work, aborts the whole job, so the other ranks stop at once instead
            // of waiting forever in their next collective
            on_exit({ status, _ in
                guard let (finalize, abort, world) = mpiAtExit else { return }
                if status != 0 || mpiInLockstep {
                    if status == 0 {
                        fputs("keras: a process exited during distributed training (status 0): aborting the job, whose other processes would wait for it\n", stderr)
                    }
                    _ = abort(world, status != 0 ? status : 1)
                } else if let w = mpiWatchdog {
                    _ = w.guarding("MPI_Finalize", count: 0) { finalize() }
                } else {
                    _ = finalize()
                }
            }, nil)
        }
        try api.check(api.commSetErrhandler(api.commWorld, api.errorsReturn), "MPI_Comm_set_errhandler")
        var r: Int32 = 0, s: Int32 = 0
        try api.check(api.commRank(api.commWorld, &r), "MPI_Comm_rank")
        try api.check(api.commSize(api.commWorld, &s), "MPI_Comm_size")
        self.api = api
        self.library = path
        self.rank = Int(r)
        self.size = Int(s)
        watchdog = CollectiveWatchdog(timeout: timeout, rank: Int(r))
        if mpiAtExit != nil { mpiWatchdog = watchdog }
    }

    /// Seconds a blocking MPI call may take before the watchdog ends the process (0: no limit).
    public var timeout: Double { watchdog.timeout }

    /// While on, this process is in work every rank does in step (a
    /// distributed fit): leaving now, even with status 0, aborts the job.
    public func setInLockstep(_ on: Bool) { mpiInLockstep = on }

    private static func open(_ candidates: [String]) throws -> (UnsafeMutableRawPointer, String) {
        var reason = "not tried"
        for path in candidates {
            // global: Open MPI's own plugins resolve their symbols against libmpi
            if let h = dlopen(path, RTLD_NOW | RTLD_GLOBAL) { return (h, path) }
            reason = dlerror().map { String(cString: $0) } ?? "dlopen failed"
        }
        throw CommunicatorError.mpiNotFound(tried: candidates, reason: reason)
    }

    /// MPI counts are 32-bit: long buffers go in pieces of at most 2^30 elements.
    private static let maxCount = 1 << 30

    public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws {
        guard let base = buffer.baseAddress, size > 1 else { return }
        var done = 0
        while done < buffer.count {
            let n = min(Self.maxCount, buffer.count - done)
            try api.check(watchdog.guarding("MPI_Allreduce", count: n) {
                api.allreduce(api.inPlace, base + done, Int32(n), api.float, api.opSum, api.commWorld)
            }, "MPI_Allreduce")
            done += n
        }
    }

    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws {
        guard root >= 0 && root < size else { throw CommunicatorError.badRoot(root: root, size: size) }
        guard let base = buffer.baseAddress, size > 1 else { return }
        var done = 0
        while done < buffer.count {
            let n = min(Self.maxCount, buffer.count - done)
            try api.check(watchdog.guarding("MPI_Bcast", count: n) { api.bcast(base + done, Int32(n), api.byte, Int32(root), api.commWorld) }, "MPI_Bcast")
            done += n
        }
    }

    public func barrier() throws {
        try api.check(watchdog.guarding("MPI_Barrier", count: 0) { api.barrier(api.commWorld) }, "MPI_Barrier")
    }
}

/// MPI_Finalize, MPI_Abort and the world for the exit handler (set once, before it is registered).
nonisolated(unsafe) private var mpiAtExit: (MPIFunctions.Finalize, MPIFunctions.Abort, MPIFunctions.Handle)?
/// The deadline the exit handler finalizes under.
nonisolated(unsafe) private var mpiWatchdog: CollectiveWatchdog?
/// Whether the process is in lockstep work (MPICommunicator.setInLockstep).
nonisolated(unsafe) private var mpiInLockstep = false

/// The MPI functions and predefined handles this library uses, resolved by name.
struct MPIFunctions {
    typealias Handle = UnsafeMutableRawPointer
    typealias Initialized = @convention(c) (UnsafeMutablePointer<Int32>?) -> Int32
    typealias InitThread = @convention(c) (UnsafeMutablePointer<Int32>?, UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?,
                                           Int32, UnsafeMutablePointer<Int32>?) -> Int32
    typealias Finalize = @convention(c) () -> Int32
    typealias Abort = @convention(c) (Handle?, Int32) -> Int32
    typealias CommQuery = @convention(c) (Handle?, UnsafeMutablePointer<Int32>?) -> Int32
    typealias SetErrhandler = @convention(c) (Handle?, Handle?) -> Int32
    typealias Allreduce = @convention(c) (UnsafeRawPointer?, UnsafeMutableRawPointer?, Int32, Handle?, Handle?, Handle?) -> Int32
    typealias Bcast = @convention(c) (UnsafeMutableRawPointer?, Int32, Handle?, Int32, Handle?) -> Int32
    typealias Barrier = @convention(c) (Handle?) -> Int32
    typealias ErrorString = @convention(c) (Int32, UnsafeMutablePointer<CChar>?, UnsafeMutablePointer<Int32>?) -> Int32

    let initialized: Initialized, initThread: InitThread, finalize: Finalize, abort: Abort
    let commRank: CommQuery, commSize: CommQuery, commSetErrhandler: SetErrhandler
    let allreduce: Allreduce, bcast: Bcast, barrier: Barrier, errorString: ErrorString
    let commWorld: Handle, float: Handle, byte: Handle, opSum: Handle, errorsReturn: Handle
    /// MPI_IN_PLACE in Open MPI.
    let inPlace = UnsafeRawPointer(bitPattern: 1)

    init(handle: UnsafeMutableRawPointer, library: String) throws {
        func symbol(_ name: String) throws -> UnsafeMutableRawPointer {
            guard let p = dlsym(handle, name) else { throw CommunicatorError.mpiSymbolMissing(library: library, symbol: name) }
            return p
        }
        func function<F>(_ name: String, _ type: F.Type) throws -> F { unsafeBitCast(try symbol(name), to: type) }
        initialized = try function("MPI_Initialized", Initialized.self)
        initThread = try function("MPI_Init_thread", InitThread.self)
        finalize = try function("MPI_Finalize", Finalize.self)
        abort = try function("MPI_Abort", Abort.self)
        commRank = try function("MPI_Comm_rank", CommQuery.self)
        commSize = try function("MPI_Comm_size", CommQuery.self)
        commSetErrhandler = try function("MPI_Comm_set_errhandler", SetErrhandler.self)
        allreduce = try function("MPI_Allreduce", Allreduce.self)
        bcast = try function("MPI_Bcast", Bcast.self)
        barrier = try function("MPI_Barrier", Barrier.self)
        errorString = try function("MPI_Error_string", ErrorString.self)
        commWorld = try symbol("ompi_mpi_comm_world")
        float = try symbol("ompi_mpi_float")
        byte = try symbol("ompi_mpi_byte")
        opSum = try symbol("ompi_mpi_op_sum")
        errorsReturn = try symbol("ompi_mpi_errors_return")
    }

    /// Throws when `code` is not MPI_SUCCESS, with MPI's own text for it.
    func check(_ code: Int32, _ call: String) throws {
        guard code != 0 else { return }
        var text = [CChar](repeating: 0, count: 512)  // MPI_MAX_ERROR_STRING is 256 in Open MPI
        var length: Int32 = 0
        let message = errorString(code, &text, &length) == 0 ? String(cString: text) : "no description"
        throw CommunicatorError.mpiCallFailed(call: call, code: code, message: message)
    }
}
