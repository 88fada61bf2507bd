import Foundation
import Logging

/// The client's connections and their reconnect state: one to the server (or the Sentinel-named
/// primary), or one per cluster node with the cluster's slot map. Only ever touched on the
/// client's thread, which is why it may be `@unchecked Sendable`.
final class ConnectionSlot: @unchecked Sendable {
    let configuration: RedisConfiguration
    private let logger: Logger
    private var closed = false

    /// Which connection: the one server (standalone, Sentinel primary) or one cluster node.
    private enum NodeKey: Hashable {
        case primary
        case node(RedisConfiguration.Endpoint)
    }

    /// One connection and its reconnect pacing.
    private struct Node {
        var connection: RedisConnection?
        var failures = 0
        var retryAt: ContinuousClock.Instant?
        var lastError: RedisError?
    }

    private var nodes: [NodeKey: Node] = [:]

    /// The running call's deadline and stop signal.
    private var call = IOLimit(end: .now, signal: nil)
    /// When connecting must be over in the running call (set at its first connect attempt):
    /// every attempt of one call shares one connect timeout.
    private var connectEnd: ContinuousClock.Instant?

    // Sentinel
    private var watch: SentinelWatch?
    private var seenGeneration = 0

    // Cluster
    /// True on a cluster: by configuration, or since a standalone server answered `MOVED`.
    private var isCluster: Bool
    private var seeds: [RedisConfiguration.Endpoint]
    /// The owner of each hash slot, when known.
    private var slotOwners: [RedisConfiguration.Endpoint?] = []
    private var mapIsStale = true

    init(configuration: RedisConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        if case .cluster(let seeds) = configuration.topology {
            isCluster = true
            self.seeds = seeds
        } else {
            isCluster = false
            seeds = [configuration.endpoint]
        }
    }

    func close() {
        nodes = [:]
        closed = true
        watch?.stop()
        watch = nil
    }

    deinit {
        watch?.stop()
    }

    /// Runs one call's `body` within `limit`: every wait inside it (connecting, discovery,
    /// redirects, replies) ends by `limit.end` or when `limit.signal` says stop.
    func perform<T>(_ limit: IOLimit, _ body: () throws -> T) throws -> T {
        call = limit
        connectEnd = nil
        defer {
            // Idle connections keep no call's limit.
            for (_, node) in nodes { node.connection?.callLimit = nil }
        }
        return try body()
    }

    /// When the current call's connecting must end: its connect timeout, counted from its first
    /// attempt, or its deadline if sooner.
    private func connectDeadline() -> ContinuousClock.Instant {
        let end = connectEnd ?? (ContinuousClock.now + configuration.connectTimeout)
        connectEnd = end
        return min(end, call.end)
    }

    /// Waits `duration` (less if the call's deadline comes first); throws if the call is stopped.
    private func pause(_ duration: Duration) throws(RedisError) {
        if case .stopped(let reason) = RedisConnection.waitReady(
            -1, events: 0, until: min(ContinuousClock.now + duration, call.end), signal: call.signal)
        {
            throw reason
        }
    }

    // MARK: - Operations

    func send(_ command: RedisCommand) throws(RedisError) -> RedisReply {
        let reply = try exchange([command], slot: command.hashSlot, retryWhole: true)[0]
        if case .error(let e) = reply { throw RedisConnection.serverError(e, command: command.name, address: lastAddress) }
        return reply
    }

    func evaluate(_ script: RedisScript, keys: [RedisArgument], arguments: [RedisArgument]) throws(RedisError) -> RedisReply {
        let tail = [RedisArgument(keys.count)] + keys + arguments
        let slot = keys.first.map { RedisHashSlot.slot(of: $0.bytes) }
        var reply = try exchange([RedisCommand(["EVALSHA", RedisArgument(script.sha1)] + tail)], slot: slot, retryWhole: true)[0]
        var name = "EVALSHA"
        if case .error(let e) = reply, e.hasPrefix("NOSCRIPT") {
            reply = try exchange([RedisCommand(["EVAL", RedisArgument(script.source)] + tail)], slot: slot, retryWhole: true)[0]
            name = "EVAL"
        }
        if case .error(let e) = reply { throw RedisConnection.serverError(e, command: name, address: lastAddress) }
        return reply
    }

