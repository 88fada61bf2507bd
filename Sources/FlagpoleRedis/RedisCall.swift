import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What bounds a connection's blocking I/O: the instant by which the current call must be over,
/// and (for calls a caller can give up on) the signal that stops it at once.
struct IOLimit {
    /// The call's deadline.
    var end: ContinuousClock.Instant
    /// Says why the call must stop now (cancelled, or its caller's deadline passed), and wakes
    /// a thread waiting in `poll`. Nil when nothing but the deadline can stop the call.
    var signal: (any CallSignal)?
}

/// A call that can be stopped from another thread while its I/O waits in `poll`.
protocol CallSignal: AnyObject, Sendable {
    /// A descriptor that becomes readable when the call may have been stopped: waits include it.
    var wakeDescriptor: Int32 { get }
    /// Why the call must stop, once it must; nil while it may go on.
    var stopReason: RedisError? { get }
    /// Reads the pending wake-ups, so that the next `poll` sleeps again.
    func drainWakeups()
}

/// A pipe that wakes a thread blocked in `poll`. Both ends are non-blocking.
final class WakePipe: Sendable {
    let readEnd: Int32
    let writeEnd: Int32

    init() {
        var fds: [Int32] = [-1, -1]
        if pipe(&fds) == 0 {
            for fd in fds {
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            }
        } else {
            fds = [-1, -1]
        }
        readEnd = fds[0]
        writeEnd = fds[1]
    }

    deinit {
        if readEnd >= 0 { close(readEnd) }
        if writeEnd >= 0 { close(writeEnd) }
    }

    func ring() {
        guard writeEnd >= 0 else { return }
        var byte: UInt8 = 1
        _ = write(writeEnd, &byte, 1)  // a full pipe already wakes the reader
    }

    func drain() {
        guard readEnd >= 0 else { return }
        var buffer = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        while withUnsafeMutableBytes(of: &buffer, { read(readEnd, $0.baseAddress, $0.count) }) > 0 {}
    }
}

/// A call that ``DeadlineWatchdog`` can end: resumed with a timeout when its deadline passes.
protocol DeadlineCall: AnyObject, Sendable {
    var deadline: ContinuousClock.Instant { get }
    /// True once the caller has been resumed (result, timeout or cancellation).
    var isFinished: Bool { get }
    /// Resumes the caller with a timeout, unless already resumed; returns true when the call was
    /// running (its I/O must then be woken to stop).
    func expire(now: ContinuousClock.Instant) -> Bool
}

/// One call to Redis, waiting for or running on a client's thread. Its caller is resumed exactly
/// once, by whichever comes first: the result, the deadline (``DeadlineWatchdog``), or the
/// cancellation of its task.
final class RedisCall<T: Sendable>: CallSignal, DeadlineCall {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var running = false
        var finished = false
        /// Why the caller was resumed before the call ended: its I/O must stop.
        var stopReason: RedisError?
    }

    let deadline: ContinuousClock.Instant
    private let submitted: ContinuousClock.Instant
    private let configuration: RedisConfiguration
    private let wake: WakePipe
    private let state = Mutex(State())

    init(submitted: ContinuousClock.Instant, configuration: RedisConfiguration, wake: WakePipe) {
        self.submitted = submitted
        self.deadline = submitted + configuration.callTimeout
        self.configuration = configuration
        self.wake = wake
    }

    var wakeDescriptor: Int32 { wake.readEnd }
    var stopReason: RedisError? { state.withLock { $0.stopReason } }
    var isFinished: Bool { state.withLock { $0.finished } }
    func drainWakeups() { wake.drain() }

    /// Stores the caller's continuation; false when the call was already stopped (cancelled
    /// before it was queued), in which case the caller has been resumed.
    func install(_ continuation: CheckedContinuation<T, any Error>) -> Bool {
        let stopped = state.withLock { s -> RedisError? in
            if s.finished { return s.stopReason ?? RedisError(code: .cancelled, message: "the call was cancelled") }
            s.continuation = continuation
            return nil
        }
        if let stopped { continuation.resume(throwing: stopped) }
        return stopped == nil
    }

    /// On the client's thread, before running: false when the caller has gone (skip the call).
    func begin() -> Bool {
        state.withLock { s in
            guard !s.finished else { return false }
            s.running = true
            return true
        }
    }

    /// Hands the result to the caller, unless the caller was resumed already.
    func finish(_ result: Result<T, any Error>) {
        let continuation = state.withLock { s -> CheckedContinuation<T, any Error>? in
            guard !s.finished else { return nil }
            s.finished = true
            defer { s.continuation = nil }
            return s.continuation
        }
        continuation?.resume(with: result)
    }

    /// Resumes the caller with `reason` now; true when the call was running (wake its I/O).
    @discardableResult
    func stop(_ reason: RedisError) -> Bool {
        let (continuation, running) = state.withLock { s -> (CheckedContinuation<T, any Error>?, Bool) in
            guard !s.finished else { return (nil, false) }
            s.finished = true
            s.stopReason = reason
            defer { s.continuation = nil }
            return (s.continuation, s.running)
        }
        continuation?.resume(throwing: reason)
        if running { wake.ring() }
        return running
    }

    /// The task waiting for the call was cancelled.
    func cancel() {
        stop(
            RedisError(
                code: .cancelled, message: "the task waiting for Redis was cancelled; the call was abandoned",
                address: configuration.address))
    }

    func expire(now: ContinuousClock.Instant) -> Bool {
        let started = state.withLock { $0.running }
        let budget = configuration.callTimeout
        let why =
            started
            ? "no answer within the call's deadline of \(budget.formatted) (connect timeout \(configuration.connectTimeout.formatted) + command timeout \(configuration.commandTimeout.formatted))"
            : "the call waited \(submitted.duration(to: now).formatted) behind earlier calls on this client and ran out of its deadline of \(budget.formatted) (connect timeout + command timeout)"
        return stop(
            RedisError(
                code: .timeout, message: why + "; check that the server answers, or raise the timeouts", address: configuration.address))
    }
}

