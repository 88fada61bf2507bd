import FlagpoleControl
import FlagpoleCore
import FlagpoleStore
import Testing

/// The notifier's decisions, without I/O: made-up times, made-up Redis and target answers.
@Suite("Notifications: the sender's state machine")
struct NotifierStateMachineTests {
    static let t0: Int64 = 1_767_225_600_000

    static func entry(_ n: Int, action: String = "set", revision: Int64? = nil) -> AuditEntry {
        AuditEntry(
            id: "\(1_767_225_600_000 + Int64(n))-0", revision: revision ?? Int64(n), action: action, actor: "ann", reason: "change \(n)",
            at: 1_767_225_600 + Int64(n), flags: ["flag-\(n)"], details: ["before": .null, "after": .null])
    }

    static func cursor(_ e: AuditEntry) -> NotificationCursor { NotificationCursor(id: e.id, revision: e.revision)! }

    func machine(_ configure: (inout NotifierStateMachine.Configuration) -> Void = { _ in }) -> NotifierStateMachine {
        var c = NotifierStateMachine.Configuration(environment: "prod", target: "team")
        configure(&c)
        return NotifierStateMachine(configuration: c)
    }

    /// The notice a `.deliver` action carries, or a failed expectation.
    func delivered(_ step: NotifierStateMachine.Step) -> ChangeNotice? {
        guard case .deliver(let notice, _) = step.action else {
            Issue.record("expected a delivery, got \(step.action)")
            return nil
        }
        return notice
    }

    @Test("first start without a cursor: start at the stream's end (say so), then read after it; nothing earlier is announced")
    func firstStart() {
        var m = machine()
        #expect(m.event(.start, now: Self.t0).action == .loadCursor)
        #expect(m.event(.cursorLoaded(nil), now: Self.t0).action == .startAtEnd)
        let end = Self.cursor(Self.entry(7))
        let step = m.event(.startedAtEnd(end), now: Self.t0)
        #expect(step.notes == [.startedAtEnd(end)])
        #expect(step.action == .read(after: end, limit: 100))
        // Nothing new: wait a poll interval, then read after the same cursor.
        #expect(m.event(.batch(AuditBatch(entries: [], cursorPresent: true)), now: Self.t0).action == .wait(.seconds(1)))
        #expect(m.event(.woke, now: Self.t0 + 1000).action == .read(after: end, limit: 100))
    }

    @Test("each change: deliver, then store the cursor past it, in order; a restart resumes after the stored cursor")
    func deliverThenStore() {
        var m = machine()
        _ = m.event(.start, now: Self.t0)
        let stored = Self.cursor(Self.entry(1))
        let resumed = m.event(.cursorLoaded(stored), now: Self.t0)
        #expect(resumed.notes == [.resumed(stored)])
        #expect(resumed.action == .read(after: stored, limit: 100))
        let entries = [Self.entry(2), Self.entry(3)]
        var step = m.event(.batch(AuditBatch(entries: entries, cursorPresent: true)), now: Self.t0)
        for e in entries {
            #expect(delivered(step)?.webhook["id"]?.stringValue == e.id)
            step = m.event(.delivered, now: Self.t0)
            #expect(step.action == .storeCursor(Self.cursor(e)))
            step = m.event(.cursorStored, now: Self.t0)
        }
        #expect(m.cursor == Self.cursor(entries[1]))
        #expect(step.action == .wait(.seconds(1)))
    }

