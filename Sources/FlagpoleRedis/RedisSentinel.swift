import Logging
import Synchronization

/// Asks Redis Sentinels which server is the primary.
///
/// Every question shares one time budget: the Sentinels are asked in the configured order, each
/// within a fair share of the time left (a dead one that never answers cannot use it all).
enum SentinelResolver {
    /// The primary's address, from the first Sentinel (in the configured order) that names one,
    /// by `end`. `reserving` keeps that many extra shares of the time for what the caller does
    /// next (connecting to the primary). The error names every Sentinel tried and why it did not help.
    static func primary(
        of configuration: RedisConfiguration, until end: ContinuousClock.Instant, reserving: Int = 0, signal: (any CallSignal)? = nil
    ) throws(RedisError) -> RedisConfiguration.Endpoint {
        guard case .sentinel(let masterName, let sentinels) = configuration.topology else { return configuration.endpoint }
        var tried: [String] = []
        var allRefusedAuth = !sentinels.isEmpty
        for (i, sentinel) in sentinels.enumerated() {
            let share = ContinuousClock.now.fairShare(of: end, among: sentinels.count - i + reserving)
            do {
                if let primary = try ask(sentinel, of: configuration, masterName: masterName, until: share, signal: signal) { return primary }
                tried.append("\(sentinel.address): does not monitor '\(masterName)' (or named no valid address)")
                allRefusedAuth = false
            } catch {
                if error.code == .cancelled { throw error }
                tried.append("\(sentinel.address): \(error.message)")
                if error.code != .authenticationFailed { allRefusedAuth = false }
            }
        }
        throw RedisError(
            code: allRefusedAuth ? .authenticationFailed : .connectionFailed,
            message: "no Sentinel named the primary of '\(masterName)' (tried \(tried.joined(separator: "; ")))",
            address: configuration.address, command: "SENTINEL")
    }

    /// The primary every Sentinel that answers names now: each configured Sentinel is asked (not
    /// only the first), because during a failover the leader already names the promoted replica
    /// while the others still name the old primary until `+switch-master` spreads. When they
    /// disagree a failover is in progress and this throws (the caller tries again later).
    static func agreedPrimary(
        of configuration: RedisConfiguration, until end: ContinuousClock.Instant, reserving: Int = 0, signal: (any CallSignal)? = nil
    ) throws(RedisError) -> RedisConfiguration.Endpoint {
        guard case .sentinel(let masterName, let sentinels) = configuration.topology else { return configuration.endpoint }
        var named: [(sentinel: String, primary: RedisConfiguration.Endpoint)] = []
        var tried: [String] = []
        var allRefusedAuth = !sentinels.isEmpty
        for (i, sentinel) in sentinels.enumerated() {
            let share = ContinuousClock.now.fairShare(of: end, among: sentinels.count - i + reserving)
            do {
                let primary = try ask(sentinel, of: configuration, masterName: masterName, until: share, signal: signal)
                allRefusedAuth = false
                if let primary {
                    named.append((sentinel.address, primary))
                } else {
                    tried.append("\(sentinel.address): does not monitor '\(masterName)' (or named no valid address)")
                }
            } catch {
                if error.code == .cancelled { throw error }
                tried.append("\(sentinel.address): \(error.message)")
                if error.code != .authenticationFailed { allRefusedAuth = false }
            }
        }
        guard let first = named.first else {
            throw RedisError(
                code: allRefusedAuth ? .authenticationFailed : .connectionFailed,
                message: "no Sentinel named the primary of '\(masterName)' (tried \(tried.joined(separator: "; ")))",
                address: configuration.address, command: "SENTINEL")
        }
        guard named.allSatisfy({ $0.primary == first.primary }) else {
            throw RedisError(
                code: .connectionFailed,
                message: "the Sentinels disagree on the primary of '\(masterName)' (a failover in progress?): "
                    + named.map { "\($0.sentinel) names \($0.primary.address)" }.joined(separator: "; "),
                address: configuration.address, command: "SENTINEL")
        }
        return first.primary
    }

