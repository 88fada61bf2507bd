import FlagpoleCore
import FlagpoleRedis
import FlagpoleStore
import Logging
import Metrics
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Carries out ``ClientSyncStateMachine`` for a running client: the subscription feeds it, a
/// timer task ticks it at its deadlines, and one worker task does the Redis work it asks for.
/// Inputs never queue behind Redis: the subscription's events go into the machine (and a
/// bounded buffer of change events) at once, and readiness and STALE are decided by the timer
/// task even while the worker waits on a read.
///
/// At start, Redis wins: the fallback (disk snapshot, else flag files) is installed only when the
/// first attempt to reach Redis fails (the subscription cannot connect, or the read fails) or
/// the startup timeout passes first. A disk snapshot whose environment ID is not the one Redis
/// reports is dropped (log line, file removed), served or not.
final class ClientSync: Sendable {
    /// What the disk writer does next.
    enum Save: Sendable {
        /// Writes this snapshot of the Redis data with this environment ID.
        case write(FlagSnapshot, environmentID: String?)
        /// Removes the file (it came from other Redis data).
        case remove
    }

    /// The most change events kept while the worker is busy; past it the oldest are dropped (the
    /// chain then breaks and the client reads everything).
    static let eventBufferLimit = 1000

    private struct State {
        /// The fallback, until Redis answers or it is installed.
        var fallback: Fallback?
        /// The disk snapshot being served, until Redis answers.
        var servedDisk: Fallback?
        /// The environment ID of the Redis data, from the last full read.
        var environmentID: String?
        /// Flag key → the reason last logged, so each problem is logged once.
        var malformed: [String: String] = [:]
        /// Change events not applied yet, by revision.
        var events: [Int64: ChangeEvent] = [:]
        var everSubscribed = false
        var subscribed = false
        var everLoaded = false
        var failures = 0
        /// The instant the timer task sleeps until.
        var timerTarget: ContinuousClock.Instant?
    }

    private let client: FlagpoleClient
    private let store: FlagStore
    private let saves: AsyncStream<Save>.Continuation?
    private let machine: Mutex<ClientSyncStateMachine<ContinuousClock>>
    private let state: Mutex<State>
    private let workBell = Doorbell()
    private let timerBell = Doorbell()
    private var logger: Logger { client.logger }

    init(client: FlagpoleClient, store: FlagStore, fallback: Fallback?, saves: AsyncStream<Save>.Continuation?) {
        self.client = client
        self.store = store
        self.saves = saves
        let backoff = client.configuration.redis.backoff
        let configuration = ClientSyncStateMachine<ContinuousClock>.Configuration(
            startupTimeout: client.configuration.startupTimeout, freshnessBound: client.configuration.freshnessBound,
            revisionCheckInterval: client.configuration.revisionCheckInterval,
            retryDelay: { backoff.delay(afterFailures: $0) })
        let age = fallback.map { WallClock.age(since: $0.snapshot.asOf, now: WallClock.now()) } ?? .zero
        machine = Mutex(ClientSyncStateMachine(configuration: configuration, hasFallback: fallback != nil, fallbackAge: age, now: .now))
        state = Mutex(State(fallback: fallback))
    }

    // MARK: - Loops

    /// Feeds the subscription's events to the machine, as they come.
    func consume(_ subscription: AsyncStream<RedisSubscriberEvent>) async {
        for await event in subscription {
            switch event {
            case .subscribed:
                let again = state.withLock { s -> Bool in
                    defer { s.everSubscribed = true; s.subscribed = true }
                    return s.everSubscribed
                }
                if again {
                    client.metrics.reconnects.increment()
                    logger.info("Resubscribed to flag changes; reading everything again")
                }
                input { $0.subscribed(now: $1) }
            case .disconnected(let error):
                let was = state.withLock { s -> Bool in
                    defer { s.subscribed = false }
                    return s.subscribed
                }
                if was {
                    logger.warning("Lost the flag change subscription; serving the last snapshot", metadata: ["flagpole.error": "\(error.message)"])
                }
                input(reason: "the subscription could not connect: \(error.message)") { $0.disconnected(now: $1) }
            case .message(let message):
                let revision: Int64?
                do {
                    let event = try ChangeEvent(message: message.payload)
                    revision = event.revision
                    state.withLock { s in
                        s.events[event.revision] = event
                        if s.events.count > Self.eventBufferLimit, let oldest = s.events.keys.min() { s.events[oldest] = nil }
                    }
                } catch {
                    logger.warning("Unreadable change event; reading everything", metadata: ["flagpole.error": "\(error.message)"])
                    revision = nil
                }
                input { $0.event(revision: revision, now: $1) }
            }
        }
    }