    @Test("a full batch is followed by an immediate read; sampled holds are not announced but the cursor moves past them")
    func holdsAndFullBatches() {
        var m = machine { $0.batchSize = 3 }
        _ = m.event(.start, now: Self.t0)
        _ = m.event(.cursorLoaded(Self.cursor(Self.entry(1))), now: Self.t0)
        let hold1 = Self.entry(3, action: "rollout-hold", revision: 2), hold2 = Self.entry(4, action: "rollout-hold", revision: 2)
        var step = m.event(.batch(AuditBatch(entries: [Self.entry(2), hold1, hold2], cursorPresent: true)), now: Self.t0)
        #expect(delivered(step)?.webhook["action"] == "set")
        #expect(m.event(.delivered, now: Self.t0).action == .storeCursor(Self.cursor(Self.entry(2))))
        // The holds move the cursor in one write, with no notice.
        step = m.event(.cursorStored, now: Self.t0)
        #expect(step.action == .storeCursor(Self.cursor(hold2)))
        // The batch was full: read on at once.
        #expect(m.event(.cursorStored, now: Self.t0).action == .read(after: Self.cursor(hold2), limit: 3))
    }

    @Test("500 and 429 are retried with doubling backoff, Retry-After honoured; the same notice is sent again, once delivered")
    func retries() {
        var m = machine()
        _ = m.event(.start, now: Self.t0)
        _ = m.event(.cursorLoaded(.origin), now: Self.t0)
        var step = m.event(.batch(AuditBatch(entries: [Self.entry(1)], cursorPresent: true)), now: Self.t0)
        #expect(step.action == .deliver(delivered(step)!, attempt: 1))
        step = m.event(.failed(.retry(reason: "HTTP 500", after: nil)), now: Self.t0)
        #expect(step.action == .wait(.seconds(1)))
        guard case .deliver(_, let second) = m.event(.woke, now: Self.t0 + 1000).action else { return #expect(Bool(false)) }
        #expect(second == 2)
        step = m.event(.failed(.retry(reason: "HTTP 429", after: .seconds(30))), now: Self.t0 + 1000)
        #expect(step.action == .wait(.seconds(30)), "Retry-After wins over the 2 s backoff")
        if case .retrying(_, let reason, let attempt, let wait)? = step.notes.first {
            #expect(reason == "HTTP 429" && attempt == 2 && wait == .seconds(30))
        } else {
            Issue.record("\(step.notes)")
        }
        guard case .deliver(_, 3) = m.event(.woke, now: Self.t0 + 31_000).action else { return #expect(Bool(false)) }
        step = m.event(.delivered, now: Self.t0 + 31_000)
        #expect(step.notes.count == 1)
        if case .delivered(_, let attempts) = step.notes.first { #expect(attempts == 3) } else { Issue.record("\(step.notes)") }
        #expect(step.action == .storeCursor(Self.cursor(Self.entry(1))))
    }

    @Test("a target down for a minute: every notice waits, retried with backoff, and all arrive in order when it is back; none is given up")
    func minuteOutage() {
        var m = machine()
        var now = Self.t0
        _ = m.event(.start, now: now)
        _ = m.event(.cursorLoaded(.origin), now: now)
        let entries = (1...5).map { Self.entry($0) }
        var step = m.event(.batch(AuditBatch(entries: entries, cursorPresent: true)), now: now)
        let outageEnds = Self.t0 + 60_000
        var received: [String] = []
        var waits: [Duration] = []
        var guardSteps = 0
        while guardSteps < 1000 {
            guardSteps += 1
            switch step.action {
            case .deliver(let notice, _):
                if now < outageEnds {
                    step = m.event(.failed(.retry(reason: "connection refused", after: nil)), now: now)
                } else {
                    received.append(notice.webhook["id"]?.stringValue ?? "?")
                    step = m.event(.delivered, now: now)
                }
            case .wait(let d):
                waits.append(d)
                now += Int64(d.components.seconds * 1000)
                step = m.event(.woke, now: now)
            case .storeCursor:
                step = m.event(.cursorStored, now: now)
            case .read:
                guardSteps = 1000
            default:
                Issue.record("unexpected \(step.action)")
                guardSteps = 1000
            }
            #expect(!step.notes.contains { if case .gaveUp = $0 { true } else { false } })
        }
        #expect(received == entries.map(\.id))
        // 1 + 2 + 4 + 8 + 16 + 32 s: the seventh attempt, at 63 s, is after the outage.
        #expect(Array(waits.prefix(6)) == [1, 2, 4, 8, 16, 32].map { .seconds($0) })
        #expect(m.cursor == Self.cursor(entries[4]))
    }

    @Test("a status retrying cannot fix (400) is given up on at once, counted, and the cursor moves past it; so is a notice failing past retryFor")
    func givingUp() {
        var m = machine { $0.retryFor = .seconds(10) }
        _ = m.event(.start, now: Self.t0)
        _ = m.event(.cursorLoaded(.origin), now: Self.t0)
        _ = m.event(.batch(AuditBatch(entries: [Self.entry(1), Self.entry(2)], cursorPresent: true)), now: Self.t0)
        var step = m.event(.failed(.giveUp(reason: "HTTP 400: invalid_payload")), now: Self.t0)
        #expect(step.action == .storeCursor(Self.cursor(Self.entry(1))))
        guard case .gaveUp(_, let reason, 1) = step.notes.first else { return #expect(Bool(false), "\(step.notes)") }
        #expect(reason.contains("400"))
        step = m.event(.cursorStored, now: Self.t0)
        #expect(delivered(step)?.webhook["id"]?.stringValue == Self.entry(2).id)
        step = m.event(.failed(.retry(reason: "HTTP 503", after: nil)), now: Self.t0)
        step = m.event(.woke, now: Self.t0 + 11_000)
        step = m.event(.failed(.retry(reason: "HTTP 503", after: nil)), now: Self.t0 + 11_000)
        #expect(step.action == .storeCursor(Self.cursor(Self.entry(2))))
        #expect(step.notes.contains { if case .gaveUp = $0 { true } else { false } })
    }

    @Test("Redis down: back off (1, 2, 4 s …) and retry the same step; the cursor is never skipped")
    func redisDown() {
        var m = machine()
        _ = m.event(.start, now: Self.t0)
        _ = m.event(.cursorLoaded(.origin), now: Self.t0)
        _ = m.event(.batch(AuditBatch(entries: [Self.entry(1)], cursorPresent: true)), now: Self.t0)
        let store = m.event(.delivered, now: Self.t0).action
        #expect(store == .storeCursor(Self.cursor(Self.entry(1))))
        var step = m.event(.redisFailed("connection refused"), now: Self.t0)
        #expect(step.action == .wait(.seconds(1)))
        #expect(m.event(.woke, now: Self.t0).action == store)
        step = m.event(.redisFailed("connection refused"), now: Self.t0)
        #expect(step.action == .wait(.seconds(2)))
        #expect(m.event(.woke, now: Self.t0).action == store)
        #expect(m.event(.cursorStored, now: Self.t0).action == .wait(.seconds(1)))
        #expect(m.cursor == Self.cursor(Self.entry(1)))
    }

    @Test("the lease lost: stand by, drop what was queued, and reload the cursor (another daemon may have moved it) when leader again")
    func leaseLost() {
        var m = machine()
        _ = m.event(.start, now: Self.t0)
        _ = m.event(.cursorLoaded(.origin), now: Self.t0)
        _ = m.event(.batch(AuditBatch(entries: [Self.entry(1), Self.entry(2)], cursorPresent: true)), now: Self.t0)
        let step = m.event(.notLeader, now: Self.t0)
        #expect(step.notes == [.standingBy])
        #expect(step.action == .wait(.seconds(1)))
        #expect(m.cursor == nil)
        #expect(m.event(.woke, now: Self.t0).action == .loadCursor)
        // Still not leader: no second note.
        #expect(m.event(.notLeader, now: Self.t0).notes.isEmpty)
    }

    @Test("the stream trimmed past the cursor: one notice says how many changes may have been missed, then the rest follow")
    func trimmed() {
        var m = machine()
        _ = m.event(.start, now: Self.t0)
        let stored = Self.cursor(Self.entry(3))
        _ = m.event(.cursorLoaded(stored), now: Self.t0)
        // Revisions 4…7 were trimmed; the first entry left is revision 8.
        var step = m.event(.batch(AuditBatch(entries: [Self.entry(8), Self.entry(9)], cursorPresent: false)), now: Self.t0)
        #expect(step.notes == [.missed(4)])
        let missed = delivered(step)
        #expect(missed?.webhook["type"] == "missed" && missed?.webhook["missed"] == 4)
        #expect(missed?.alert.title == "prod: 4 changes may have been missed")
        step = m.event(.delivered, now: Self.t0)
        guard case .storeCursor(let skip) = step.action else { return #expect(Bool(false)) }
        #expect(skip.revision == 7 && NotificationCursor.precedes(skip.id, Self.entry(8).id))
        step = m.event(.cursorStored, now: Self.t0)
        #expect(delivered(step)?.webhook["id"]?.stringValue == Self.entry(8).id)
        // Read again after that cursor (the fake id is not in the stream): nothing more is missed.
        var again = machine()
        _ = again.event(.start, now: Self.t0)
        _ = again.event(.cursorLoaded(skip), now: Self.t0)
        let retry = again.event(.batch(AuditBatch(entries: [Self.entry(8)], cursorPresent: false)), now: Self.t0)
        #expect(retry.notes.isEmpty)
        // A cursor whose own entry alone was trimmed: nothing missed.
        var exact = machine()
        _ = exact.event(.start, now: Self.t0)
        _ = exact.event(.cursorLoaded(stored), now: Self.t0)
        #expect(exact.event(.batch(AuditBatch(entries: [Self.entry(4)], cursorPresent: false)), now: Self.t0).notes.isEmpty)
    }

    @Test("a cursor taken at an empty stream (0-0 at revision 5): entries trimmed before the first read count as missed")
    func trimmedAtStart() throws {
        var m = machine()
        _ = m.event(.start, now: Self.t0)
        let empty = try #require(NotificationCursor(id: "0-0", revision: 5))
        _ = m.event(.cursorLoaded(empty), now: Self.t0)
        // Revisions 6…8 were written and trimmed while the daemon was down; 9 is the first left.
        let step = m.event(.batch(AuditBatch(entries: [Self.entry(9)], cursorPresent: false)), now: Self.t0)
        #expect(step.notes == [.missed(3)])
        // Nothing trimmed: the next revision follows, and nothing is missed.
        var next = machine()
        _ = next.event(.start, now: Self.t0)
        _ = next.event(.cursorLoaded(empty), now: Self.t0)
        #expect(next.event(.batch(AuditBatch(entries: [Self.entry(6)], cursorPresent: false)), now: Self.t0).notes.isEmpty)
    }

    @Test("an unreadable stored cursor starts at the end, and says so")
    func corruptCursor() {
        var m = machine()
        _ = m.event(.start, now: Self.t0)
        let step = m.event(.cursorCorrupt("field holds 'x'"), now: Self.t0)
        #expect(step.action == .startAtEnd)
        #expect(step.notes == [.corruptCursor("field holds 'x'")])
    }

    @Test(
        "stream ids: successor, predecessor, order and the stored form are checked",
        arguments: ["1-0", "0-5", "18446744073709551615-18446744073709551615"])
    func streamIDs(id: String) {
        if let next = NotificationCursor.successor(of: id) { #expect(NotificationCursor.precedes(id, next)) }
        if let previous = NotificationCursor.predecessor(of: id) { #expect(NotificationCursor.precedes(previous, id)) }
        #expect(NotificationCursor(stored: "\(id) 5")?.stored == "\(id) 5")
        for bad in ["\(id)", "\(id) -1", "x-1 1", "1- 1", "-1-0 1", "1-0 1 2", "\(id) 99999999999999999999"] {
            #expect(NotificationCursor(stored: bad) == nil, "\(bad)")
        }
    }
}
