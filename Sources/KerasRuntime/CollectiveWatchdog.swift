#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A deadline on every blocking MPI call. A collective only returns when
/// every rank joins it, so a rank that died without aborting the job or
/// hangs outside MPI would leave the others waiting forever; MPI has no
/// timeout of its own. The watchdog thread sleeps until the armed call's
/// deadline and, if the call is still running then, says which call on
/// which rank waited how long and ends the process with status 124 — mpirun
/// then stops the whole job (as PyTorch's NCCL watchdog and Horovod's stall
/// check do). Arming and disarming take a lock and allocate nothing.
final class CollectiveWatchdog: @unchecked Sendable {
    /// Seconds a call may block: KERAS_COLLECTIVE_TIMEOUT, else 600 (PyTorch's NCCL default); 0 turns the watchdog off.
    let timeout: Double
    private let rank: Int
    private let condition = NSCondition()
    private var deadline: Date?
    private var call: StaticString = ""
    private var count = 0
    private var started = false

    /// The timeout KERAS_COLLECTIVE_TIMEOUT asks for, or why it cannot be used.
    static func configuredTimeout() throws -> Double {
        guard let text = ProcessInfo.processInfo.environment["KERAS_COLLECTIVE_TIMEOUT"], !text.isEmpty else { return 600 }
        guard let t = Double(text), t >= 0, t.isFinite else {
            throw CommunicatorError.badTimeout(text)
        }
        return t
    }

    init(timeout: Double, rank: Int) {
        self.timeout = timeout
        self.rank = rank
    }

    /// Runs `body` (one blocking MPI call of `count` elements) under the deadline.
    func guarding<T>(_ call: StaticString, count: Int, _ body: () throws -> T) rethrows -> T {
        guard timeout > 0 else { return try body() }
        condition.lock()
        if !started {
            started = true
            let t = Thread { self.watch() }  // holds the watchdog: one per process, for the process's life
            t.name = "keras-collective-watchdog"
            t.start()
        }
        deadline = Date(timeIntervalSinceNow: timeout)
        self.call = call
        self.count = count
        condition.signal()
        condition.unlock()
        defer {
            condition.lock()
            deadline = nil
            condition.unlock()
        }
        return try body()
    }

    private func watch() {
        condition.lock()
        while true {
            guard let d = deadline else {
                condition.wait()
                continue
            }
            if Date() < d {
                _ = condition.wait(until: d)
                continue
            }
            let message = "keras: rank \(rank): \(call) of \(count) elements did not complete within \(formatted(timeout)) s "
                + "(KERAS_COLLECTIVE_TIMEOUT): another process has exited or stopped making progress; ending this one so that mpirun stops the job\n"
            fputs(message, stderr)
            fflush(stderr)
            _exit(124)
        }
    }

    private func formatted(_ t: Double) -> String { t == t.rounded() ? String(Int(t)) : String(t) }
}
