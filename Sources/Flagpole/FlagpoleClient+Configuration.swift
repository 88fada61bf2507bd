import FlagpoleRedis
import FlagpoleStore
import Foundation
import Metrics

extension FlagpoleClient {
    /// How a client finds its flags, how it stays current, and what it reports.
    ///
    /// Only the Redis server, the environment and the application name have no default.
    ///
    /// ```swift
    /// var configuration = FlagpoleClient.Configuration(
    ///     redis: try RedisConfiguration.resolve(),        // FLAGPOLE_REDIS_URL, else redis://127.0.0.1:6379
    ///     environment: "prod",
    ///     application: "checkout-api")
    /// configuration.flagFiles = .init(directory: "flags")  // the cold-start fallback after the disk snapshot
    /// ```
    public struct Configuration: Sendable {
        /// The Redis server (with the client's ACL user, if any). No default:
        /// `RedisConfiguration.resolve()` reads `FLAGPOLE_REDIS_URL`.
        public var redis: RedisConfiguration
        /// The environment whose flags to serve, e.g. `prod`. No default.
        public var environment: String
        /// The application's name, shown by `flagctl clients`. No default.
        public var application: String

        /// How long ``FlagpoleClient/run()`` waits for Redis at start before the client declares
        /// itself ready on its fallback (the disk snapshot, else the flag files, else code
        /// defaults; the fallback is served as soon as Redis is found unreachable). Default: 5 seconds.
        public var startupTimeout: Duration = .seconds(5)
        /// How often the client asks Redis for the revision, to find changes whose event it missed.
        /// Default: 30 seconds.
        public var revisionCheckInterval: Duration = .seconds(30)
        /// How old the data may become, while the client is not in sync with Redis, before
        /// evaluation details report `EvaluationReason.stale` (values are still
        /// served). Default: 60 seconds.
        public var freshnessBound: Duration = .seconds(60)
        /// Where the last-known-good snapshot is kept: the flags last read from Redis, served
        /// only when Redis does not answer at start; nil keeps none. Default:
        /// `$XDG_STATE_HOME/flagpole/<application>-<environment>.json`, else
        /// `~/.local/state/flagpole/…` (when `$HOME` is a folder this user can write), else
        /// `<temporary directory>/flagpole-<uid>/…`; characters of the name other than letters,
        /// digits, `-`, `_` and `.` become `_`.
        ///
        /// The folder is created `0700`; a folder owned by another user or writable by its group
        /// or others is refused (a warning says why; the client then keeps no snapshot). The file
        /// is `0600`, replaced atomically, never read through a symbolic link, and carries a
        /// checksum and the environment ID of the Redis data it came from
        /// (`StoreLayout.environmentIDField`). It is used only if it is of this
        /// environment and intact; when Redis answers, a snapshot of other Redis data (another
        /// server, or the environment deleted and synced again) is dropped and removed. An
        /// environment never written in Redis (revision 0) is served as Redis says: no flags,
        /// so your code defaults — not the snapshot, not the flag files.
        public var snapshotPath: String?
        /// The shortest time between two snapshot writes: while changes come faster, only the
        /// newest is written (many instances on one host would otherwise rewrite the file on every
        /// change). Default: 1 s.
        public var snapshotWriteInterval: Duration = .seconds(1)
        /// Flag files to serve when Redis is down at start and there is no usable snapshot on
        /// disk. Default: none.
        public var flagFiles: FlagFiles?
        /// Outcome reporting. Default: see ``Outcomes``.
        public var outcomes = Outcomes()
        /// The instance registry. Default: see ``Heartbeat``.
        public var heartbeat = Heartbeat()
        /// This instance's ID in the registry. Default: `<host>-<pid>-<8 random hex digits>`.
        public var instanceID: String
        /// Where metrics go. Default: nil, the factory `MetricsSystem.bootstrap` installed.
        public var metricsFactory: (any MetricsFactory)?

        /// A configuration with every other setting at its default.
        ///
        /// - Parameters:
        ///   - redis: The Redis server.
        ///   - environment: The environment, e.g. `prod`.
        ///   - application: The application's name.
        public init(redis: RedisConfiguration, environment: String, application: String) {
            self.redis = redis
            self.environment = environment
            self.application = application
            snapshotPath = SnapshotFile.defaultPath(
                application: application, environment: environment, variables: ProcessInfo.processInfo.environment,
                temporaryDirectory: FileManager.default.temporaryDirectory.path, userID: UInt32(geteuid()),
                isWritableFolder: { access($0, W_OK) == 0 })
            instanceID = "\(HostInfo.hostName)-\(getpid())-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
        }

        /// Outcome reporting: what work under each flag's evaluation achieved (see
        /// ``FlagpoleClient/recordOutcome(flag:variant:success:duration:)``).
        public struct Outcomes: Sendable {
            /// Whether outcomes are sent to Redis at all. Default: true.
            public var isEnabled = true
            /// How often counts are flushed, in one pipelined round trip. Default: 1 second.
            public var flushInterval: Duration = .seconds(1)
            /// How long the per-minute buckets live in Redis. Default: 6 hours
            /// (`StoreLayout.defaultOutcomeRetention`).
            public var retention: Duration = StoreLayout.defaultOutcomeRetention
            /// The most flag/variant pairs kept in memory between flushes, per stripe of the
            /// in-memory table (there are 16). Outcomes for pairs past it are dropped and counted.
            /// Default: 1,024.
            public var maxPairs = 1024
            /// The most flag/variant/minute counts held while Redis is unreachable; older minutes
            /// are kept, new ones dropped and counted. Default: 100,000.
            public var maxPending = 100_000

            /// The defaults.
            public init() {}
        }

        /// The heartbeat each instance writes so that `flagctl clients` can list it.
        public struct Heartbeat: Sendable {
            /// Whether the instance registers itself. Default: true.
            public var isEnabled = true
            /// How often it heartbeats. Default: 10 seconds.
            public var interval: Duration = .seconds(10)
            /// How long a heartbeat lives. Default: 30 seconds.
            public var timeToLive: Duration = .seconds(30)

            /// The defaults.
            public init() {}
        }
    }
}

/// Facts about this process, for the registry.
enum HostInfo {
    static let pid = Int64(getpid())

    static let hostName: String = {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return "unknown-host" }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? "unknown-host" : name
    }()
}
