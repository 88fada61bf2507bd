/// The client's sync loop as a pure state machine: what to read from Redis next, and when the
/// client is ready, in sync, or STALE. No I/O, no clock of its own: every event carries `now`
/// (from any `Clock` whose duration is `Duration`; tests use a manual one).
///
/// Events in: the subscription's ``subscribed(now:)`` and ``disconnected(now:)``, a change event's
/// revision (``event(revision:now:)``), the end of each piece of work (``resyncSucceeded(revision:changed:now:)``,
/// ``resyncFailed(now:)``, …) and ``tick(now:)`` at ``nextDeadline``. Out: ``Action``s for the
/// caller to carry out, and ``Work`` (resync, check the revision, catch up on events) that one
/// worker claims with ``nextWork(now:)``.
///
/// Input is coalesced, never queued: a dirty flag (read everything) and the highest revision an
/// event announced. Readiness and STALE hang on their own deadlines, so they are decided on time
/// by ``tick(now:)`` whatever the worker is blocked on.
struct ClientSyncStateMachine<C: Clock> where C.Duration == Duration {
    typealias Instant = C.Instant

    struct Configuration {
        /// Ready (on the fallback, if any) this long after start at the latest.
        var startupTimeout: Duration
        /// Out of sync for longer than this: STALE.
        var freshnessBound: Duration
        /// How often the revision is checked while nothing else is to do.
        var revisionCheckInterval: Duration
        /// How long the first read waits for the subscription (which triggers it) before reading anyway.
        var subscribeGrace: Duration = .seconds(1)
        /// The wait before the next full read after `failures` failed ones in a row.
        var retryDelay: @Sendable (_ failures: Int) -> Duration
    }

    /// Redis work for the one worker.
    enum Work: Hashable, Sendable {
        /// Read everything.
        case resync
        /// Read the revision alone.
        case checkRevision
        /// Apply the next announced change after the applied revision (the highest seen is given).
        case catchUp(to: Int64)
    }

    enum Action: Equatable {
        /// Install the fallback (disk snapshot or flag files): Redis has not answered at start.
        case serveFallback
        /// Open readiness.
        case markReady
        /// The data is current as of now; in sync (following changes) when `inSync`.
        case confirm(inSync: Bool)
        /// Not in sync; the data was last known current at `since`.
        case markOutOfSync(since: Instant)
        /// Set or clear STALE.
        case markStale(Bool)
        /// Write the installed snapshot to disk.
        case saveSnapshot
        /// Work is due: wake the worker.
        case wakeWorker
    }

    let configuration: Configuration
    let hasFallback: Bool
    /// When the fallback's data was last known current (a disk snapshot's age before start).
    private let fallbackSince: Instant

    private(set) var subscribed = false
    private(set) var ready = false
    private(set) var stale = false
    /// Redis data has been applied at least once.
    private(set) var loaded = false
    private(set) var fallbackServed = false
    /// The revision applied from Redis.
    private(set) var applied: Int64?
    /// The highest revision a change event announced since the last full read began.
    private(set) var highestSeen: Int64?
    /// A full read is needed.
    private(set) var dirty = true
    /// Something made a full read necessary while one was in flight: read again after it.
    private var dirtyAgain = false
    private(set) var failures = 0
    private var retryAt: Instant?
    private var nextCheckAt: Instant
    private(set) var work: Work?
    private let startDeadline: Instant
    /// Nil while in sync; else when the data was last known current.
    private(set) var outOfSyncSince: Instant?
    /// While in sync: since when the data is known to be behind (an event or a read pending).
    private var behindSince: Instant?
    private var savedRevision: Int64?

    /// - Parameters:
    ///   - hasFallback: whether there is a disk snapshot or flag files to serve while Redis does not answer.
    ///   - fallbackAge: how old the fallback's data is at `now` (a disk snapshot's age; zero for flag files).
    init(configuration: Configuration, hasFallback: Bool, fallbackAge: Duration = .zero, now: Instant) {
        self.configuration = configuration
        self.hasFallback = hasFallback
        fallbackSince = now.advanced(by: .zero - max(.zero, fallbackAge))
        startDeadline = now.advanced(by: configuration.startupTimeout)
        retryAt = now.advanced(by: configuration.subscribeGrace)
        nextCheckAt = now.advanced(by: configuration.revisionCheckInterval)
    }

