import FlagpoleCore
import FlagpoleStore

/// What one notification target's sender does next, decided without I/O: events in (a cursor
/// read, a batch of audit entries, a delivery's result, Redis failing, the lease lost, a wait
/// over), one action out (read the cursor, start at the stream's end, read the next batch,
/// deliver a notice, store the cursor, wait), plus notes to log and count. ``ChangeNotifier``
/// carries the actions out against Redis and the target; tests drive the machine with made-up
/// times (an hour-long outage in microseconds).
///
/// The order is always: deliver a notice, then store the cursor past its entry — so a crash
/// between the two repeats that one notice at most, and nothing is ever skipped. A notice is
/// given up on (counted, logged, and the cursor moved past it) only when the target answers with
/// a status retrying cannot fix (a 4xx other than 408 and 429), or after
/// ``Configuration-swift.struct/retryFor`` of retryable failures; until then the target's
/// notices wait, in order, and are sent when it is back.
package struct NotifierStateMachine: Sendable {
    /// How the sender paces itself.
    package struct Configuration: Sendable, Hashable {
        /// The environment announced.
        package var environment: String
        /// The target's name (logs; its cursor's field).
        package var target: String
        /// The web console's address for links (``ChangeNotice/init(entry:environment:consoleURL:)``). Default: nil.
        package var consoleURL: String?
        /// Audit entries read at once. Default: 100.
        package var batchSize = 100
        /// How often the stream is read when nothing new came, and the lease checked while another
        /// daemon holds it. Default: 1 s.
        package var pollInterval: Duration = .seconds(1)
        /// The wait after the first failure (a delivery, or Redis); it doubles per failure. Default: 1 s.
        package var initialBackoff: Duration = .seconds(1)
        /// The longest wait between attempts (a `Retry-After` is capped to it too). Default: 60 s.
        package var maxBackoff: Duration = .seconds(60)
        /// How long a notice is retried while the target fails with a retryable error (network,
        /// timeout, 408, 429, 5xx) before it is given up on. Default: 1 hour.
        package var retryFor: Duration = .seconds(3600)

        /// The defaults, for one environment and target.
        package init(environment: String, target: String) {
            self.environment = environment
            self.target = target
        }
    }

    /// The I/O to do next.
    package enum Action: Sendable, Hashable {
        /// Read the target's cursor (if this daemon holds the lease): ``Event/cursorLoaded(_:)``,
        /// ``Event/cursorCorrupt(_:)``, ``Event/notLeader`` or ``Event/redisFailed(_:)``.
        case loadCursor
        /// No cursor yet: take the stream's newest entry as the cursor and store it (fenced):
        /// ``Event/startedAtEnd(_:)``.
        case startAtEnd
        /// Read up to `limit` entries after `after`: ``Event/batch(_:)``.
        case read(after: NotificationCursor, limit: Int)
        /// Send a notice (attempt counts from 1), if this daemon still holds the lease:
        /// ``Event/delivered``, ``Event/failed(_:)`` or ``Event/notLeader``.
        case deliver(ChangeNotice, attempt: Int)
        /// Store the cursor (fenced): ``Event/cursorStored`` or ``Event/notLeader``.
        case storeCursor(NotificationCursor)
        /// Wait, then ``Event/woke``.
        case wait(Duration)
    }

    /// What happened, for the log and the counters.
    package enum Note: Sendable, Hashable {
        /// This daemon announces now, resuming after the stored cursor.
        case resumed(NotificationCursor)
        /// No cursor was stored: started at the stream's end; nothing earlier is announced.
        case startedAtEnd(NotificationCursor)
        /// The stored cursor was unreadable (the reason); starting at the stream's end.
        case corruptCursor(String)
        /// A notice was delivered (its title), after this many attempts.
        case delivered(title: String, attempts: Int)
        /// An attempt failed; the next one follows after `wait`.
        case retrying(title: String, reason: String, attempt: Int, wait: Duration)
        /// A notice was given up on; the cursor moves past it.
        case gaveUp(title: String, reason: String, attempts: Int)
        /// The stream was trimmed past the cursor: this many changes may never be announced.
        case missed(Int64)
        /// Redis failed (the reason); the step is tried again after `wait`.
        case redisFailed(reason: String, wait: Duration)
        /// Another daemon holds the lease (or none does): this one stands by.
        case standingBy
    }

    /// What the machine was told.
    package enum Event: Sendable, Hashable {
        case start
        case cursorLoaded(NotificationCursor?)
        case cursorCorrupt(String)
        case startedAtEnd(NotificationCursor)
        case batch(AuditBatch)
        case delivered
        case failed(AlertDispatcher.Attempt)
        case cursorStored
        case redisFailed(String)
        case notLeader
        case woke
    }

    /// The next action and what to note.
    package struct Step: Sendable, Hashable {
        package var action: Action
        package var notes: [Note] = []
    }

    /// A notice to send (none: only move the cursor past skipped entries) and the cursor after it.
    struct Item: Sendable, Hashable {
        var notice: ChangeNotice?
        var cursor: NotificationCursor
    }

    package let configuration: Configuration
    /// The last entry announced (or counted), once loaded.
    package private(set) var cursor: NotificationCursor?
    var queue: [Item] = []
    private var attempt = 0
    private var firstAttemptAt: Int64 = 0
    private var redisFailures = 0
    private var lastBatchFull = false
    private var active = false
    /// The action a wait resumes, and the one to retry after a Redis failure.
    private var resume: Action = .loadCursor
    private var current: Action = .loadCursor

    /// A machine that starts by loading the cursor.
    package init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// Feeds an event at `now` (Unix ms); returns what to do next.
    package mutating func event(_ event: Event, now: Int64) -> Step {
        var notes: [Note] = []
        let action = next(event, now: now, notes: &notes)
        current = action
        return Step(action: action, notes: notes)
    }

    private mutating func next(_ event: Event, now: Int64, notes: inout [Note]) -> Action {
        switch event {
        case .start:
            return .loadCursor
        case .cursorLoaded(let stored):
            redisFailures = 0
            guard let stored else { return .startAtEnd }
            cursor = stored
            active = true
            notes.append(.resumed(stored))
            return read(after: stored)
        case .cursorCorrupt(let reason):
            notes.append(.corruptCursor(reason))
            return .startAtEnd
        case .startedAtEnd(let end):
            redisFailures = 0
            cursor = end
            active = true
            notes.append(.startedAtEnd(end))
            return read(after: end)
        case .batch(let batch):
            redisFailures = 0
            guard let cursor else { return .loadCursor }
            lastBatchFull = batch.entries.count >= configuration.batchSize
            queue = items(batch, after: cursor, now: now, notes: &notes)
            if queue.isEmpty { return wait(configuration.pollInterval, then: read(after: cursor)) }
            return nextItem(now: now)
        case .delivered:
            guard let head = queue.first else { return .loadCursor }
            notes.append(.delivered(title: head.notice?.alert.title ?? "", attempts: attempt))
            return .storeCursor(head.cursor)
        case .failed(let result):
            guard let head = queue.first, let notice = head.notice else { return .loadCursor }
            switch result {
            case .delivered:
                notes.append(.delivered(title: notice.alert.title, attempts: attempt))
                return .storeCursor(head.cursor)
            case .giveUp(let reason):
                notes.append(.gaveUp(title: notice.alert.title, reason: reason, attempts: attempt))
                return .storeCursor(head.cursor)
            case .retry(let reason, let after):
                if now - firstAttemptAt >= Self.milliseconds(configuration.retryFor) {
                    notes.append(
                        .gaveUp(
                            title: notice.alert.title, reason: "\(reason); still failing after \(configuration.retryFor) of retries",
                            attempts: attempt))
                    return .storeCursor(head.cursor)
                }
                let pause = backoff(failures: attempt, retryAfter: after)
                notes.append(.retrying(title: notice.alert.title, reason: reason, attempt: attempt, wait: pause))
                attempt += 1
                return wait(pause, then: .deliver(notice, attempt: attempt))
            }
        case .cursorStored:
            redisFailures = 0
            guard !queue.isEmpty else { return .loadCursor }
            cursor = queue.removeFirst().cursor
            return nextItem(now: now)
        case .redisFailed(let reason):
            redisFailures += 1
            let pause = backoff(failures: redisFailures, retryAfter: nil)
            notes.append(.redisFailed(reason: reason, wait: pause))
            return wait(pause, then: current)
        case .notLeader:
            if active { notes.append(.standingBy) }
            active = false
            cursor = nil
            queue = []
            attempt = 0
            return wait(configuration.pollInterval, then: .loadCursor)
        case .woke:
            return resume
        }
    }

    /// What to send for a batch: a "may have been missed" notice first when the stream was trimmed
    /// past the cursor, then one notice per announced entry; entries not announced move the
    /// cursor with the next notice (or alone, at the end of the batch).
    private func items(_ batch: AuditBatch, after cursor: NotificationCursor, now: Int64, notes: inout [Note]) -> [Item] {
        var out: [Item] = []
        let environment = configuration.environment
        if !batch.cursorPresent, cursor != .origin, let first = batch.entries.first {
            // A change bumps the revision; a sampled hold carries the revision of the change before it.
            let own: Int64 = ChangeNotice.isAnnounced(action: first.action) ? 1 : 0
            let (difference, overflow) = first.revision.subtractingReportingOverflow(cursor.revision)
            let missed = overflow ? 0 : max(0, difference - own)
            if missed > 0, let before = NotificationCursor.predecessor(of: first.id),
                let skipTo = NotificationCursor(id: before, revision: max(0, first.revision - own))
            {
                notes.append(.missed(missed))
                out.append(Item(notice: ChangeNotice(missed: missed, environment: environment, after: cursor.id, at: now / 1000), cursor: skipTo))
            }
        }
        var skipped: NotificationCursor?
        for entry in batch.entries {
            guard let position = NotificationCursor(id: entry.id, revision: max(0, entry.revision)) else { continue }
            if ChangeNotice.isAnnounced(action: entry.action) {
                out.append(
                    Item(notice: ChangeNotice(entry: entry, environment: environment, consoleURL: configuration.consoleURL), cursor: position))
                skipped = nil
            } else {
                skipped = position
            }
        }
        if let skipped { out.append(Item(notice: nil, cursor: skipped)) }
        return out
    }

    private mutating func nextItem(now: Int64) -> Action {
        guard let head = queue.first else {
            guard let cursor else { return .loadCursor }
            // A full batch: more may be waiting, read at once; else wait for new entries.
            return lastBatchFull ? read(after: cursor) : wait(configuration.pollInterval, then: read(after: cursor))
        }
        guard let notice = head.notice else { return .storeCursor(head.cursor) }
        attempt = 1
        firstAttemptAt = now
        return .deliver(notice, attempt: 1)
    }

    private func read(after cursor: NotificationCursor) -> Action {
        .read(after: cursor, limit: max(1, configuration.batchSize))
    }

    private mutating func wait(_ duration: Duration, then action: Action) -> Action {
        resume = action
        return .wait(duration)
    }

    /// After the `failures`-th failure in a row: `initialBackoff · 2^(failures-1)`, capped at
    /// `maxBackoff`; at least a `Retry-After` (capped too).
    package func backoff(failures: Int, retryAfter: Duration?) -> Duration {
        let base = configuration.initialBackoff * (1 << min(max(0, failures - 1), 30))
        let capped = min(base, configuration.maxBackoff)
        guard let retryAfter else { return capped }
        return max(capped, min(retryAfter, configuration.maxBackoff))
    }

    static func milliseconds(_ d: Duration) -> Int64 {
        let (s, overflow) = d.components.seconds.multipliedReportingOverflow(by: 1000)
        return overflow ? Int64.max : s + d.components.attoseconds / 1_000_000_000_000_000
    }
}