    /// Connects to one Sentinel and asks it, all by `end`.
    private static func ask(
        _ sentinel: RedisConfiguration.Endpoint, of configuration: RedisConfiguration, masterName: String,
        until end: ContinuousClock.Instant, signal: (any CallSignal)?
    ) throws(RedisError) -> RedisConfiguration.Endpoint? {
        let connection = try RedisConnection(
            candidates: [configuration.sentinelNode(sentinel)], describing: nil, until: end, signal: signal)
        connection.callLimit = IOLimit(end: end, signal: signal)
        return try ask(connection, masterName: masterName)
    }

    /// `SENTINEL get-master-addr-by-name`: the primary's address, or nil when unknown (or when the
    /// reply's port is not a TCP port).
    static func ask(_ connection: RedisConnection, masterName: String) throws(RedisError) -> RedisConfiguration.Endpoint? {
        let reply = try connection.send(["SENTINEL", "get-master-addr-by-name", RedisArgument(masterName)])
        guard let parts = reply.array, parts.count == 2, let host = parts[0].string,
            let port = parts[1].string.flatMap({ Int($0) }), (1...65535).contains(port)
        else { return nil }
        return .tcp(host: host, port: port)
    }

    /// The new primary's address in a `+switch-master` message (`NAME OLD-IP OLD-PORT NEW-IP NEW-PORT`)
    /// when it is about `masterName`.
    static func switchedPrimary(_ payload: [UInt8], masterName: String) -> RedisConfiguration.Endpoint? {
        let words = String(decoding: payload, as: UTF8.self).split(separator: " ")
        guard words.count == 5, words[0] == masterName, let port = Int(words[4]), (1...65535).contains(port) else { return nil }
        return .tcp(host: String(words[3]), port: port)
    }
}

/// Follows the Sentinels' view of the primary: subscribed to `+switch-master` on one Sentinel
/// (the next one when it goes away), on a thread of its own, and asks for the primary each time
/// it (re)subscribes, so an announcement missed while disconnected is caught up.
final class SentinelWatch: Sendable {
    private let reader: SubscriptionReader
    private let state = State()

    private final class State: Sendable {
        /// How many times the primary was learned, and the last one learned.
        let learned = Mutex<(generation: Int, primary: RedisConfiguration.Endpoint?)>((0, nil))
        /// What the Sentinel said before the watch subscribed.
        let pending = Mutex<RedisConfiguration.Endpoint?>(nil)
    }

    /// - Parameter onChange: called on the watch's thread with the primary each time it is learned.
    init(configuration: RedisConfiguration, logger: Logger, onChange: @escaping @Sendable (RedisConfiguration.Endpoint) -> Void) {
        guard case .sentinel(let masterName, let sentinels) = configuration.topology else {
            preconditionFailure("SentinelWatch needs a Sentinel configuration")
        }
        let state = self.state
        let learned: @Sendable (RedisConfiguration.Endpoint) -> Void = { endpoint in
            state.learned.withLock { $0 = ($0.generation + 1, endpoint) }
            onChange(endpoint)
        }
        reader = SubscriptionReader(
            configuration: configuration, channels: ["+switch-master"], patterns: [], pingInterval: .seconds(5),
            connect: { () throws(RedisError) -> RedisConnection in
                let connection = try RedisConnection(
                    candidates: sentinels.map { configuration.sentinelNode($0) }, describing: "Sentinel")
                let primary = try SentinelResolver.ask(connection, masterName: masterName)
                state.pending.withLock { $0 = primary }
                return connection
            },
            deliver: { event in
                switch event {
                case .subscribed:
                    if let primary = state.pending.withLock({ $0 }) { learned(primary) }
                case .message(let message):
                    if let primary = SentinelResolver.switchedPrimary(message.payload, masterName: masterName) {
                        logger.info(
                            "Redis Sentinel failover",
                            metadata: [
                                "flagpole.redis": "\(configuration.address)", "flagpole.primary": "\(primary.address)",
                            ])
                        learned(primary)
                    }
                case .disconnected:
                    break
                }
            },
            finish: {}, logger: logger)
    }

    /// The primary the Sentinels named last, if known, and a number that grows each time it is
    /// learned (to tell news from a view already acted on).
    var primary: (generation: Int, primary: RedisConfiguration.Endpoint?) { state.learned.withLock { $0 } }

    func start() { reader.start(threadName: "flagpole.redis.sentinel") }

    func stop() { reader.stop() }
}
