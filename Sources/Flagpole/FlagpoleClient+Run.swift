import FlagpoleCore
import FlagpoleRedis
import FlagpoleStore
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
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
    ///   ``FlagpoleClientError/Code-swift.struct/invalidConfiguration`` for an invalid environment
    ///   name or Redis settings that fail `RedisConfiguration.validate()` (a timeout of zero, …).
    public func run() async throws {
        guard !started.exchange(true, ordering: .acquiringAndReleasing) else {
            throw FlagpoleClientError(code: .alreadyRunning, message: "run() was already called on this client")
        }
        let store: FlagStore
        let reportingStore: FlagStore
        do {
            try configuration.redis.validate()
        } catch {
            throw FlagpoleClientError(code: .invalidConfiguration, message: error.message, underlying: error)
        }
        do {
            store = try FlagStore(client: RedisClient(configuration: configuration.redis, logger: logger), environment: configuration.environment)
            // Outcomes and heartbeats have a connection of their own: a flush that waits (a large
            // one after an outage, a retry) never holds up a flag read.
            reportingStore = try FlagStore(
                client: RedisClient(configuration: configuration.redis, logger: logger), environment: configuration.environment)
        } catch {
            throw FlagpoleClientError(code: .invalidConfiguration, message: error.message, underlying: error)
        }
        // Reading and writing the disk snapshot (fsync) blocks: on a thread of its own, never on
        // Swift's cooperative pool.
        let files = DedicatedThread(name: FlagpoleClient.fileThreadName)
        defer { files.stop() }
        let fallback = (try? await files.run { self.loadFallback() }) ?? nil
        let startedAt = Int64(WallClock.now())
        let reporter = Reporter(client: self, store: reportingStore, startedAt: startedAt)
        await cancelWhenGracefulShutdown {
            await self.follow(store: store, reporter: reporter, fallback: fallback, files: files)
        }
        await reporter.finish()
        changeBroadcaster.finish()
        updateBroadcaster.finish()
        swapBroadcaster.finish()
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
            let (snapshot, _) = SnapshotBuilder.document(
                loaded.document, algorithm: loaded.algorithm, source: .files, revision: nil, time: WallClock.now())
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

    /// The name of the thread that reads and writes the disk snapshot.
    static let fileThreadName = "flagpole.files"

    /// The loops: the subscription, the sync timers and worker (``ClientSync``), the disk writer
    /// and the reporter.
    private func follow(store: FlagStore, reporter: Reporter, fallback: Fallback?, files: DedicatedThread) async {
        let (saves, save) = AsyncStream.makeStream(of: ClientSync.Save.self, bufferingPolicy: .bufferingNewest(1))
        let subscriber = RedisSubscriber(configuration: configuration.redis, logger: logger)
        let channel = store.layout.changes
        let sync = ClientSync(client: self, store: store, fallback: fallback, saves: configuration.snapshotPath == nil ? nil : save)
        await withDiscardingTaskGroup { group in
            group.addTask {
                await sync.consume(subscriber.subscribe(to: [channel]))
            }
            group.addTask { await sync.runTimers() }
            group.addTask { await sync.runWorker() }
            group.addTask { await sync.runMetrics() }
            if let path = configuration.snapshotPath {
                group.addTask {
                    var failing = false
                    for await next in saves {
                        do {
                            let environment = self.configuration.environment
                            try await files.run {
                                switch next {
                                case .write(let snapshot, let environmentID):
                                    try SnapshotFile.write(
                                        SnapshotFile.encode(snapshot, environment: environment, environmentID: environmentID, savedAt: snapshot.asOf),
                                        to: path)
                                case .remove:
                                    try SnapshotFile.remove(path: path)
                                }
                                self.snapshotWrittenOnFileThread.store(files.isCurrent ? 1 : -1, ordering: .relaxed)
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
        metrics.record(freshness: freshness)
    }

    /// Marks the client out of sync; the data's age counts from `since` (wall clock).
    func markOutOfSync(since: Double) {
        sync.withLock { s in
            if s.inSync { s = (false, since) }
        }
        metrics.record(freshness: freshness)
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
