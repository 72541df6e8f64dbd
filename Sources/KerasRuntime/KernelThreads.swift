import CKernels
import KerasIR

/// The kernels' thread pool, from Swift: how many threads parallel kernels
/// use (default: the `KERAS_NUM_THREADS` environment variable, else the
/// number of cores). Results are bitwise the same for every count.
public enum KernelThreads {
    /// The thread count parallel kernels use now.
    public static var count: Int { Int(ck_threads_get()) }

    /// The most threads the pool takes.
    public static var maximum: Int { Int(ck_threads_max()) }

    /// Sets the thread count for every later kernel call; returns the previous one.
    @discardableResult
    public static func set(_ n: Int) throws -> Int {
        guard n >= 1, n <= maximum else {
            throw IRError("the kernel thread count must be between 1 and \(maximum), got \(n)")
        }
        return Int(ck_threads_set(Int32(n)))
    }
}