    /// Ticks the machine at its next deadline (readiness, STALE, retries, revision checks),
    /// whatever the worker is doing.
    func runTimers() async {
        while !Task.isCancelled {
            let deadline = machine.withLock { $0.nextDeadline }
            state.withLock { $0.timerTarget = deadline }
            await timerBell.wait(until: deadline)
            if Task.isCancelled { return }
            input { $0.tick(now: $1) }
        }
    }

    /// Does the Redis work the machine asks for, one piece at a time.
    func runWorker() async {
        while !Task.isCancelled {
            guard let work = machine.withLock({ $0.nextWork(now: .now) }) else {
                await workBell.wait(until: nil)
                continue
            }
            switch work {
            case .resync: await resync()
            case .checkRevision: await checkRevision()
            case .catchUp: await catchUp()
            }
        }
    }

    /// Reports evaluation counts and the freshness gauges once a second.
    func runMetrics() async {
        var reported = Array(repeating: 0, count: EvaluationReason.allCases.count)
        while !Task.isCancelled {
            for i in reported.indices {
                let total = client.evaluationCounts.total(i)
                if total != reported[i] {
                    client.metrics.evaluations[i].increment(by: total &- reported[i])
                    reported[i] = total
                }
            }
            client.metrics.record(freshness: client.freshness)
            do { try await Task.sleep(for: .seconds(1)) } catch { return }
        }
    }

    // MARK: - Machine

    /// Gives the machine an input and carries out what it says. `reason` explains a fallback.
    private func input(
        reason: String = "Redis did not answer",
        _ event: (inout ClientSyncStateMachine<ContinuousClock>, ContinuousClock.Instant) -> [ClientSyncStateMachine<ContinuousClock>.Action]
    ) {
        let (actions, deadline) = machine.withLock { m -> ([ClientSyncStateMachine<ContinuousClock>.Action], ContinuousClock.Instant?) in
            let actions = event(&m, .now)
            return (actions, m.nextDeadline)
        }
        perform(actions, reason: reason)
        // The timer sleeps until its target: wake it when the next deadline moved earlier.
        let earlier = state.withLock { s in deadline.map { d in s.timerTarget.map { d < $0 } ?? true } ?? false }
        if earlier { timerBell.ring() }
    }

    private func perform(_ actions: [ClientSyncStateMachine<ContinuousClock>.Action], reason: String) {
        for action in actions {
            switch action {
            case .serveFallback:
                useFallback(because: reason)
            case .markReady:
                if !client.readiness.isOpen, client.snapshot.source != .redis {
                    logger.warning(
                        "Redis did not answer in time; ready with the fallback",
                        metadata: [
                            "flagpole.source": "\(client.snapshot.source.rawValue)", "flagpole.timeout": "\(client.configuration.startupTimeout)",
                        ])
                }
                client.readiness.open()
            case .confirm(let inSync):
                client.confirm(inSync: inSync)
            case .markOutOfSync(let since):
                client.markOutOfSync(since: WallClock.now() - since.duration(to: .now).seconds)
            case .markStale(let stale):
                client.staleFlag.store(stale, ordering: .relaxed)
                client.metrics.record(freshness: client.freshness)
            case .saveSnapshot:
                let environmentID = state.withLock { $0.environmentID }
                saves?.yield(.write(client.snapshot, environmentID: environmentID))
            case .wakeWorker:
                workBell.ring()
            }
        }
    }

    // MARK: - Work

    /// Reads everything and swaps in the result.
    private func resync() async {
        // The read covers every event received so far.
        state.withLock { $0.events = [:] }
        let read: StoreSnapshot
        do {
            read = try await store.read()
        } catch {
            let failures = state.withLock { s -> Int in
                s.failures += 1
                return s.failures
            }
            let message = (error as? StoreError)?.message ?? "\(error)"
            input(reason: "cannot read the flags from Redis: \(message)") { $0.resyncFailed(now: $1) }
            let metadata: Logger.Metadata = ["flagpole.error": "\(message)"]
            if failures == 1 {
                logger.warning("Cannot read the flags from Redis; serving the last snapshot and retrying", metadata: metadata)
            } else {
                logger.debug("Reading the flags from Redis failed again", metadata: metadata)
            }
            return
        }
        let (failures, firstLoad, dropped, previous) = state.withLock { s -> (Int, Bool, Bool, FlagSnapshot) in
            defer {
                s.failures = 0
                s.everLoaded = true
            }
            s.environmentID = read.meta[StoreLayout.environmentIDField]
            let dropped = checkDiskSnapshot(against: s.environmentID, &s)
            return (s.failures, !s.everLoaded, dropped, client.snapshot)
        }
        if failures > 0 {
            logger.info("Read the flags from Redis again", metadata: ["flagpole.attempts": "\(failures)"])
        }
        logger.debug("Read everything from Redis", metadata: ["flagpole.revision": "\(read.revision)"])
        var base = previous
        var droppedKeys: Set<String> = []
        if dropped {
            // Other Redis data: none of it is a "last good version" of these flags.
            droppedKeys = Set(previous.definitions.keys)
            base = .empty
        }
        var update = SnapshotBuilder.full(from: read, layout: store.layout, previous: base, time: WallClock.now())
        update.changed.formUnion(droppedKeys)
        state.withLock { s in s.malformed = s.malformed.filter { key, _ in update.malformed.contains { $0.key == key } } }
        let unchanged = update.changed.isEmpty && base.source == .redis && base.revision == read.revision
        if unchanged {
            note(update.malformed, revision: read.revision)
        } else {
            commit(update, counter: client.metrics.updatesFull)
        }
        if firstLoad {
            logger.info(
                "Following the flags in Redis",
                metadata: ["flagpole.revision": "\(read.revision)", "flagpole.flags": "\(update.snapshot.definitions.count)"])
        }
        noteNeverSynced(read)
        input { $0.resyncSucceeded(revision: read.revision, changed: !unchanged, now: $1) }
    }