    func transaction(_ commands: [RedisCommand]) throws(RedisError) -> [RedisReply]? {
        let slots = Set(commands.compactMap(\.hashSlot))
        if isCluster, slots.count > 1 {
            throw RedisError(
                code: .serverError,
                message:
                    "CROSSSLOT the transaction's keys are in \(slots.count) different hash slots; on a cluster they must share one (use a hash tag)",
                address: configuration.address, command: "MULTI", serverMessage: "CROSSSLOT")
        }
        let replies = try exchange([["MULTI"]] + commands + [["EXEC"]], slot: slots.first, retryWhole: true)
        return try RedisConnection.transactionResult(replies, commands: commands, address: lastAddress)
    }

    func pipeline(_ commands: [RedisCommand]) throws(RedisError) -> [RedisReply] {
        guard !commands.isEmpty else { return [] }
        var replies: [RedisReply]
        if !isCluster {
            replies = try exchange(commands, slot: nil, retryWhole: false)
            if case .sentinel = configuration.topology {
                // Commands answered READONLY did nothing (the primary became a replica): ask the
                // Sentinels again and send those once more, in order, to the primary they name.
                let refused = replies.indices.filter { replies[$0].errorMessage?.hasPrefix("READONLY") == true }
                if !refused.isEmpty {
                    logger.info(
                        "Redis primary became a replica; asking the Sentinels again",
                        metadata: [
                            "flagpole.redis": "\(lastAddress)", "flagpole.commands": "\(refused.count)",
                        ])
                    drop(.primary, resetBackoff: true)
                    let again = try exchange(refused.map { commands[$0] }, slot: nil, retryWhole: false)
                    for (i, reply) in zip(refused, again) { replies[i] = reply }
                }
            }
            guard isCluster else { return replies }  // a MOVED reply made it a cluster: redirect below
        } else {
            // One pipeline per node, in the order of first appearance; replies back in command order.
            if mapIsStale { refreshMapQuietly() }
            var groups: [(slot: Int?, owner: RedisConfiguration.Endpoint?, indexes: [Int])] = []
            for (i, command) in commands.enumerated() {
                let slot = command.hashSlot
                let owner = slot.flatMap { slotOwners.isEmpty ? nil : slotOwners[$0] }
                if let g = groups.firstIndex(where: { $0.owner == owner && (owner != nil || $0.slot == slot) }) {
                    groups[g].indexes.append(i)
                } else {
                    groups.append((slot, owner, [i]))
                }
            }
            replies = Array(repeating: .null, count: commands.count)
            for group in groups {
                let part = try exchange(group.indexes.map { commands[$0] }, slot: group.slot, retryWhole: false)
                for (i, reply) in zip(group.indexes, part) { replies[i] = reply }
            }
        }
        // Commands answered with a redirect did nothing: send each again on its own (in order).
        for i in replies.indices where Redirect(replies[i]) != nil {
            replies[i] = try exchange([commands[i]], slot: commands[i].hashSlot, retryWhole: true)[0]
        }
        return replies
    }

    func use<T>(slot: Int?, _ body: (RedisConnection) throws -> T) throws -> T {
        let key: NodeKey
        if isCluster {
            if mapIsStale { refreshMapQuietly() }
            key = .node(slot.flatMap { slotOwners.isEmpty ? nil : slotOwners[$0] } ?? anyNode())
        } else {
            key = .primary
        }
        let connection = try connection(key)
        defer {
            // The body may have left WATCH or MULTI behind (it threw, or returned before EXEC):
            // the next call on this shared connection must not inherit them.
            try? connection.resetSession()
            afterUse(key, connection)
        }
        return try body(connection)
    }

    // MARK: - Routing

    /// The address of the node that answered last, for errors.
    private var lastAddress: String = ""

