import Foundation

/// A thread of its own that runs submitted jobs one after another, so that blocking calls
/// (hiredis, `fsync`) never run on Swift's cooperative thread pool.
package final class DedicatedThread: @unchecked Sendable {
    // Safe to share: `jobs` and `stopping` are only touched with `condition` held.
    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var stopping = false
    /// The thread's id, once it runs.
    private var threadID: pthread_t?

    package init(name: String) {
        // The thread keeps this object alive until `loop` returns, which `stop()` brings about.
        let thread = Thread { self.loop() }
        thread.name = name
        thread.start()
    }

    /// Runs `job` on the thread, after the jobs submitted before it. Returns false when stopped.
    @discardableResult
    package func submit(_ job: @escaping @Sendable () -> Void) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard !stopping else { return false }
        jobs.append(job)
        condition.signal()
        return true
    }

    /// Runs `body` on the thread and returns its result. When the thread is stopped, `body` runs
    /// nowhere and this throws `CancellationError`.
    package func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
            if !submit({ c.resume(with: Result { try body() }) }) { c.resume(throwing: CancellationError()) }
        }
    }

    /// Lets the queued jobs finish, then ends the thread.
    package func stop() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
    }

    /// Whether the caller runs on this thread.
    package var isCurrent: Bool {
        condition.lock()
        defer { condition.unlock() }
        return threadID.map { pthread_equal($0, pthread_self()) != 0 } ?? false
    }

    private func loop() {
        condition.lock()
        threadID = pthread_self()
        condition.unlock()
        while true {
            condition.lock()
            while jobs.isEmpty && !stopping { condition.wait() }
            if jobs.isEmpty && stopping {
                condition.unlock()
                return
            }
            let batch = jobs
            jobs.removeAll(keepingCapacity: true)
            condition.unlock()
            for job in batch { job() }
        }
    }
}
