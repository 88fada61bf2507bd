import FlagpoleCore
import FlagpoleRedis
import FlagpoleStore
import Logging
import Metrics
import ServiceLifecycle
#if canImport(Glibc)
import Glibc
#endif

extension FlagpoleClient {
    /// Runs the client: follows Redis (falling back, while Redis does not answer at start, on the
    /// disk snapshot, else the flag files), and flushes outcomes and heartbeats, until the task is
    /// cancelled or a graceful shutdown begins. Then it flushes what is left and removes its
    /// heartbeat.
    ///
    /// Call it once, from a `ServiceGroup` or a task group you own; it returns only when the
    /// client stops. Redis being down is not an error: the client keeps serving what it has and
    /// catches up when Redis returns.
    ///
    /// - Throws: ``FlagpoleClientError/Code-swift.struct/alreadyRunning`` on a second call;
    ///   ``FlagpoleClientError/Code-swift.struct/invalidConfiguration`` for an invalid environment name.
    public func run() async throws {
        guard !started.exchange(true, ordering: .acquiringAndReleasing) else {
            throw FlagpoleClientError(code: .alreadyRunning, message: "run() was already called on this client")
        }
        let store: FlagStore
        let reportingStore: FlagStore
        do {
            store = try FlagStore(client: RedisClient(configuration: configuration.redis, logger: logger), environment: configuration.environment)
            // Outcomes and heartbeats have a connection of their own: a flush that waits (a large
            // one after an outage, a retry) never holds up a flag read.
            reportingStore = try FlagStore(
                client: RedisClient(configuration: configuration.redis, logger: logger), environment: configuration.environment)
        } catch {
            throw FlagpoleClientError(code: .invalidConfiguration, message: error.message, underlying: error)
        }
        let fallback = loadFallback()
        let startedAt = Int64(WallClock.now())
        let reporter = Reporter(client: self, store: reportingStore, startedAt: startedAt)
        await cancelWhenGracefulShutdown {
            await self.follow(store: store, reporter: reporter, fallback: fallback)
        }
        await reporter.finish()
        changeBroadcaster.finish()
        updateBroadcaster.finish()
        await store.client.close()
        await reportingStore.client.close()
    }

    /// Reads the disk snapshot, else the flag files: what to serve if Redis does not answer at
    /// start. Nothing is installed here: Redis, when it answers, is always preferred.
    private func loadFallback() -> Fallback? {
        if let path = configuration.snapshotPath {
            do {
                if let contents = try SnapshotFile.read(path: path, environment: configuration.environment, now: WallClock.now()) {
                    let (snapshot, malformed) = SnapshotBuilder.document(
                        contents.document, algorithm: contents.algorithm, source: .disk, revision: contents.revision, time: contents.savedAt)
                    return Fallback(
                        snapshot: snapshot, path: path, environmentID: contents.environmentID,
                        metadata: [
                            "flagpole.path": "\(path)", "flagpole.revision": "\(contents.revision)",
                            "flagpole.environmentId": "\(contents.environmentID ?? "none")",
                            "flagpole.flags": "\(snapshot.definitions.count)", "flagpole.malformed": "\(malformed.count)",
                        ],
                        errors: [])
                }
            } catch {
                logger.warning(
                    "Cannot use the snapshot on disk; falling back to the flag files, else code defaults, if Redis does not answer",
                    metadata: ["flagpole.path": "\(path)", "flagpole.error": "\(error.message)"])
            }
        }
        if let files = configuration.flagFiles {
            guard let loaded = files.load(environment: configuration.environment) else {
                logger.warning(
                    "No flag files for this environment",
                    metadata: ["flagpole.path": "\(files.directory)/\(configuration.environment)"])
                return nil
            }
            let (snapshot, _) = SnapshotBuilder.document(loaded.document, algorithm: loaded.algorithm, source: .files, revision: nil, time: WallClock.now())
            return Fallback(
                snapshot: snapshot, path: "\(files.directory)/\(configuration.environment)", environmentID: nil,
                metadata: [
                    "flagpole.path": "\(files.directory)/\(configuration.environment)", "flagpole.flags": "\(snapshot.definitions.count)",
                    "flagpole.fileErrors": "\(loaded.errors.count)",
                ],
                errors: loaded.errors.prefix(5).map { "\($0)" })
        }
        return nil
    }