    /// Sends `commands` as one pipeline to the server, or on a cluster to the owner of `slot`.
    /// With `retryWhole` (a command, a transaction, a script: nothing ran when redirected) it
    /// follows `MOVED`/`ASK`/`TRYAGAIN`, and on a Sentinel primary answering `READONLY` moves to
    /// the new primary and tries once more.
    private func exchange(_ commands: [RedisCommand], slot: Int?, retryWhole: Bool) throws(RedisError) -> [RedisReply] {
        if isCluster { return try clusterExchange(commands, slot: slot, retryWhole: retryWhole) }
        var retried = false
        while true {
            let connection = try connection(.primary)
            lastAddress = connection.configuration.address
            let replies: [RedisReply]
            do {
                replies = try connection.pipeline(commands)
            } catch {
                afterUse(.primary, connection)
                throw error
            }
            if case .sentinel = configuration.topology, retryWhole, !retried,
                replies.contains(where: { $0.errorMessage?.hasPrefix("READONLY") == true })
            {
                logger.info(
                    "Redis primary became a replica; asking the Sentinels again",
                    metadata: [
                        "flagpole.redis": "\(connection.configuration.address)"
                    ])
                drop(.primary, resetBackoff: true)
                retried = true
                continue
            }
            if case .standalone = configuration.topology, replies.contains(where: { Redirect($0)?.isMoved == true }) {
                logger.info("Redis answered MOVED: switching to cluster mode", metadata: ["flagpole.redis": "\(configuration.address)"])
                isCluster = true
                mapIsStale = true
                if retryWhole { return try clusterExchange(commands, slot: slot, retryWhole: true) }
            }
            return replies
        }
    }

    private func clusterExchange(_ commands: [RedisCommand], slot: Int?, retryWhole: Bool) throws(RedisError) -> [RedisReply] {
        var asking: RedisConfiguration.Endpoint?
        var redirects = 0
        while true {
            if mapIsStale { refreshMapQuietly() }
            let target = asking ?? slot.flatMap { slotOwners.isEmpty ? nil : slotOwners[$0] } ?? anyNode()
            let connection = try connection(.node(target))
            lastAddress = connection.configuration.address
            var replies: [RedisReply]
            do {
                replies = try connection.pipeline(asking != nil ? [["ASKING"]] + commands : commands)
            } catch {
                afterUse(.node(target), connection)
                throw error
            }
            if asking != nil { replies.removeFirst() }
            asking = nil
            guard retryWhole, let redirect = replies.lazy.compactMap({ Redirect($0) }).first else { return replies }
            if redirects >= configuration.maxRedirects {
                throw RedisError(
                    code: .serverError,
                    message: "gave up after \(redirects) cluster redirects (last: \(redirect.description))",
                    address: connection.configuration.address, command: commands.first?.name)
            }
            redirects += 1
            switch redirect {
            case .moved(let movedSlot, let endpoint):
                let owner = Self.resolve(endpoint, from: target)
                if slotOwners.isEmpty { slotOwners = Array(repeating: nil, count: RedisHashSlot.count) }
                slotOwners[movedSlot] = owner
                logger.debug("Redis cluster slot moved", metadata: ["flagpole.slot": "\(movedSlot)", "flagpole.redis": "\(owner.address)"])
            case .ask(_, let endpoint):
                asking = Self.resolve(endpoint, from: target)
            case .tryAgain:
                try pause(.milliseconds(5 * redirects))
            }
        }
    }

    /// A redirect's address with an empty host means the host of the node that answered.
    private static func resolve(_ endpoint: RedisConfiguration.Endpoint, from node: RedisConfiguration.Endpoint) -> RedisConfiguration.Endpoint {
        if case .tcp("", let port) = endpoint, case .tcp(let host, _) = node { return .tcp(host: host, port: port) }
        return endpoint
    }

    /// A node to send a command without keys to: a connected one, else a known one, else a seed.
    private func anyNode() -> RedisConfiguration.Endpoint {
        for (key, node) in nodes {
            if case .node(let e) = key, let c = node.connection, !c.isBroken { return e }
        }
        return slotOwners.lazy.compactMap { $0 }.first ?? seeds[0]
    }

    /// Reads the slot map (`CLUSTER SLOTS`) from a connected node, a known node or a seed; on
    /// failure the map stays as it was (a redirect or the next attempt corrects it).
    private func refreshMapQuietly() {
        var candidates: [RedisConfiguration.Endpoint] = []
        for (key, node) in nodes {
            if case .node(let e) = key, node.connection?.isBroken == false { candidates.append(e) }
        }
        for e in seeds + Array(Set(slotOwners.compactMap { $0 })).sorted(by: { $0.address < $1.address }) where !candidates.contains(e) {
            candidates.append(e)
        }
        // One connect budget for the whole search: each candidate gets a fair share of what is left.
        let end = connectDeadline()
        for (i, endpoint) in candidates.enumerated() {
            let share = ContinuousClock.now.fairShare(of: end, among: candidates.count - i)
            guard let connection = try? connection(.node(endpoint), until: share) else { continue }
            connection.callLimit = IOLimit(end: min(share, call.end), signal: call.signal)
            defer { connection.callLimit = call }
            do {
                let reply = try connection.send(["CLUSTER", "SLOTS"])
                if let map = Self.parseSlots(reply, askedHost: endpoint) {
                    slotOwners = map
                    mapIsStale = false
                    return
                }
            } catch {
                afterUse(.node(endpoint), connection)
            }
        }
    }

