import Foundation

/// A bounded prefetch queue (Keras 2's generator enqueuer): a background
/// thread draws up to `limit` batches ahead of the consumer from a
/// generator's iterator, and never more than `total` in all, so a training
/// loop overlaps the generator's work with its steps. With `background`
/// false the batches are drawn on the caller's thread (Keras's workers=0).
/// Batches arrive in the generator's order.
final class Prefetcher<Element>: @unchecked Sendable {
    private var pull: () -> Element?
    private let limit: Int
    private var remaining: Int
    private var buffer: [Element?] = []
    private var stopped = false
    /// The producer has drawn its last batch (or the generator ran out, or it was stopped).
    private var finished = false
    private let condition = NSCondition()
    private let background: Bool

    init<I: IteratorProtocol>(_ iterator: I, limit: Int, total: Int, background: Bool) where I.Element == Element {
        var it = iterator
        pull = { it.next() }
        self.limit = max(limit, 1)
        remaining = total
        self.background = background
        if background {
            let thread = Thread { [self] in self.produce() }
            thread.name = "keras-prefetch"
            thread.start()
        }
    }

    private func produce() {
        while true {
            condition.lock()
            while buffer.count >= limit && !stopped { condition.wait() }
            if stopped || remaining <= 0 {
                finished = true
                condition.broadcast()
                condition.unlock()
                return
            }
            remaining -= 1
            condition.unlock()
            let item = pull()  // the generator's own work, outside the lock
            condition.lock()
            buffer.append(item)
            if item == nil { remaining = 0 }
            condition.broadcast()
            condition.unlock()
        }
    }

    /// The next batch, or nil when the generator ran out.
    func next() -> Element? {
        if !background {
            guard remaining > 0 else { return nil }
            remaining -= 1
            return pull()
        }
        condition.lock()
        defer { condition.unlock() }
        while buffer.isEmpty && !finished && !stopped { condition.wait() }
        guard !buffer.isEmpty else { return nil }
        let item = buffer.removeFirst()
        condition.broadcast()
        return item ?? nil
    }

    /// Stops drawing (training ended early); a draw in progress finishes on its own.
    func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }
}
