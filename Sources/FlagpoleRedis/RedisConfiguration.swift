import Foundation

/// Where a Redis server is and how to talk to it.
///
/// Made from a URL:
/// - `redis://[user:password@]host:port[/db]` — one server;
/// - `unix:///path/to/redis.sock[?db=N]` (a `password=` query item works for unix sockets too);
/// - `redis-sentinel://[user:password@]host:port[,host:port…]/MASTER-NAME[?db=N&sentinelPassword=…&sentinelUser=…]`
///   — the primary that these Sentinels name, followed across failovers (user and password are
///   for the data nodes; `sentinelPassword`/`sentinelUser` for the Sentinels, default: none);
/// - `redis-cluster://[user:password@]host:port[,host:port…]` — a Redis Cluster found through
///   these seed nodes; every command goes to the node that owns its key's slot.
///
/// A `redis://` client that is answered `MOVED` switches to cluster mode by itself, with its server
/// as the seed. `FLAGPOLE_REDIS_URL` names the server for every Flagpole command and for the
/// library; the default is `redis://127.0.0.1:6379`.
public struct RedisConfiguration: Sendable, Hashable {
    /// A TCP host and port, or a unix socket path.
    public enum Endpoint: Sendable, Hashable {
        case tcp(host: String, port: Int)
        case unix(path: String)

        /// `host:port` (`[::1]:port` for IPv6) or `unix:/path`, for messages.
        public var address: String {
            switch self {
            case .tcp(let host, let port): return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
            case .unix(let path): return "unix:\(path)"
            }
        }
    }

    /// How the Redis deployment is laid out.
    public enum Topology: Sendable, Hashable {
        /// One server at ``RedisConfiguration/endpoint`` (default).
        case standalone
        /// A primary managed by Redis Sentinel: the Sentinels are asked
        /// (`SENTINEL get-master-addr-by-name`) which server is the primary of `masterName`, in
        /// turn, on every (re)connect; the client also follows `+switch-master` announcements.
        case sentinel(masterName: String, sentinels: [Endpoint])
        /// A Redis Cluster reached through `seeds`; commands are routed by their key's hash slot.
        case cluster(seeds: [Endpoint])
    }

    /// Reconnect pacing after a failure: exponential with full jitter in [delay/2, delay].
    public struct Backoff: Sendable, Hashable {
        /// The delay before the second attempt. Default: 50 ms.
        public var initial: Duration = .milliseconds(50)
        /// The longest delay. Default: 5 s.
        public var maximum: Duration = .seconds(5)
        /// The growth factor per failed attempt. Default: 2.
        public var multiplier: Double = 2
        /// How far apart subscribers that lose their connection at the same moment (a server
        /// restart, a failover) come back: each waits a random delay from zero to this before
        /// its first reconnect, so that a fleet does not resubscribe — and re-read everything —
        /// at the same instant. Zero reconnects at once. Default: 1 s.
        public var reconnectSpread: Duration = .seconds(1)

        public init(
            initial: Duration = .milliseconds(50), maximum: Duration = .seconds(5), multiplier: Double = 2,
            reconnectSpread: Duration = .seconds(1)
        ) {
            self.initial = initial
            self.maximum = maximum
            self.multiplier = multiplier
            self.reconnectSpread = reconnectSpread
        }

        /// The wait before the first reconnect after an established connection dropped: uniform
        /// from zero to ``reconnectSpread`` (`random` from 0 to 1). Never traps.
        public func firstReconnectDelay(random: Double = Double.random(in: 0...1)) -> Duration {
            let spread = max(0, min(reconnectSpread.seconds, 3600))
            let fraction = random.isFinite ? min(max(random, 0), 1) : 1
            return .seconds(spread * fraction)
        }

        /// The delay after `failures` consecutive failed attempts (1 or more), jittered: between
        /// half the step and the step, never more than ``maximum``. Never traps, whatever the
        /// settings (a non-finite or negative step counts as ``maximum``, or zero).
        public func delay(afterFailures failures: Int, random: Double = Double.random(in: 0...1)) -> Duration {
            guard failures > 0 else { return .zero }
            let ceiling = max(0, min(maximum.seconds, 86_400 * 365))
            var step = initial.seconds * pow(multiplier, Double(min(failures - 1, 30)))
            if !step.isFinite || step > ceiling { step = ceiling }
            let fraction = random.isFinite ? min(max(random, 0), 1) : 1
            return .seconds(max(0, step) * (0.5 + 0.5 * fraction))
        }
    }