    /// `CLUSTER SLOTS` as the owner of each slot.
    static func parseSlots(_ reply: RedisReply, askedHost: RedisConfiguration.Endpoint) -> [RedisConfiguration.Endpoint?]? {
        guard let ranges = reply.array else { return nil }
        var owners = [RedisConfiguration.Endpoint?](repeating: nil, count: RedisHashSlot.count)
        for range in ranges {
            guard let r = range.array, r.count >= 3, let start = r[0].integer, let end = r[1].integer,
                let primary = r[2].array, primary.count >= 2, let port = primary[1].integer, (1...65535).contains(port),
                start >= 0, end < RedisHashSlot.count, start <= end
            else { return nil }
            var host = primary[0].string ?? ""
            if host.isEmpty || host == "?", case .tcp(let asked, _) = askedHost { host = asked }
            let owner = RedisConfiguration.Endpoint.tcp(host: host, port: Int(port))
            for s in Int(start)...Int(end) { owners[s] = owner }
        }
        return owners
    }

    // MARK: - Connections

    /// The connection for `key`, connected (by `until`, within the call's connect budget) if need be.
    private func connection(_ key: NodeKey, until: ContinuousClock.Instant? = nil) throws(RedisError) -> RedisConnection {
        if closed { throw RedisError(code: .clientClosed, message: "the client is closed", address: configuration.address) }
        if let reason = call.signal?.stopReason { throw reason }
        if key == .primary { followFailover() }
        var node = nodes[key] ?? Node()
        if let connection = node.connection, !connection.isBroken {
            connection.callLimit = call
            return connection
        }
        node.connection = nil
        let address = key == .primary ? configuration.address : configuration.node(endpoint(key)).address
        let now = ContinuousClock.now
        if let retryAt = node.retryAt, now < retryAt, let lastError = node.lastError {
            nodes[key] = node
            let wait = now.duration(to: retryAt)
            throw RedisError(
                code: .reconnecting,
                message: "not connected (\(lastError.message)); next attempt in \(wait.wholeMilliseconds) ms",
                address: address)
        }
        let end = until.map { min($0, connectDeadline()) } ?? connectDeadline()
        do {
            let c: RedisConnection
            switch key {
            case .primary:
                startWatchIfNeeded()
                c = try RedisConnection(configuration: configuration, until: end, signal: call.signal)
            case .node(let e):
                c = try RedisConnection(candidates: [configuration.node(e)], describing: nil, until: end, signal: call.signal)
            }
            c.callLimit = call
            if node.failures > 0 {
                logger.info("Redis reconnected", metadata: ["flagpole.redis": "\(c.configuration.address)", "flagpole.attempts": "\(node.failures)"])
            }
            nodes[key] = Node(connection: c)
            return c
        } catch {
            // A call stopped by its caller says nothing about the server.
            if error.code == .cancelled { throw error }
            node.failures += 1
            node.lastError = error
            let delay = configuration.backoff.delay(afterFailures: node.failures)
            node.retryAt = ContinuousClock.now + delay
            nodes[key] = node
            if isCluster { mapIsStale = true }
            logger.debug(
                "Redis connect failed",
                metadata: [
                    "flagpole.redis": "\(address)", "flagpole.error": "\(error.message)",
                    "flagpole.retryInMs": "\(delay.wholeMilliseconds)",
                ])
            throw error
        }
    }

    private func endpoint(_ key: NodeKey) -> RedisConfiguration.Endpoint {
        if case .node(let e) = key { return e }
        return configuration.endpoint
    }

    /// After a command: forgets a broken connection (and, on a cluster, the slot map with it).
    private func afterUse(_ key: NodeKey, _ connection: RedisConnection) {
        guard connection.isBroken, nodes[key]?.connection === connection else { return }
        nodes[key]?.connection = nil
        if isCluster { mapIsStale = true }
        logger.warning("Redis connection lost", metadata: ["flagpole.redis": "\(connection.configuration.address)"])
    }