    /// Reads the revision alone; the machine reads everything when it is not the applied one.
    private func checkRevision() async {
        do {
            let revision = try await store.revision()
            let applied = client.snapshot.revision
            if revision != applied {
                logger.info(
                    "The revision check found a change no event announced",
                    metadata: ["flagpole.revision": "\(revision)", "flagpole.applied": "\(applied.map(String.init) ?? "none")"])
            }
            input { $0.revisionChecked(revision: revision, now: $1) }
        } catch {
            logger.debug("Revision check failed", metadata: ["flagpole.error": "\(error)"])
            input { $0.revisionCheckFailed(now: $1) }
        }
    }

    /// Applies the change event that follows the applied revision, incrementally; asks for a full
    /// read when there is none (a gap) or it needs one.
    private func catchUp() async {
        let previous = client.snapshot
        let applied = previous.revision ?? -1
        let event = state.withLock { s -> ChangeEvent? in
            for key in s.events.keys where key <= applied { s.events[key] = nil }
            guard let next = s.events.keys.min() else { return nil }
            return s.events.removeValue(forKey: next)
        }
        guard let event, previous.source == .redis, event.previousRevision == applied, !event.metadataChanged else {
            if let event, event.previousRevision != applied {
                logger.info(
                    "Missed a change (revision gap); reading everything",
                    metadata: [
                        "flagpole.applied": "\(applied)", "flagpole.revision": "\(event.revision)", "flagpole.previous": "\(event.previousRevision)",
                    ])
            }
            input { $0.catchUpFailed(needsResync: true, now: $1) }
            return
        }
        var counter = client.metrics.updatesFromEvent
        let states: [String: ChangeEvent.FlagState]
        if let inline = event.flags {
            states = inline
        } else {
            do {
                states = try await store.readFlags(event.changed)
                counter = client.metrics.updatesWithFetch
            } catch {
                logger.warning(
                    "Cannot fetch the changed flags; reading everything when Redis answers",
                    metadata: ["flagpole.error": "\((error as? StoreError)?.message ?? "\(error)")", "flagpole.revision": "\(event.revision)"])
                input { $0.catchUpFailed(needsResync: false, now: $1) }
                return
            }
        }
        let update = SnapshotBuilder.incremental(
            states: states, changed: event.changed, removed: event.removed, revision: event.revision, previous: previous, time: WallClock.now())
        state.withLock { s in
            for key in event.changed + event.removed where !update.malformed.contains(where: { $0.key == key }) {
                s.malformed[key] = nil
            }
        }
        commit(update, counter: counter)
        input { $0.caughtUp(revision: event.revision, changed: !update.changed.isEmpty, now: $1) }
    }