    /// The name of the environment variable that holds the server URL.
    public static let environmentVariable = "FLAGPOLE_REDIS_URL"
    /// The URL used when nothing else names a server.
    public static let defaultURL = "redis://127.0.0.1:6379"

    /// The server; for Sentinel and Cluster the first Sentinel or seed node (see ``topology``).
    public var endpoint: Endpoint
    /// Standalone, Sentinel or Cluster. Default: ``Topology/standalone``.
    public var topology: Topology = .standalone
    /// The ACL user for `AUTH` on the Sentinels (not the data nodes). Default: none.
    public var sentinelUsername: String?
    /// The password for `AUTH` on the Sentinels (not the data nodes). Default: none.
    public var sentinelPassword: String?
    /// Cluster: how many `MOVED`/`ASK` redirects one command may follow. Default: 5.
    public var maxRedirects = 5
    /// The ACL user for `AUTH user password`; `nil` with a password means `AUTH password`.
    public var username: String?
    public var password: String?
    /// The database `SELECT`ed after connecting. Default: 0.
    public var database: Int = 0
    /// How long connecting may take within one call, all attempts together: the TCP or socket
    /// connect, `AUTH` and `SELECT`, and on a Sentinel or Cluster topology every Sentinel asked and
    /// every node tried (each gets a fair share of what is left, so one dead node cannot use it
    /// all). From 1 ms to 1 hour (``validate()``). Default: 2 s.
    public var connectTimeout: Duration = .seconds(2)
    /// How long one exchange may wait for its whole reply (every reply of a pipeline, however
    /// many reads it takes), not per read. From 1 ms to 1 hour (``validate()``). Default: 2 s.
    public var commandTimeout: Duration = .seconds(2)
    /// Reconnect pacing. Default: 50 ms doubling to 5 s, jittered.
    public var backoff = Backoff()

    /// The longest any call may take: ``connectTimeout`` plus ``commandTimeout``. Every call of a
    /// ``RedisClient`` has this deadline from the moment it is made, and it covers everything the
    /// call waits for: earlier calls queued on the client, reconnecting (Sentinel and cluster
    /// discovery included), redirects and retries, and reading every reply. The caller is resumed
    /// at the deadline at the latest, with ``RedisError/Code/timeout``.
    public var callTimeout: Duration { connectTimeout + commandTimeout }

    /// The longest ``connectTimeout`` and ``commandTimeout`` accepted: 1 hour.
    public static let maximumTimeout: Duration = .seconds(3600)

    /// Checks the settings a client depends on; ``RedisClient``, ``RedisConnection`` and
    /// ``RedisSubscriber`` refuse a configuration that fails it (nothing is sent).
    ///
    /// - Throws: ``RedisError/Code/invalidConfiguration`` naming the setting, its value and the
    ///   range it must be in: the timeouts from 1 ms to ``maximumTimeout`` (a zero timeout would
    ///   mean "wait forever" to the socket layer), a backoff whose initial delay is positive and
    ///   no longer than its maximum, with a finite multiplier of at least 1; ``maxRedirects`` and
    ///   ``database`` of 0 or more; ports from 1 to 65535.
    public func validate() throws(RedisError) {
        func refuse(_ what: String) -> RedisError {
            RedisError(code: .invalidConfiguration, message: "invalid Redis configuration: " + what, address: address)
        }
        for (name, value) in [("connectTimeout", connectTimeout), ("commandTimeout", commandTimeout)] {
            guard value >= .milliseconds(1), value <= Self.maximumTimeout else {
                throw refuse("\(name) is \(value), it must be from 1 ms to 1 hour (0 would mean waiting forever); set it in RedisConfiguration")
            }
        }
        guard backoff.initial > .zero, backoff.initial <= backoff.maximum else {
            throw refuse("backoff.initial (\(backoff.initial)) must be above 0 and at most backoff.maximum (\(backoff.maximum))")
        }
        guard backoff.reconnectSpread >= .zero, backoff.reconnectSpread <= Self.maximumTimeout else {
            throw refuse("backoff.reconnectSpread is \(backoff.reconnectSpread), it must be from 0 to 1 hour")
        }
        guard backoff.multiplier.isFinite, backoff.multiplier >= 1 else {
            throw refuse("backoff.multiplier is \(backoff.multiplier), it must be a finite number of at least 1")
        }
        guard maxRedirects >= 0 else { throw refuse("maxRedirects is \(maxRedirects), it must be 0 or more") }
        guard database >= 0 else { throw refuse("database is \(database), it must be 0 or more") }
        var endpoints = [endpoint]
        switch topology {
        case .standalone: break
        case .sentinel(_, let sentinels): endpoints += sentinels
        case .cluster(let seeds): endpoints += seeds
        }
        for case .tcp(_, let port) in endpoints where !(1...65535).contains(port) {
            throw refuse("port \(port) is not a TCP port (1–65535)")
        }
    }