    /// The loops: subscription, ticks, the updater, the disk writer and the reporter.
    private func follow(store: FlagStore, reporter: Reporter, fallback: Fallback?) async {
        let (inputs, input) = AsyncStream.makeStream(of: Updater.Input.self)
        let (saves, save) = AsyncStream.makeStream(of: Updater.Save.self, bufferingPolicy: .bufferingNewest(1))
        let subscriber = RedisSubscriber(configuration: configuration.redis, logger: logger)
        let channel = store.layout.changes
        await withDiscardingTaskGroup { group in
            group.addTask {
                for await event in subscriber.subscribe(to: [channel]) {
                    switch event {
                    case .subscribed: input.yield(.subscribed)
                    case .message(let message): input.yield(.message(message.payload))
                    case .disconnected(let error): input.yield(.disconnected(error.message))
                    }
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    do { try await Task.sleep(for: Updater.tick) } catch { break }
                    input.yield(.tick)
                }
            }
            group.addTask {
                let updater = Updater(
                    client: self, store: store, fallback: fallback, saves: self.configuration.snapshotPath == nil ? nil : save)
                for await next in inputs { await updater.handle(next) }
            }
            if let path = configuration.snapshotPath {
                group.addTask {
                    var failing = false
                    for await next in saves {
                        do {
                            switch next {
                            case .write(let snapshot, let environmentID):
                                try SnapshotFile.write(
                                    SnapshotFile.encode(
                                        snapshot, environment: self.configuration.environment, environmentID: environmentID,
                                        savedAt: snapshot.asOf),
                                    to: path)
                            case .remove:
                                try SnapshotFile.remove(path: path)
                            }
                            failing = false
                            // Coalesce: while changes come fast, write the newest at most once per
                            // interval (a shutdown cuts the wait short and writes the last one).
                            try? await Task.sleep(for: self.configuration.snapshotWriteInterval)
                        } catch {
                            if !failing {
                                self.logger.warning(
                                    "Cannot write the snapshot to disk", metadata: ["flagpole.path": "\(path)", "flagpole.error": "\(error)"])
                            }
                            failing = true
                        }
                    }
                }
            }
            group.addTask {
                await reporter.loop()
            }
        }
    }

    /// Marks the data current (in sync when subscribed) as of now.
    func confirm(inSync: Bool) {
        let now = WallClock.now()
        sync.withLock { $0 = (inSync, now) }
        // STALE is derived from the sync state: recompute it now, not at the next tick.
        refreshStaleness()
    }

    /// Marks the client out of sync; the data's age counts from now.
    func markOutOfSync() {
        let now = WallClock.now()
        sync.withLock { s in
            if s.inSync { s = (false, now) }
        }
        refreshStaleness()
    }

    /// Recomputes STALE and the data-age gauge.
    func refreshStaleness() {
        let f = freshness
        let bound = configuration.freshnessBound
        let stale = f.source != .defaults && !f.isInSync && (f.age ?? .zero) > bound
        staleFlag.store(stale, ordering: .relaxed)
        metrics.dataAge.record(f.age.map(\.seconds) ?? 0)
    }
}

/// What a client serves while Redis does not answer at start: the disk snapshot or the flag
/// files, read and checked but not installed.
struct Fallback: Sendable {
    var snapshot: FlagSnapshot
    /// The file or folder it came from.
    var path: String
    /// The disk snapshot's environment ID (nil for flag files, or a snapshot of data without one).
    var environmentID: String?
    /// What the "serving" log line says about it.
    var metadata: Logger.Metadata
    /// Flag file errors to log with it.
    var errors: [String]

    var isDisk: Bool { snapshot.source == .disk }
}

/// Applies what Redis says to the client's snapshot, one input at a time (on one task).
///
/// At start, Redis wins: the fallback (disk snapshot, else flag files) is installed only when the
/// first attempt to reach Redis fails (the subscription cannot connect, or the read fails) or
/// the startup timeout passes first. A disk snapshot whose environment ID is not the one Redis
/// reports is dropped (log line, file removed), served or not.
final class Updater {
    enum Input: Sendable {
        case subscribed
        case disconnected(String)
        case message([UInt8])
        case tick
    }

    /// What the disk writer does next.
    enum Save: Sendable {
        /// Writes this snapshot of the Redis data with this environment ID.
        case write(FlagSnapshot, environmentID: String?)
        /// Removes the file (it came from other Redis data).
        case remove
    }

    /// How often the run loop looks at timers (retries, revision checks, staleness, readiness).
    static let tick: Duration = .milliseconds(100)

    private let client: FlagpoleClient
    private let store: FlagStore
    private let saves: AsyncStream<Save>.Continuation?
    /// The fallback, until Redis answers or it is installed.
    private var fallback: Fallback?
    /// The disk snapshot being served, until Redis answers.
    private var servedDisk: Fallback?
    /// The environment ID of the Redis data, from the last full read.
    private var environmentID: String?
    private var logger: Logger { client.logger }
    private var subscribed = false
    private var everSubscribed = false
    private var needsResync = true
    private var failures = 0
    private var retryAt: ContinuousClock.Instant
    private var nextCheck: ContinuousClock.Instant
    private let startDeadline: ContinuousClock.Instant
    private var nextMetrics: ContinuousClock.Instant
    private var reportedEvaluations: [Int]
    /// Flag key → the reason last logged, so each problem is logged once.
    private var malformed: [String: String] = [:]
    private var savedRevision: Int64?
    private var everLoaded = false

