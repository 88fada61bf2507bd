import Foundation
import Synchronization

/// The watcher's clock: the time now, and a way to wait. Injected so that tests drive an hour of
/// watching in milliseconds (``ManualRolloutClock``).
package protocol RolloutClock: Sendable {
    /// Unix time in milliseconds.
    func nowMilliseconds() -> Int64
    /// Waits `duration` (throws `CancellationError` when the task is cancelled).
    func sleep(for duration: Duration) async throws
}

extension RolloutClock {
    /// Unix time in seconds.
    package func nowSeconds() -> Int64 { nowMilliseconds() / 1000 }
}

/// The wall clock and `Task.sleep`.
package struct SystemRolloutClock: RolloutClock {
    /// Creates the wall clock.
    package init() {}

    package func nowMilliseconds() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded(.down)) }

    package func sleep(for duration: Duration) async throws { try await Task.sleep(for: duration) }
}

/// A clock that moves only when told to (``advance(by:)``): sleepers wake when the time they
/// wait for is reached. For tests.
package final class ManualRolloutClock: RolloutClock {
    private struct State {
        var now: Int64
        var sleepers: [(id: Int, until: Int64, continuation: CheckedContinuation<Void, any Error>)] = []
        var nextID = 0
    }

    private let state: Mutex<State>

    /// A clock at `startMilliseconds` (Unix ms). Default: 2026-01-01T00:00:00Z.
    package init(startMilliseconds: Int64 = 1_767_225_600_000) {
        state = Mutex(State(now: startMilliseconds))
    }

    package func nowMilliseconds() -> Int64 { state.withLock { $0.now } }

    /// How many tasks are sleeping on the clock.
    package var sleeperCount: Int { state.withLock { $0.sleepers.count } }

    /// Moves the time forward and wakes every sleeper whose time has come.
    package func advance(by duration: Duration) {
        let ms = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        let woken = state.withLock { s -> [CheckedContinuation<Void, any Error>] in
            s.now += ms
            let now = s.now
            let due = s.sleepers.filter { $0.until <= now }
            s.sleepers.removeAll { $0.until <= now }
            return due.map(\.continuation)
        }
        for c in woken { c.resume() }
    }

    package func sleep(for duration: Duration) async throws {
        let ms = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        let id = state.withLock { s -> Int in
            s.nextID += 1
            return s.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
                let resumeNow = state.withLock { s -> Bool in
                    if ms <= 0 { return true }
                    s.sleepers.append((id, s.now + ms, c))
                    return false
                }
                if resumeNow { c.resume() }
            }
        } onCancel: {
            let c = state.withLock { s -> CheckedContinuation<Void, any Error>? in
                guard let i = s.sleepers.firstIndex(where: { $0.id == id }) else { return nil }
                return s.sleepers.remove(at: i).continuation
            }
            c?.resume(throwing: CancellationError())
        }
    }
}