/// Resumes each watched call whose deadline passes before it ends, on a thread of its own, so
/// that a caller never waits past its deadline whatever the client's thread is blocked on (a
/// queue of earlier calls, a slow name lookup, a `withConnection` body).
///
/// Calls are kept in submission order; on one client they share one timeout, so the oldest has
/// the earliest deadline and the thread wakes about once per deadline, not once per call.
final class DeadlineWatchdog: @unchecked Sendable {
    // Safe to share: every stored property is only touched with `condition` held.
    private let condition = NSCondition()
    private var calls: [any DeadlineCall] = []
    private var head = 0
    /// The instant the thread sleeps until (nil: until signalled).
    private var target: ContinuousClock.Instant?
    private var stopping = false

    init(name: String) {
        // The thread keeps this object alive until `loop` returns, which `stop()` brings about.
        let thread = Thread { self.loop() }
        thread.name = name
        thread.start()
    }

    /// Starts watching `call`.
    func watch(_ call: any DeadlineCall) {
        condition.lock()
        defer { condition.unlock() }
        // Calls end mostly in order: forget the finished ones at the front as new ones come.
        while head < calls.count, calls[head].isFinished { head += 1 }
        if head > 64, head * 2 > calls.count {
            calls.removeFirst(head)
            head = 0
        }
        calls.append(call)
        if target.map({ call.deadline < $0 }) ?? true { condition.signal() }
    }

    /// Ends the thread once every watched call has ended.
    func stop() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
    }

    private func loop() {
        condition.lock()
        while true {
            let now = ContinuousClock.now
            var next: ContinuousClock.Instant?
            var remaining: [any DeadlineCall] = []
            var expired: [any DeadlineCall] = []
            for call in calls[head...] where !call.isFinished {
                if call.deadline <= now {
                    expired.append(call)
                } else {
                    remaining.append(call)
                    next = next.map { min($0, call.deadline) } ?? call.deadline
                }
            }
            calls = remaining
            head = 0
            if !expired.isEmpty {
                condition.unlock()
                for call in expired { _ = call.expire(now: now) }
                condition.lock()
                continue
            }
            if stopping && calls.isEmpty { break }
            target = next
            if let next {
                let wait = now.duration(to: next)
                _ = condition.wait(until: Date(timeIntervalSinceNow: wait.seconds))
            } else {
                condition.wait()
            }
        }
        condition.unlock()
    }
}

extension Duration {
    /// Milliseconds for `poll`, rounded up, from 0 to `Int32.max` (never traps).
    var pollMilliseconds: Int32 {
        let (seconds, attoseconds) = components
        if seconds < 0 || (seconds == 0 && attoseconds <= 0) { return 0 }
        if seconds >= Int64(Int32.max / 1000) { return Int32.max }
        let ms = seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
        return Int32(clamping: ms)
    }

    /// Whole milliseconds, saturating (for messages and logs).
    var wholeMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        let (ms, overflow) = seconds.multipliedReportingOverflow(by: 1000)
        if overflow { return seconds < 0 ? .min : .max }
        return ms.addingReportingOverflow(attoseconds / 1_000_000_000_000_000).partialValue
    }

    /// `1.5 s`, `300 ms`: how long, for messages.
    var formatted: String {
        let ms = wholeMilliseconds
        if ms % 1000 == 0 { return "\(ms / 1000) s" }
        if ms >= 1000 { return "\(Double(ms) / 1000) s" }
        return "\(ms) ms"
    }
}

extension ContinuousClock.Instant {
    /// The end of this one's share when the time from `self` until `end` is split equally among
    /// `count` attempts: `end` itself for the last one (or when the time is up).
    func fairShare(of end: Self, among count: Int) -> Self {
        guard count > 1, self < end else { return end }
        return self + duration(to: end) / count
    }
}
