import Synchronization
import Testing

@testable import Flagpole

/// A clock that moves only when told: instants are durations from its start.
struct ManualClock: Clock {
    struct Instant: InstantProtocol {
        var offset: Duration
        func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }
        func duration(to other: Instant) -> Duration { other.offset - offset }
        static func < (a: Instant, b: Instant) -> Bool { a.offset < b.offset }
    }

    var now: Instant { Instant(offset: .zero) }
    var minimumResolution: Duration { .nanoseconds(1) }
    func sleep(until deadline: Instant, tolerance: Duration?) async throws {}
}

typealias Machine = ClientSyncStateMachine<ManualClock>

@Suite("ClientSyncStateMachine on a manual clock")
struct ClientSyncStateMachineTests {
    static let configuration = Machine.Configuration(
        startupTimeout: .seconds(5), freshnessBound: .seconds(60), revisionCheckInterval: .seconds(30),
        subscribeGrace: .seconds(1), retryDelay: { .milliseconds(100 * $0) })

    static func at(_ d: Duration) -> ManualClock.Instant { ManualClock.Instant(offset: d) }

    /// A machine that has read revision 1 while subscribed, at t = 0.1 s.
    static func following() -> Machine {
        var m = Machine(configuration: configuration, hasFallback: false, now: at(.zero))
        _ = m.subscribed(now: at(.milliseconds(50)))
        #expect(m.nextWork(now: at(.milliseconds(50))) == .resync)
        _ = m.resyncSucceeded(revision: 1, changed: true, now: at(.milliseconds(100)))
        return m
    }

    @Test("subscribing asks for a full read; its success makes the client ready, in sync, and saves")
    func firstRead() {
        var m = Machine(configuration: Self.configuration, hasFallback: true, now: Self.at(.zero))
        #expect(m.nextWork(now: Self.at(.milliseconds(10))) == nil)  // waits for the subscription
        #expect(m.subscribed(now: Self.at(.milliseconds(20))) == [.wakeWorker])
        #expect(m.nextWork(now: Self.at(.milliseconds(20))) == .resync)
        #expect(m.nextWork(now: Self.at(.milliseconds(20))) == nil)  // one piece of work at a time
        let actions = m.resyncSucceeded(revision: 7, changed: true, now: Self.at(.milliseconds(30)))
        #expect(actions == [.confirm(inSync: true), .markReady, .saveSnapshot])
        #expect(m.ready && !m.stale && m.outOfSyncSince == nil && m.applied == 7)
        // Without a subscription the first read happens anyway after the grace period.
        var quiet = Machine(configuration: Self.configuration, hasFallback: false, now: Self.at(.zero))
        #expect(quiet.nextDeadline == Self.at(.seconds(1)))
        #expect(quiet.tick(now: Self.at(.seconds(1))) == [.wakeWorker])
        #expect(quiet.nextWork(now: Self.at(.seconds(1))) == .resync)
    }

    @Test("STALE is set exactly at the bound while a resync hangs, and cleared when it lands")
    func staleWhileResyncHangs() {
        var m = Self.following()
        #expect(m.disconnected(now: Self.at(.seconds(10))) == [.markOutOfSync(since: Self.at(.seconds(10)))])
        _ = m.subscribed(now: Self.at(.seconds(11)))
        #expect(m.nextWork(now: Self.at(.seconds(11))) == .resync)  // ... and Redis never answers
        #expect(m.nextDeadline == Self.at(.seconds(70)))
        #expect(m.tick(now: Self.at(.milliseconds(69_999))) == [])
        #expect(m.tick(now: Self.at(.seconds(70))) == [.markStale(true)])
        #expect(m.stale)
        let actions = m.resyncSucceeded(revision: 2, changed: true, now: Self.at(.seconds(75)))
        #expect(actions == [.confirm(inSync: true), .markStale(false), .saveSnapshot])
    }

    @Test("a change announced while the worker is stuck counts toward STALE from when it arrived")
    func behindWhileBusy() {
        var m = Self.following()
        #expect(m.tick(now: Self.at(.seconds(31))) == [.wakeWorker])
        #expect(m.nextWork(now: Self.at(.seconds(31))) == .checkRevision)  // hangs
        #expect(m.event(revision: 2, now: Self.at(.seconds(32))) == [])
        #expect(m.nextDeadline == Self.at(.seconds(92)))  // the next check is not due while one runs
        #expect(m.tick(now: Self.at(.seconds(92))) == [.markOutOfSync(since: Self.at(.seconds(32))), .markStale(true)])
    }