    private func commit(_ update: SnapshotUpdate, counter: Counter) {
        client.install(update.snapshot)
        counter.increment()
        note(update.malformed, revision: update.snapshot.revision)
        if !update.changed.isEmpty { client.changeBroadcaster.publish(update.changed) }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        client.updateBroadcaster.publish(
            FlagpoleClient.Update(
                revision: update.snapshot.revision, changed: update.changed,
                appliedAtUnixNanos: Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)))
    }

    // MARK: - Fallback

    /// Installs the fallback, if Redis has not answered yet and it is not installed already.
    private func useFallback(because reason: String) {
        let fallback = state.withLock { s -> Fallback? in
            guard !s.everLoaded, let f = s.fallback else { return nil }
            s.fallback = nil
            if f.isDisk { s.servedDisk = f }
            return f
        }
        guard let f = fallback else { return }
        // Never over Redis data (a read may have finished meanwhile).
        guard client.installFallback(f.snapshot) else { return }
        client.sync.withLock { $0 = (false, f.snapshot.asOf) }
        var metadata = f.metadata
        metadata["flagpole.reason"] = "\(reason)"
        if f.isDisk {
            logger.info("Serving the last-known-good snapshot until Redis answers", metadata: metadata)
        } else {
            logger.info("Serving the flag files until Redis answers", metadata: metadata)
            for error in f.errors { logger.warning("Flag file error", metadata: ["flagpole.error": "\(error)"]) }
        }
    }

    /// At the first answer from Redis: whether the disk snapshot (served or only read) came from
    /// other Redis data than `live`; if so it is dropped, with a log line, and its file removed.
    /// Returns true when the dropped snapshot was being served.
    private func checkDiskSnapshot(against live: String?, _ s: inout State) -> Bool {
        let pending = s.fallback, served = s.servedDisk
        s.fallback = nil
        s.servedDisk = nil
        guard let disk = served ?? pending, disk.isDisk else { return false }
        guard disk.environmentID != live else { return false }
        logger.warning(
            served != nil
                ? "Dropped the snapshot on disk that was served until Redis answered: it came from other Redis data (its environment ID is not the one Redis holds)"
                : "Discarded the snapshot on disk: it came from other Redis data (its environment ID is not the one Redis holds)",
            metadata: [
                "flagpole.path": "\(disk.path)", "flagpole.snapshotEnvironmentId": "\(disk.environmentID ?? "none")",
                "flagpole.environmentId": "\(live ?? "none")",
            ])
        saves?.yield(.remove)
        return served != nil
    }

    /// Whether `read` is an environment never synced (revision 0, no flags, no meta: nothing was
    /// ever written, so every evaluation gives its code default): marks it for
    /// ``FlagpoleClient/Freshness/isNeverSynced`` and, when it was not so before, logs one warning
    /// naming the environment, the Redis server and the fix. A typo in the environment's name or
    /// the wrong Redis looks like this.
    private func noteNeverSynced(_ read: StoreSnapshot) {
        let neverSynced = read.revision == 0 && read.definitions.isEmpty && read.problems.isEmpty && read.meta.isEmpty
        guard neverSynced else {
            client.neverSynced.store(false, ordering: .relaxed)
            return
        }
        guard !client.neverSynced.exchange(true, ordering: .relaxed) else { return }
        let environment = client.configuration.environment
        let address = client.configuration.redis.address
        logger.warning(
            "Environment '\(environment)' was never synced into Redis at \(address) (revision 0, no flags, no meta): every evaluation gives its code default. Check the environment's name and the Redis address, or run: flagctl sync --env \(environment)",
            metadata: ["flagpole.redis": "\(address)", "flagpole.revision": "0"])
    }

    /// Logs each malformed flag once, until it is repaired.
    private func note(_ problems: [(key: String, reason: String)], revision: Int64?) {
        let fresh = state.withLock { s -> [(key: String, reason: String)] in
            let fresh = problems.filter { s.malformed[$0.key] == nil }
            for (key, reason) in fresh { s.malformed[key] = reason }
            return fresh
        }
        for (key, reason) in fresh {
            logger.warning(
                "Malformed flag in Redis; it keeps its last good version and the other flags update",
                metadata: ["flagpole.flag": "\(key)", "flagpole.error": "\(reason)", "flagpole.revision": "\(revision.map(String.init) ?? "none")"])
        }
        client.metrics.malformed.record(state.withLock { $0.malformed.count })
    }
}

/// Wakes one waiting task; a ring while nobody waits is kept for the next wait.
final class Doorbell: Sendable {
    private struct State {
        var rung = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    func ring() {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            guard let w = s.waiter else {
                s.rung = true
                return nil
            }
            s.waiter = nil
            return w
        }
        waiter?.resume()
    }

    /// Returns when rung, when `deadline` passes (never, if nil), or when the task is cancelled.
    func wait(until deadline: ContinuousClock.Instant?) async {
        if state.withLock({ s in
            defer { s.rung = false }; return s.rung
        }) {
            return
        }
        guard let deadline else {
            await waitRung()
            return
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.waitRung() }
            group.addTask { try? await Task.sleep(until: deadline, clock: .continuous) }
            await group.next()
            group.cancelAll()
        }
    }

    private func waitRung() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let now = state.withLock { s -> Bool in
                    if s.rung {
                        s.rung = false
                        return true
                    }
                    if Task.isCancelled { return true }
                    s.waiter = c
                    return false
                }
                if now { c.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
                defer { s.waiter = nil }
                return s.waiter
            }
            waiter?.resume()
        }
    }
}