    init(client: FlagpoleClient, store: FlagStore, fallback: Fallback?, saves: AsyncStream<Save>.Continuation?) {
        self.client = client
        self.store = store
        self.fallback = fallback
        self.saves = saves
        let now = ContinuousClock.now
        // The subscription's first `.subscribed` triggers the first read; this is the fallback
        // when subscribing does not work.
        retryAt = now + .seconds(1)
        nextCheck = now + client.configuration.revisionCheckInterval
        startDeadline = now + client.configuration.startupTimeout
        nextMetrics = now
        reportedEvaluations = Array(repeating: 0, count: EvaluationReason.allCases.count)
    }

    func handle(_ input: Input) async {
        switch input {
        case .subscribed:
            if everSubscribed {
                client.metrics.reconnects.increment()
                logger.info("Resubscribed to flag changes; reading everything again")
            }
            everSubscribed = true
            subscribed = true
            await resync(reason: "subscribed")
        case .disconnected(let message):
            if subscribed {
                logger.warning("Lost the flag change subscription; serving the last snapshot", metadata: ["flagpole.error": "\(message)"])
            }
            subscribed = false
            useFallback(because: "the subscription could not connect: \(message)")
            client.markOutOfSync()
        case .message(let payload):
            await apply(payload)
        case .tick:
            await tick()
        }
    }

    private func tick() async {
        let now = ContinuousClock.now
        if !client.readiness.isOpen, now >= startDeadline {
            useFallback(because: "Redis did not answer within the startup timeout")
            client.readiness.open()
            logger.warning(
                "Redis did not answer in time; ready with the fallback",
                metadata: ["flagpole.source": "\(client.snapshot.source.rawValue)", "flagpole.timeout": "\(client.configuration.startupTimeout)"])
        }
        if needsResync {
            if now >= retryAt { await resync(reason: "retry") }
        } else if now >= nextCheck {
            await checkRevision()
        }
        client.refreshStaleness()
        if now >= nextMetrics {
            nextMetrics = now + .seconds(1)
            for i in reportedEvaluations.indices {
                let total = client.evaluationCounts.total(i)
                if total != reportedEvaluations[i] {
                    client.metrics.evaluations[i].increment(by: total &- reportedEvaluations[i])
                    reportedEvaluations[i] = total
                }
            }
        }
    }

    /// Reads the revision alone; reads everything when it is not the applied one.
    private func checkRevision() async {
        nextCheck = ContinuousClock.now + client.configuration.revisionCheckInterval
        do {
            let revision = try await store.revision()
            if revision != client.snapshot.revision {
                logger.info(
                    "The revision check found a change no event announced",
                    metadata: ["flagpole.revision": "\(revision)", "flagpole.applied": "\(client.snapshot.revision.map(String.init) ?? "none")"])
                await resync(reason: "revision check")
            } else {
                client.confirm(inSync: subscribed)
            }
        } catch {
            logger.debug("Revision check failed", metadata: ["flagpole.error": "\(error)"])
        }
    }

    /// Reads everything and swaps in the result.
    private func resync(reason: String) async {
        let read: StoreSnapshot
        do {
            read = try await store.read()
        } catch {
            failures += 1
            needsResync = true
            useFallback(because: "cannot read the flags from Redis: \((error as? StoreError)?.message ?? "\(error)")")
            client.markOutOfSync()
            retryAt = ContinuousClock.now + client.configuration.redis.backoff.delay(afterFailures: failures)
            let metadata: Logger.Metadata = ["flagpole.error": "\((error as? StoreError)?.message ?? "\(error)")", "flagpole.reason": "\(reason)"]
            if failures == 1 {
                logger.warning("Cannot read the flags from Redis; serving the last snapshot and retrying", metadata: metadata)
            } else {
                logger.debug("Reading the flags from Redis failed again", metadata: metadata)
            }
            return
        }
        if failures > 0 {
            logger.info("Read the flags from Redis again", metadata: ["flagpole.attempts": "\(failures)"])
        }
        failures = 0
        needsResync = false
        nextCheck = ContinuousClock.now + client.configuration.revisionCheckInterval
        environmentID = read.meta[StoreLayout.environmentIDField]
        var previous = client.snapshot
        var dropped: Set<String> = []
        if checkDiskSnapshot(against: environmentID) {
            // Other Redis data: none of it is a "last good version" of these flags.
            dropped = Set(previous.definitions.keys)
            previous = .empty
        }
        var update = SnapshotBuilder.full(from: read, layout: store.layout, previous: previous, time: WallClock.now())
        update.changed.formUnion(dropped)
        malformed = malformed.filter { key, _ in update.malformed.contains { $0.key == key } }
        if update.changed.isEmpty, previous.source == .redis, previous.revision == read.revision {
            note(update.malformed, revision: read.revision)
            client.confirm(inSync: subscribed)
        } else {
            commit(update, counter: client.metrics.updatesFull)
        }
        if !everLoaded {
            everLoaded = true
            logger.info(
                "Following the flags in Redis",
                metadata: ["flagpole.revision": "\(read.revision)", "flagpole.flags": "\(update.snapshot.definitions.count)"])
        }
        client.readiness.open()
    }