    @Test("the startup timeout makes the client ready on its fallback while the first read hangs")
    func readyOnTime() {
        var m = Machine(configuration: Self.configuration, hasFallback: true, fallbackAge: .seconds(10), now: Self.at(.zero))
        _ = m.subscribed(now: Self.at(.milliseconds(10)))
        #expect(m.nextWork(now: Self.at(.milliseconds(10))) == .resync)
        #expect(m.nextDeadline == Self.at(.seconds(5)))
        #expect(m.tick(now: Self.at(.seconds(5))) == [.serveFallback, .markReady])
        // The fallback's data was 10 s old at start: STALE 50 s later, still waiting on Redis.
        #expect(m.nextDeadline == Self.at(.seconds(50)))
        #expect(m.tick(now: Self.at(.seconds(50))) == [.markStale(true)])
    }

    @Test("Redis unreachable at start: the fallback is served at once, ready only at the timeout")
    func fallbackOnFailure() {
        var m = Machine(configuration: Self.configuration, hasFallback: true, now: Self.at(.zero))
        let actions = m.disconnected(now: Self.at(.milliseconds(5)))
        #expect(actions.first == .serveFallback)
        #expect(!actions.contains(.markReady))
        #expect(m.tick(now: Self.at(.seconds(5))).contains(.markReady))
    }

    @Test("input is coalesced: a thousand events during a read leave one catch-up to the highest")
    func coalescing() {
        var m = Self.following()
        _ = m.event(revision: nil, now: Self.at(.seconds(1)))  // unreadable: read everything
        #expect(m.nextWork(now: Self.at(.seconds(1))) == .resync)
        for r in 2...1001 { _ = m.event(revision: Int64(r), now: Self.at(.seconds(2))) }
        #expect(m.highestSeen == 1001)
        _ = m.resyncSucceeded(revision: 500, changed: true, now: Self.at(.seconds(3)))
        #expect(m.nextWork(now: Self.at(.seconds(3))) == .catchUp(to: 1001))
        _ = m.caughtUp(revision: 501, changed: true, now: Self.at(.seconds(3)))
        #expect(m.nextWork(now: Self.at(.seconds(3))) == .catchUp(to: 1001))
        _ = m.catchUpFailed(needsResync: true, now: Self.at(.seconds(3)))  // a gap
        #expect(m.nextWork(now: Self.at(.seconds(3))) == .resync)
        #expect(m.highestSeen == nil)
    }

    @Test("a failed read retries after the backoff; subscribing again does not wait for it")
    func retries() {
        var m = Self.following()
        _ = m.event(revision: nil, now: Self.at(.seconds(1)))
        #expect(m.nextWork(now: Self.at(.seconds(1))) == .resync)
        let failed = m.resyncFailed(now: Self.at(.seconds(2)))
        #expect(failed == [.markOutOfSync(since: Self.at(.seconds(1)))])
        #expect(m.nextWork(now: Self.at(.milliseconds(2050))) == nil)
        #expect(m.nextDeadline == Self.at(.milliseconds(2100)))
        #expect(m.nextWork(now: Self.at(.milliseconds(2100))) == .resync)
        _ = m.resyncFailed(now: Self.at(.seconds(3)))
        #expect(m.nextDeadline == Self.at(.milliseconds(3200)))
        _ = m.subscribed(now: Self.at(.milliseconds(3010)))
        #expect(m.nextWork(now: Self.at(.milliseconds(3010))) == .resync)
    }

    @Test("a read that was in flight when the subscription came back is followed by another")
    func readAfterResubscribe() {
        var m = Self.following()
        _ = m.disconnected(now: Self.at(.seconds(1)))
        #expect(m.tick(now: Self.at(.seconds(30))) == [])
        #expect(m.tick(now: Self.at(.seconds(31))) == [.wakeWorker])
        #expect(m.nextWork(now: Self.at(.seconds(31))) == .checkRevision)
        _ = m.revisionChecked(revision: 3, now: Self.at(.seconds(31)))  // a change: read
        #expect(m.nextWork(now: Self.at(.seconds(31))) == .resync)
        _ = m.subscribed(now: Self.at(.seconds(32)))  // events before this were missed
        _ = m.resyncSucceeded(revision: 3, changed: true, now: Self.at(.seconds(33)))
        #expect(m.nextWork(now: Self.at(.seconds(33))) == .resync)
    }

    @Test("the revision check confirms the data while unsubscribed; a different revision reads everything")
    func revisionCheck() {
        var m = Self.following()
        _ = m.disconnected(now: Self.at(.seconds(1)))
        #expect(m.nextWork(now: Self.at(.seconds(30))) == nil)
        #expect(m.nextWork(now: Self.at(.seconds(31))) == .checkRevision)
        #expect(m.revisionChecked(revision: 1, now: Self.at(.seconds(31))) == [.confirm(inSync: false)])
        #expect(m.outOfSyncSince == Self.at(.seconds(31)))
        #expect(m.nextDeadline == Self.at(.seconds(61)))
        #expect(m.nextWork(now: Self.at(.seconds(61))) == .checkRevision)
        _ = m.revisionCheckFailed(now: Self.at(.seconds(62)))
        #expect(m.tick(now: Self.at(.seconds(91))) == [.markStale(true)])
    }
}