    public init(endpoint: Endpoint, username: String? = nil, password: String? = nil, database: Int = 0) {
        self.endpoint = endpoint
        self.username = username
        self.password = password
        self.database = database
    }

    /// Parses a `redis://` or `unix://` URL.
    public init(url: String) throws(RedisError) {
        func invalid(_ why: String) -> RedisError {
            RedisError(code: .invalidURL, message: "invalid Redis URL '\(RedisConfiguration.redact(url))': \(why)")
        }
        if url.hasPrefix("unix://") {
            var rest = String(url.dropFirst("unix://".count))
            var query = ""
            if let q = rest.firstIndex(of: "?") {
                query = String(rest[rest.index(after: q)...])
                rest = String(rest[..<q])
            }
            var userinfo: Substring?
            if let at = rest.lastIndex(of: "@") {
                userinfo = rest[..<at]
                rest = String(rest[rest.index(after: at)...])
            }
            guard rest.hasPrefix("/") else { throw invalid("expected unix:///absolute/path/to/redis.sock") }
            self.init(endpoint: .unix(path: RedisConfiguration.percentDecode(rest)))
            if let userinfo { try applyUserinfo(userinfo, invalid) }
            for item in query.split(separator: "&") {
                let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
                let value = parts.count > 1 ? RedisConfiguration.percentDecode(parts[1]) : ""
                switch parts[0] {
                case "db":
                    guard let db = Int(value), db >= 0 else { throw invalid("db must be a number ≥ 0, got '\(value)'") }
                    database = db
                case "password": password = value
                case "user", "username": username = value
                default: throw invalid("unknown query parameter '\(parts[0])' (known: db, password, user)")
                }
            }
            return
        }
        if url.hasPrefix("redis-sentinel://") || url.hasPrefix("redis-cluster://") {
            try self.init(multiNodeURL: url, invalid)
            return
        }
        guard url.hasPrefix("redis://") else {
            throw invalid(
                "expected redis://[user:password@]host:port[/db], unix:///path/to/redis.sock[?db=N], "
                    + "redis-sentinel://host:port[,host:port…]/MASTER-NAME or redis-cluster://host:port[,host:port…]")
        }
        var rest = Substring(url.dropFirst("redis://".count))
        var userinfo: Substring?
        if let at = rest.lastIndex(of: "@") {
            userinfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
        }
        var dbPart: Substring?
        if let slash = rest.firstIndex(of: "/") {
            dbPart = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }
        self.init(endpoint: try Self.parseHostPort(rest, defaultPort: 6379, invalid))
        if let userinfo { try applyUserinfo(userinfo, invalid) }
        if let dbPart, !dbPart.isEmpty {
            guard let db = Int(dbPart), db >= 0 else { throw invalid("database must be a number ≥ 0, got '\(dbPart)'") }
            database = db
        }
    }