    /// Whether there is data whose age matters (Redis data or a fallback served).
    private var hasData: Bool { loaded || fallbackServed }

    // MARK: - Events

    /// Every channel is subscribed (first time or after a reconnect): read everything.
    mutating func subscribed(now: Instant) -> [Action] {
        subscribed = true
        var actions: [Action] = []
        markDirty(now: now, backoff: false)
        decide(now: now, &actions)
        return actions
    }

    /// The subscription dropped (or could not connect).
    mutating func disconnected(now: Instant) -> [Action] {
        subscribed = false
        var actions: [Action] = []
        if !loaded { serveFallback(now: now, &actions) }
        leaveSync(now: now, &actions)
        decide(now: now, &actions)
        return actions
    }

    /// A change event announced `revision`; nil when it could not be read (read everything).
    mutating func event(revision: Int64?, now: Instant) -> [Action] {
        var actions: [Action] = []
        if let revision {
            if let applied, revision <= applied, !dirty { return [] }
            highestSeen = max(highestSeen ?? revision, revision)
            if outOfSyncSince == nil, behindSince == nil { behindSince = now }
        } else {
            markDirty(now: now, backoff: false)
        }
        decide(now: now, &actions)
        return actions
    }

    /// Time passed: readiness, STALE, and work that fell due.
    mutating func tick(now: Instant) -> [Action] {
        var actions: [Action] = []
        decide(now: now, &actions)
        return actions
    }

    /// The worker asks for its next piece of work; nil when nothing is due. Claiming a resync
    /// forgets the revisions seen so far (the read covers them).
    mutating func nextWork(now: Instant) -> Work? {
        guard work == nil else { return nil }
        let next: Work?
        if dirty {
            next = retryAt.map { now >= $0 } ?? true ? .resync : nil
        } else if let highest = highestSeen, highest > (applied ?? -1) {
            next = .catchUp(to: highest)
        } else if now >= nextCheckAt {
            next = .checkRevision
        } else {
            next = nil
        }
        if next == .resync { highestSeen = nil }
        work = next
        return next
    }

    // MARK: - Results of work

    /// A full read applied `revision`; `changed` when it changed any flag.
    mutating func resyncSucceeded(revision: Int64, changed: Bool, now: Instant) -> [Action] {
        work = nil
        failures = 0
        retryAt = nil
        dirty = dirtyAgain
        dirtyAgain = false
        if let highest = highestSeen, highest <= revision { highestSeen = nil }
        return applied(revision: revision, changed: changed, now: now)
    }

    /// A full read failed: retry with backoff; serve the fallback if Redis never answered.
    mutating func resyncFailed(now: Instant) -> [Action] {
        work = nil
        failures += 1
        dirty = true
        dirtyAgain = false
        retryAt = now.advanced(by: configuration.retryDelay(failures))
        var actions: [Action] = []
        if !loaded { serveFallback(now: now, &actions) }
        leaveSync(now: now, &actions)
        decide(now: now, &actions)
        return actions
    }

    /// The revision check read `revision`.
    mutating func revisionChecked(revision: Int64, now: Instant) -> [Action] {
        work = nil
        nextCheckAt = now.advanced(by: configuration.revisionCheckInterval)
        var actions: [Action] = []
        if revision != applied {
            markDirty(now: now, backoff: false)
        } else if !dirty, highestSeen.map({ $0 <= revision }) ?? true {
            confirm(now: now, &actions)
        }
        decide(now: now, &actions)
        return actions
    }

    /// The revision check failed (Redis did not answer); nothing else changes.
    mutating func revisionCheckFailed(now: Instant) -> [Action] {
        work = nil
        nextCheckAt = now.advanced(by: configuration.revisionCheckInterval)
        var actions: [Action] = []
        decide(now: now, &actions)
        return actions
    }

