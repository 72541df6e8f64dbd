import CKernels
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Which communicator the plans' `allreduce_mean` kernels average over:
/// none (one process: the kernel is a copy) until a distribution sets one.
/// The C kernel calls back through `ck_set_allreduce_hook`; a collective
/// that fails returns a code, the plan throws, and `lastError` says why.
public enum Collectives {
    /// Routes every plan's allreduce through `communicator` (nil: none). One
    /// communicator per process, set before training starts.
    public static func use(_ communicator: Communicator?) {
        lock.lock()
        defer { lock.unlock() }
        // the previous box stays alive: a kernel may still hold its pointer
        if let c = communicator {
            let box = Box(c)
            boxes.append(box)
            ck_set_allreduce_hook(hook, Unmanaged.passUnretained(box).toOpaque())
        } else {
            ck_set_allreduce_hook(nil, nil)
        }
        current = communicator
    }

    /// The communicator in use, if any.
    public static var communicator: Communicator? {
        lock.lock()
        defer { lock.unlock() }
        return current
    }

    /// Seconds spent in allreduces since the process started (keras-bench
    /// --distributed splits a step into computation and communication with it).
    public static var allreduceSeconds: Double {
        lock.lock()
        defer { lock.unlock() }
        return spent
    }

    /// Why the last failed allreduce failed (the plan reports it with the op).
    public static var lastError: Error? {
        lock.lock()
        defer { lock.unlock() }
        return failure
    }

    private final class Box {
        let communicator: Communicator
        init(_ c: Communicator) { communicator = c }
    }
    private static let lock = NSLock()
    nonisolated(unsafe) private static var boxes: [Box] = []
    nonisolated(unsafe) private static var current: Communicator?
    nonisolated(unsafe) private static var failure: Error?
    nonisolated(unsafe) private static var spent: Double = 0

    private static func seconds() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }

    private static let hook: ck_allreduce_hook = { context, data, n in
        let box = Unmanaged<Box>.fromOpaque(context!).takeUnretainedValue()
        let start = Collectives.seconds()
        defer {
            let took = Collectives.seconds() - start
            Collectives.lock.lock()
            Collectives.spent += took
            Collectives.lock.unlock()
        }
        do {
            try box.communicator.allreduceAverage(UnsafeMutableBufferPointer(start: data, count: Int(n)))
            return 0
        } catch {
            Collectives.lock.lock()
            Collectives.failure = error
            Collectives.lock.unlock()
            return 1
        }
    }
}
