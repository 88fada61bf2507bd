import FlagpoleCore
import FlagpoleRedis
import FlagpoleRollout
import FlagpoleStore
import Foundation
import Logging
import Prometheus
import ServiceLifecycle
import Synchronization

/// Announces every change of an environment — each entry of its audit stream but the watcher's
/// sampled holds — to the alert targets whose `notify` names it (`flagctl daemon`;
/// docs/daemon.md#notifications).
///
/// - From the audit stream: a change made by any `flagctl` anywhere (or the console, or the
///   watcher) is announced, even when that `flagctl` exited at once.
/// - Exactly once: each target's cursor (the last stream id announced) is stored in Redis
///   (``StoreLayout/notifyCursors``) after each delivery, and only by the daemon holding the
///   watcher lease (``RolloutWatcher``): a notice is sent only while this daemon holds the lease
///   with at least ``Configuration-swift.struct/leaseMargin`` left, and its cursor is written by a
///   script that checks the lease and its fencing token. A restarted daemon, or another one that
///   takes the lease over, resumes after the stored cursor. The one repeat possible: this daemon
///   stops (killed, or paused past its lease) between a delivery and its cursor write.
/// - First start (no cursor): starts at the stream's end, announcing nothing earlier, and logs so.
/// - Never lost quietly: a target that fails keeps its notices, in order, retrying with backoff
///   (``NotifierStateMachine``); Redis down: the same. The audit stream trimmed past a cursor:
///   one notice says how many changes may have been missed.
///
/// Reads go through its own ``RedisClient`` (never the client library's connection, so flag
/// reads are never delayed). Each target is sent to on its own, so a slow target holds up no
/// other. What to do is ``NotifierStateMachine``'s to decide; this class carries it out.
package final class ChangeNotifier: Service, Sendable {
    /// How notifications are sent.
    package struct Configuration: Sendable {
        /// The environment announced.
        package var environment: String
        /// The watcher's identity in the lease (``RolloutWatcher/Configuration-swift.struct/holderID``):
        /// notices are sent only while it holds the lease.
        package var holderID: String
        /// The web console's address (`--console-url`), for a link to each flag's page. Default: nil.
        package var consoleURL: String?
        /// Audit entries read at once. Default: 100.
        package var batchSize = 100
        /// How often the stream is polled when idle. Default: 1 s.
        package var pollInterval: Duration = .seconds(1)
        /// The first retry's wait; doubling per failure. Default: 1 s.
        package var initialBackoff: Duration = .seconds(1)
        /// The longest wait between retries. Default: 60 s.
        package var maxBackoff: Duration = .seconds(60)
        /// How long a notice is retried before it is given up on. Default: 1 hour.
        package var retryFor: Duration = .seconds(3600)
        /// How long one HTTP request may take. Default: 10 s.
        package var requestTimeout: Duration = .seconds(10)
        /// A notice is sent only while the lease has at least this long left, so it never expires
        /// mid-delivery (and another daemon starts announcing the same change). Default: 12 s
        /// (the lease lasts 30 s and is renewed every watcher interval).
        package var leaseMargin: Duration = .seconds(12)
        /// Telegram's Bot API base URL. Default: `https://api.telegram.org`.
        package var telegramAPIBase = "https://api.telegram.org"

        /// The defaults for an environment and the watcher's holder id.
        package init(environment: String, holderID: String) {
            self.environment = environment
            self.holderID = holderID
        }

        func machine(target: String) -> NotifierStateMachine.Configuration {
            var c = NotifierStateMachine.Configuration(environment: environment, target: target)
            c.consoleURL = consoleURL
            c.batchSize = batchSize
            c.pollInterval = pollInterval
            c.initialBackoff = initialBackoff
            c.maxBackoff = maxBackoff
            c.retryFor = retryFor
            return c
        }
    }

    /// Counts per target.
    package struct Statistics: Sendable, Hashable {
        /// Notices the target accepted.
        package var sent = 0
        /// Notices given up on.
        package var failed = 0
        /// Attempts that failed and were retried.
        package var retried = 0
        /// Changes counted as missed (the stream trimmed past the cursor).
        package var missed = 0

        /// All zero.
        package init() {}
    }

    package let configuration: Configuration
    private let channels: [AlertDispatcher.Channel]
    private let stats: Mutex<[String: Statistics]>
    private let counters: [String: [Counter]]
    private let store: FlagStore
    private let clock: any RolloutClock
    private let logger: Logger

    static let families: [(name: String, help: String, path: WritableKeyPath<Statistics, Int> & Sendable)] = [
        ("flagpole_notifications_sent_total", "Change notifications delivered to a target.", \.sent),
        ("flagpole_notifications_failed_total", "Change notifications given up on.", \.failed),
        ("flagpole_notifications_retries_total", "Failed notification attempts that were retried.", \.retried),
        ("flagpole_notifications_missed_total", "Changes trimmed from the audit stream before they were announced.", \.missed),
    ]

    /// The targets among `targets` that announce `environment`'s changes (``AlertTarget/notify``).
    package static func targets(_ targets: [AlertTarget], announcing environment: String) -> [AlertTarget] {
        targets.filter { $0.notifies(environment: environment) }
    }

    /// A notifier for the targets among `targets` whose `notify` names the environment.
    ///
    /// - Parameters:
    ///   - client: its own Redis client (reads the stream and the lease, writes the cursors).
    ///   - clock: the time and the waits. Default: the wall clock.
    ///   - processEnvironment: where the targets' variables are read. Default: the process's.
    ///   - registry: where `flagpole_notifications_*_total` go. Default: none.
    /// - Throws: ``AlertConfigurationError`` naming every target whose variable is unset, empty
    ///   or not a URL; ``StoreError`` for an invalid environment name.
    package init(
        configuration: Configuration, targets: [AlertTarget], client: RedisClient, clock: any RolloutClock = SystemRolloutClock(),
        processEnvironment: [String: String] = ProcessInfo.processInfo.environment, registry: PrometheusCollectorRegistry? = nil,
        logger: Logger
    ) throws {
        var dispatch = AlertDispatcher.Configuration()
        dispatch.telegramAPIBase = configuration.telegramAPIBase
        let (channels, problems) = AlertDispatcher.resolve(
            Self.targets(targets, announcing: configuration.environment), processEnvironment: processEnvironment, configuration: dispatch,
            registry: nil)
        guard problems.isEmpty else { throw AlertConfigurationError(problems: problems) }
        self.configuration = configuration
        self.channels = channels
        self.stats = Mutex(Dictionary(channels.map { ($0.target.name, Statistics()) }, uniquingKeysWith: { a, _ in a }))
        self.counters = Dictionary(
            channels.map { channel in
                let labels = [("target", channel.target.name), ("type", channel.kind)]
                return (
                    channel.target.name,
                    registry.map { registry in
                        Self.families.map {
                            registry.makeCounter(
                                descriptor: MetricNameDescriptor(
                                    namespace: nil, subsystem: nil, metricName: $0.name, unitName: "", helpText: $0.help),
                                labels: labels)
                        }
                    } ?? []
                )
            }, uniquingKeysWith: { a, _ in a })
        self.store = try FlagStore(client: client, environment: configuration.environment)
        self.clock = clock
        var logger = logger
        logger[metadataKey: "flagpole.environment"] = .string(configuration.environment)
        self.logger = logger
    }

    /// The names of the targets announced to.
    package var targetNames: [String] { channels.map(\.target.name) }

    /// Counts per target name.
    package var statistics: [String: Statistics] { stats.withLock { $0 } }

    /// Announces until cancelled or shut down gracefully. A delivery under way and its cursor write
    /// finish first (the watcher, listed before this service, gives the lease up only after).
    package func run() async throws {
        await withDiscardingTaskGroup { group in
            for channel in channels {
                group.addTask { await self.announce(to: channel) }
            }
        }
        if channels.isEmpty { try? await gracefulShutdown() }
    }

    private func count(_ target: String, _ path: WritableKeyPath<Statistics, Int>, by n: Int = 1) {
        stats.withLock { $0[target]?[keyPath: path] += n }
        if let i = Self.families.firstIndex(where: { $0.path == path }), let c = counters[target], i < c.count { c[i].increment(by: Int64(n)) }
    }

    /// The lease, when this daemon holds it with the margin left: its fencing token.
    private func heldToken() async throws -> Int64? {
        let (lease, fence) = try await store.watcherLease()
        guard let lease, lease.holder == configuration.holderID, lease.token == fence,
            lease.expiresAt - clock.nowMilliseconds() >= NotifierStateMachine.milliseconds(configuration.leaseMargin)  // both within ±2^53
        else { return nil }
        return lease.token
    }

    private func announce(to channel: AlertDispatcher.Channel) async {
        let name = channel.target.name
        var logger = self.logger
        logger[metadataKey: "flagpole.alert.target"] = .string(name)
        logger[metadataKey: "flagpole.alert.type"] = .string(channel.kind)
        var machine = NotifierStateMachine(configuration: configuration.machine(target: name))
        var step = machine.event(.start, now: clock.nowMilliseconds())
        var token: Int64?
        while true {
            note(step.notes, target: name, logger: logger)
            // Between notices (never between a delivery and its cursor write) a shutdown ends the loop.
            switch step.action {
            case .deliver, .storeCursor: break
            default: if Task.isCancelled || Task.isShuttingDownGracefully { return }
            }
            let event: NotifierStateMachine.Event
            do {
                switch step.action {
                case .loadCursor:
                    token = try await heldToken()
                    if token == nil {
                        event = .notLeader
                    } else {
                        do { event = .cursorLoaded(try await store.notificationCursor(target: name)) } catch let error as StoreError
                            where error.code == .corruptData
                        {
                            event = .cursorCorrupt(error.message)
                        }
                    }
                case .startAtEnd:
                    let end = try await store.auditEnd()
                    if let token {
                        try await store.storeNotificationCursor(
                            end, target: name, holder: configuration.holderID, token: token, nowMilliseconds: clock.nowMilliseconds())
                        event = .startedAtEnd(end)
                    } else {
                        event = .notLeader
                    }
                case .read(let after, let limit):
                    event = .batch(try await store.auditEntries(after: after, limit: limit))
                case .deliver(let notice, _):
                    token = try await heldToken()
                    if token == nil {
                        event = .notLeader
                    } else {
                        let body = notice.body(for: channel.messageKind, chatID: channel.chatID)
                        let result = await AlertDispatcher.post(body, via: channel, timeout: configuration.requestTimeout)
                        event = result == .delivered ? .delivered : .failed(result)
                    }
                case .storeCursor(let cursor):
                    if let token {
                        try await store.storeNotificationCursor(
                            cursor, target: name, holder: configuration.holderID, token: token, nowMilliseconds: clock.nowMilliseconds())
                        event = .cursorStored
                    } else {
                        event = .notLeader
                    }
                case .wait(let duration):
                    do {
                        try await cancelWhenGracefulShutdown { try await self.clock.sleep(for: duration) }
                    } catch {
                        return
                    }
                    event = .woke
                }
            } catch let error as StoreError where error.code == .fenced {
                event = .notLeader
            } catch {
                event = .redisFailed("\(error)")
            }
            if case .failed(.retry) = event { count(name, \.retried) }
            step = machine.event(event, now: clock.nowMilliseconds())
        }
    }

    private func note(_ notes: [NotifierStateMachine.Note], target: String, logger: Logger) {
        for n in notes {
            switch n {
            case .resumed(let cursor):
                logger.info("announcing changes to \(target), resuming after \(cursor)")
            case .startedAtEnd(let cursor):
                logger.notice(
                    "no notification cursor for \(target) yet: starting at the end of the audit stream (\(cursor)); earlier changes are not announced"
                )
            case .corruptCursor(let reason):
                logger.error("the notification cursor of \(target) is unreadable (\(reason)); starting at the end of the audit stream")
            case .delivered(let title, let attempts):
                count(target, \.sent)
                if attempts > 1 { logger.info("notification delivered after \(attempts) attempts", metadata: ["flagpole.alert.title": "\(title)"]) }
            case .retrying(let title, let reason, let attempt, let wait):
                logger.debug(
                    "notification attempt \(attempt) failed (\(reason)); retrying in \(wait)", metadata: ["flagpole.alert.title": "\(title)"])
            case .gaveUp(let title, let reason, let attempts):
                count(target, \.failed)
                logger.error(
                    "notification to \(target) given up after \(attempts) attempt\(attempts == 1 ? "" : "s"): \(reason)",
                    metadata: ["flagpole.alert.title": "\(title)"])
            case .missed(let n):
                count(target, \.missed, by: Int(clamping: n))
                logger.warning("the audit stream was trimmed before \(n) change\(n == 1 ? "" : "s") were announced to \(target)")
            case .redisFailed(let reason, let wait):
                logger.warning("notifications to \(target) wait for Redis (\(reason)); trying again in \(wait)")
            case .standingBy:
                logger.info("not announcing to \(target): another daemon holds the watcher lease")
            }
        }
    }
}