    /// Applies one change event: incrementally when it follows the applied revision, else by
    /// reading everything.
    private func apply(_ payload: [UInt8]) async {
        let event: ChangeEvent
        do {
            event = try ChangeEvent(message: payload)
        } catch {
            logger.warning("Unreadable change event; reading everything", metadata: ["flagpole.error": "\(error.message)"])
            await resync(reason: "unreadable event")
            return
        }
        let previous = client.snapshot
        guard !needsResync, previous.source == .redis, let applied = previous.revision else {
            await resync(reason: "event before a full read")
            return
        }
        if event.revision <= applied { return }
        if event.previousRevision != applied || event.metadataChanged {
            if event.previousRevision != applied {
                logger.info(
                    "Missed a change (revision gap); reading everything",
                    metadata: ["flagpole.applied": "\(applied)", "flagpole.revision": "\(event.revision)", "flagpole.previous": "\(event.previousRevision)"])
            }
            await resync(reason: "revision gap")
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
                needsResync = true
                client.markOutOfSync()
                retryAt = ContinuousClock.now
                return
            }
        }
        let update = SnapshotBuilder.incremental(
            states: states, changed: event.changed, removed: event.removed, revision: event.revision, previous: previous, time: WallClock.now())
        for key in event.changed + event.removed where !update.malformed.contains(where: { $0.key == key }) {
            malformed[key] = nil
        }
        commit(update, counter: counter)
    }

    private func commit(_ update: SnapshotUpdate, counter: Counter) {
        client.install(update.snapshot)
        client.confirm(inSync: subscribed)
        counter.increment()
        note(update.malformed, revision: update.snapshot.revision)
        if !update.changed.isEmpty { client.changeBroadcaster.publish(update.changed) }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        client.updateBroadcaster.publish(
            FlagpoleClient.Update(
                revision: update.snapshot.revision, changed: update.changed,
                appliedAtUnixNanos: Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)))
        // Revision 0 is an environment never written: nothing worth keeping.
        if (!update.changed.isEmpty || update.snapshot.revision != savedRevision), (update.snapshot.revision ?? 0) > 0 {
            savedRevision = update.snapshot.revision
            saves?.yield(.write(update.snapshot, environmentID: environmentID))
        }
    }

    /// Installs the fallback, if Redis has not answered yet and it is not installed already.
    private func useFallback(because reason: String) {
        guard !everLoaded, let f = fallback else { return }
        fallback = nil
        client.install(f.snapshot)
        client.sync.withLock { $0 = (false, f.snapshot.asOf) }
        client.refreshStaleness()
        var metadata = f.metadata
        metadata["flagpole.reason"] = "\(reason)"
        if f.isDisk {
            servedDisk = f
            logger.info("Serving the last-known-good snapshot until Redis answers", metadata: metadata)
        } else {
            logger.info("Serving the flag files until Redis answers", metadata: metadata)
            for error in f.errors { logger.warning("Flag file error", metadata: ["flagpole.error": "\(error)"]) }
        }
    }

    /// At the first answer from Redis: whether the disk snapshot (served or only read) came from
    /// other Redis data than `live`; if so it is dropped, with a log line, and its file removed.
    /// Returns true when the dropped snapshot was being served.
    private func checkDiskSnapshot(against live: String?) -> Bool {
        let pending = fallback, served = servedDisk
        fallback = nil
        servedDisk = nil
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

    /// Logs each malformed flag once, until it is repaired.
    private func note(_ problems: [(key: String, reason: String)], revision: Int64?) {
        for (key, reason) in problems where malformed[key] == nil {
            malformed[key] = reason
            logger.warning(
                "Malformed flag in Redis; it keeps its last good version and the other flags update",
                metadata: ["flagpole.flag": "\(key)", "flagpole.error": "\(reason)", "flagpole.revision": "\(revision.map(String.init) ?? "none")"])
        }
        client.metrics.malformed.record(malformed.count)
    }
}