    private func drop(_ key: NodeKey, resetBackoff: Bool) {
        nodes[key]?.connection = nil
        if resetBackoff { nodes[key] = Node() }
    }

    // MARK: - Sentinel

    private func startWatchIfNeeded() {
        guard watch == nil, case .sentinel = configuration.topology else { return }
        let w = SentinelWatch(configuration: configuration, logger: logger) { _ in }
        watch = w
        w.start()
    }

    /// Asks the Sentinels which node is the primary now (every one that answers must agree) and,
    /// when the connection is not to that node (or there is none), connects to it and checks with
    /// `ROLE` that it is a primary. Closes the window in which `get-master-addr-by-name` already
    /// names a promoted replica but `+switch-master` is not yet published, while the old primary
    /// still accepts writes that it will drop when the Sentinels make it a replica.
    func confirmPrimary() throws(RedisError) {
        guard case .sentinel(let masterName, _) = configuration.topology else { return }
        if closed { throw RedisError(code: .clientClosed, message: "the client is closed", address: configuration.address) }
        let named = try SentinelResolver.agreedPrimary(of: configuration, until: connectDeadline(), reserving: 1, signal: call.signal)
        let current = nodes[.primary]?.connection
        if let current, !current.isBroken, current.configuration.endpoint == named { return }
        if let current {
            logger.info(
                "Redis Sentinels name another primary: moving to it",
                metadata: [
                    "flagpole.redis": "\(current.configuration.address)", "flagpole.primary": "\(named.address)",
                ])
        }
        drop(.primary, resetBackoff: true)
        startWatchIfNeeded()
        let c = try RedisConnection(candidates: [configuration.node(named)], describing: nil, until: connectDeadline(), signal: call.signal)
        c.callLimit = call
        let role = try c.send(["ROLE"])
        guard role.array?.first?.string == "master" else {
            throw RedisError(
                code: .connectionFailed,
                message:
                    "the Sentinels name \(c.configuration.address) as primary of '\(masterName)', but it says it is a \(role.array?.first?.string ?? "server of unknown role") (a failover in progress?)",
                address: c.configuration.address, command: "ROLE")
        }
        nodes[.primary] = Node(connection: c)
        lastAddress = c.configuration.address
    }

    /// When the Sentinels named a different primary since we last looked, drop the connection
    /// to the old one so the next command asks them again.
    private func followFailover() {
        guard let watch else { return }
        let (generation, primary) = watch.primary
        guard generation != seenGeneration else { return }
        seenGeneration = generation
        if let primary, let c = nodes[.primary]?.connection, c.configuration.endpoint != primary {
            logger.info(
                "Redis Sentinel failover: moving to the new primary",
                metadata: [
                    "flagpole.redis": "\(c.configuration.address)", "flagpole.primary": "\(primary.address)",
                ])
            drop(.primary, resetBackoff: true)
        }
    }
}

/// A cluster redirect in an error reply: `MOVED slot host:port`, `ASK slot host:port`, `TRYAGAIN …`.
enum Redirect: CustomStringConvertible {
    case moved(slot: Int, to: RedisConfiguration.Endpoint)
    case ask(slot: Int, to: RedisConfiguration.Endpoint)
    case tryAgain

    init?(_ reply: RedisReply) {
        guard case .error(let message) = reply else { return nil }
        if message.hasPrefix("TRYAGAIN") {
            self = .tryAgain
            return
        }
        let words = message.split(separator: " ")
        guard words.count == 3, words[0] == "MOVED" || words[0] == "ASK", let slot = Int(words[1]),
            (0..<RedisHashSlot.count).contains(slot), let colon = words[2].lastIndex(of: ":"),
            let port = Int(words[2][words[2].index(after: colon)...]), (1...65535).contains(port)
        else { return nil }
        var host = String(words[2][..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        // An empty host means "the host you are talking to" (the node knows no better address).
        let endpoint = RedisConfiguration.Endpoint.tcp(host: host, port: port)
        self = words[0] == "MOVED" ? .moved(slot: slot, to: endpoint) : .ask(slot: slot, to: endpoint)
    }

    var isMoved: Bool {
        if case .moved = self { return true }
        return false
    }

    var description: String {
        switch self {
        case .moved(let slot, let to): return "MOVED \(slot) \(to.address)"
        case .ask(let slot, let to): return "ASK \(slot) \(to.address)"
        case .tryAgain: return "TRYAGAIN"
        }
    }
}