    /// A change event was applied: the data is at `revision`.
    mutating func caughtUp(revision: Int64, changed: Bool, now: Instant) -> [Action] {
        work = nil
        return applied(revision: revision, changed: changed, now: now)
    }

    /// The next event could not be applied: it does not follow the applied revision (a gap) or
    /// asks for a full read (`needsResync`), or fetching its flags failed (`needsResync` false).
    mutating func catchUpFailed(needsResync: Bool, now: Instant) -> [Action] {
        work = nil
        var actions: [Action] = []
        markDirty(now: now, backoff: false)
        if !needsResync { leaveSync(now: now, &actions) }
        decide(now: now, &actions)
        return actions
    }

    // MARK: - Timers

    /// When ``tick(now:)`` must run next: the startup deadline, the moment the data turns STALE,
    /// a retry or a revision check falling due; nil when nothing is pending.
    var nextDeadline: Instant? {
        var next: Instant?
        func consider(_ instant: Instant?) {
            guard let instant else { return }
            next = next.map { min($0, instant) } ?? instant
        }
        if !ready { consider(startDeadline) }
        if hasData, !stale, let since = outOfSyncSince ?? behindSince { consider(since.advanced(by: configuration.freshnessBound)) }
        if work == nil {
            if dirty { consider(retryAt) } else { consider(nextCheckAt) }
        }
        return next
    }

    // MARK: - Internals

    private mutating func applied(revision: Int64, changed: Bool, now: Instant) -> [Action] {
        var actions: [Action] = []
        loaded = true
        applied = revision
        nextCheckAt = now.advanced(by: configuration.revisionCheckInterval)
        // Confirmed before ready: whoever waits for readiness sees the data's sync state.
        confirm(now: now, &actions)
        if !ready {
            ready = true
            actions.append(.markReady)
        }
        if dirty || (highestSeen.map { $0 > revision } ?? false) { behindSince = now }
        // Revision 0 is an environment never written: nothing worth keeping.
        if revision > 0, changed || revision != savedRevision {
            savedRevision = revision
            actions.append(.saveSnapshot)
        }
        decide(now: now, &actions)
        return actions
    }

    /// The data is current as of now.
    private mutating func confirm(now: Instant, _ actions: inout [Action]) {
        outOfSyncSince = subscribed ? nil : now
        behindSince = nil
        actions.append(.confirm(inSync: subscribed))
        if stale {
            stale = false
            actions.append(.markStale(false))
        }
    }

    private mutating func leaveSync(now: Instant, _ actions: inout [Action]) {
        guard outOfSyncSince == nil else { return }
        let since = behindSince ?? now
        outOfSyncSince = since
        behindSince = nil
        actions.append(.markOutOfSync(since: since))
    }

    private mutating func markDirty(now: Instant, backoff: Bool) {
        if work == .resync { dirtyAgain = true }
        dirty = true
        if !backoff { retryAt = nil }
        if outOfSyncSince == nil, behindSince == nil, loaded { behindSince = now }
    }

    private mutating func serveFallback(now: Instant, _ actions: inout [Action]) {
        guard hasFallback, !fallbackServed, !loaded else { return }
        fallbackServed = true
        outOfSyncSince = min(fallbackSince, now)
        actions.append(.serveFallback)
    }

    /// Readiness, STALE and work, as of `now`.
    private mutating func decide(now: Instant, _ actions: inout [Action]) {
        if !ready, now >= startDeadline {
            serveFallback(now: now, &actions)
            ready = true
            actions.append(.markReady)
        }
        if hasData, !stale, let since = outOfSyncSince ?? behindSince, now >= since.advanced(by: configuration.freshnessBound) {
            stale = true
            if outOfSyncSince == nil {
                outOfSyncSince = since
                behindSince = nil
                actions.append(.markOutOfSync(since: since))
            }
            actions.append(.markStale(true))
        }
        if work == nil, workIsDue(now: now) { actions.append(.wakeWorker) }
    }

    private func workIsDue(now: Instant) -> Bool {
        if dirty { return retryAt.map { now >= $0 } ?? true }
        if let highest = highestSeen, highest > (applied ?? -1) { return true }
        return now >= nextCheckAt
    }
}