    /// Parses `host:port`, `[v6]:port` or `host` (with `defaultPort`).
    private static func parseHostPort(
        _ text: Substring, defaultPort: Int, _ invalid: (String) -> RedisError
    ) throws(RedisError) -> Endpoint {
        var host: String
        var portText: Substring?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw invalid("unclosed '[' in IPv6 address") }
            host = String(text[text.index(after: text.startIndex)..<close])
            let after = text[text.index(after: close)...]
            if after.hasPrefix(":") { portText = after.dropFirst() } else if !after.isEmpty { throw invalid("unexpected text after ']'") }
        } else if let colon = text.lastIndex(of: ":") {
            host = String(text[..<colon])
            portText = text[text.index(after: colon)...]
        } else {
            host = String(text)
        }
        if host.isEmpty { host = "127.0.0.1" }
        var port = defaultPort
        if let portText {
            guard let p = Int(portText), (1...65535).contains(p) else { throw invalid("port must be 1–65535, got '\(portText)'") }
            port = p
        }
        return .tcp(host: host, port: port)
    }

    /// `redis-sentinel://…` and `redis-cluster://…`.
    private init(multiNodeURL url: String, _ invalid: (String) -> RedisError) throws(RedisError) {
        let sentinel = url.hasPrefix("redis-sentinel://")
        var rest = Substring(url.dropFirst(sentinel ? "redis-sentinel://".count : "redis-cluster://".count))
        var query: Substring = ""
        if let q = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: q)...]
            rest = rest[..<q]
        }
        var userinfo: Substring?
        if let at = rest.lastIndex(of: "@") {
            userinfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
        }
        var path: Substring?
        if let slash = rest.firstIndex(of: "/") {
            path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }
        var nodes: [Endpoint] = []
        for part in rest.isEmpty ? [] : rest.split(separator: ",", omittingEmptySubsequences: false) {
            guard !part.isEmpty else { throw invalid("empty host in the list of \(sentinel ? "Sentinels" : "seed nodes")") }
            nodes.append(try Self.parseHostPort(part, defaultPort: sentinel ? 26379 : 6379, invalid))
        }
        guard let first = nodes.first else {
            throw invalid(
                sentinel
                    ? "name at least one Sentinel: redis-sentinel://host:port[,host:port…]/MASTER-NAME"
                    : "name at least one seed node: redis-cluster://host:port[,host:port…]")
        }
        self.init(endpoint: first)
        if sentinel {
            guard let name = path.map({ Self.percentDecode(String($0)) }), !name.isEmpty, !name.contains("/") else {
                throw invalid("name the monitored primary: redis-sentinel://host:port[,host:port…]/MASTER-NAME")
            }
            topology = .sentinel(masterName: name, sentinels: nodes)
        } else {
            if let path, !path.isEmpty { throw invalid("a cluster has only database 0; remove '/\(path)'") }
            topology = .cluster(seeds: nodes)
        }
        if let userinfo { try applyUserinfo(userinfo, invalid) }
        for item in query.split(separator: "&") {
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            let value = parts.count > 1 ? Self.percentDecode(parts[1]) : ""
            switch parts[0] {
            case "db" where sentinel:
                guard let db = Int(value), db >= 0 else { throw invalid("db must be a number ≥ 0, got '\(value)'") }
                database = db
            case "sentinelPassword" where sentinel: sentinelPassword = value
            case "sentinelUser" where sentinel, "sentinelUsername" where sentinel: sentinelUsername = value.isEmpty ? nil : value
            case "maxRedirects" where !sentinel:
                guard let n = Int(value), n >= 0 else { throw invalid("maxRedirects must be a number ≥ 0, got '\(value)'") }
                maxRedirects = n
            default:
                throw invalid("unknown query parameter '\(parts[0])' (known: \(sentinel ? "db, sentinelPassword, sentinelUser" : "maxRedirects"))")
            }
        }
    }

    /// The configuration for one node of this deployment: the same credentials and timeouts,
    /// standalone, at `endpoint`.
    func node(_ endpoint: Endpoint) -> RedisConfiguration {
        var c = self
        c.endpoint = endpoint
        c.topology = .standalone
        return c
    }

    /// The configuration for talking to one Sentinel: its own credentials, database 0.
    func sentinelNode(_ endpoint: Endpoint) -> RedisConfiguration {
        var c = node(endpoint)
        c.username = sentinelUsername
        c.password = sentinelPassword
        c.database = 0
        return c
    }

    private mutating func applyUserinfo(_ userinfo: Substring, _ invalid: (String) -> RedisError) throws(RedisError) {
        if let colon = userinfo.firstIndex(of: ":") {
            let user = RedisConfiguration.percentDecode(String(userinfo[..<colon]))
            username = user.isEmpty ? nil : user
            password = RedisConfiguration.percentDecode(String(userinfo[userinfo.index(after: colon)...]))
        } else if !userinfo.isEmpty {
            // `redis://secret@host` is the password alone, as redis-cli reads it.
            password = RedisConfiguration.percentDecode(String(userinfo))
        }
    }

    /// The configuration named by `url`, else `FLAGPOLE_REDIS_URL`, else the default URL.
    public static func resolve(
        url: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(RedisError) -> RedisConfiguration {
        if let url, !url.isEmpty { return try RedisConfiguration(url: url) }
        if let env = environment[environmentVariable], !env.isEmpty { return try RedisConfiguration(url: env) }
        return try RedisConfiguration(url: defaultURL)
    }

    /// `host:port` or `unix:/path`, for messages; `MASTER-NAME via sentinels h:p,h:p` for
    /// Sentinel and `cluster h:p,h:p` for Cluster.
    public var address: String {
        switch topology {
        case .standalone: return endpoint.address
        case .sentinel(let name, let sentinels): return "\(name) via sentinels \(sentinels.map(\.address).joined(separator: ","))"
        case .cluster(let seeds): return "cluster \(seeds.map(\.address).joined(separator: ","))"
        }
    }

    /// The URL with any password replaced by `***`, safe to print.
    public var redactedURL: String {
        var auth = ""
        if let username { auth = username + (password != nil ? ":***" : "") + "@" } else if password != nil { auth = ":***@" }
        switch topology {
        case .standalone: break
        case .sentinel(let name, let sentinels):
            var query: [String] = []
            if database != 0 { query.append("db=\(database)") }
            if sentinelPassword != nil { query.append("sentinelPassword=***") }
            if let sentinelUsername { query.append("sentinelUser=\(sentinelUsername)") }
            return "redis-sentinel://\(auth)\(sentinels.map(\.address).joined(separator: ","))/\(name)"
                + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
        case .cluster(let seeds):
            return "redis-cluster://\(auth)\(seeds.map(\.address).joined(separator: ","))"
        }
        switch endpoint {
        case .tcp:
            return "redis://\(auth)\(address)" + (database != 0 ? "/\(database)" : "")
        case .unix(let path):
            return "unix://\(auth)\(path)" + (database != 0 ? "?db=\(database)" : "")
        }
    }

    /// Replaces the password in a URL string with `***` (for messages about unparsable URLs).
    public static func redact(_ url: String) -> String {
        var url = url
        for name in ["sentinelPassword=", "password="] {
            var searchFrom = url.startIndex
            while let r = url.range(of: name, range: searchFrom..<url.endIndex) {
                let end = url[r.upperBound...].firstIndex(of: "&") ?? url.endIndex
                url.replaceSubrange(r.upperBound..<end, with: "***")
                searchFrom = url.index(r.upperBound, offsetBy: 3)
            }
        }
        guard let scheme = url.range(of: "://"), let at = url.range(of: "@", options: .backwards),
            at.lowerBound > scheme.upperBound
        else { return url }
        let userinfo = url[scheme.upperBound..<at.lowerBound]
        if let colon = userinfo.firstIndex(of: ":") {
            return String(url[..<colon]) + ":***" + String(url[at.lowerBound...])
        }
        return String(url[..<scheme.upperBound]) + "***" + String(url[at.lowerBound...])
    }

    static func percentDecode(_ s: String) -> String {
        guard s.contains("%") else { return s }
        return s.removingPercentEncoding ?? s
    }
}

extension Duration {
    /// The duration in seconds, as a `Double`.
    public var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }
}
