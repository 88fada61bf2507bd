import Foundation

/// Where a Redis server is and how to talk to it.
///
/// Made from a URL: `redis://[user:password@]host:port[/db]` or `unix:///path/to/redis.sock[?db=N]`
/// (a `password=` query item works for unix sockets too). `FLAGPOLE_REDIS_URL` names the server
/// for every Flagpole command and for the library; the default is `redis://127.0.0.1:6379`.
public struct RedisConfiguration: Sendable, Hashable {
    /// A TCP host and port, or a unix socket path.
    public enum Endpoint: Sendable, Hashable {
        case tcp(host: String, port: Int)
        case unix(path: String)
    }

    /// Reconnect pacing after a failure: exponential with full jitter in [delay/2, delay].
    public struct Backoff: Sendable, Hashable {
        /// The delay before the second attempt. Default: 50 ms.
        public var initial: Duration = .milliseconds(50)
        /// The longest delay. Default: 5 s.
        public var maximum: Duration = .seconds(5)
        /// The growth factor per failed attempt. Default: 2.
        public var multiplier: Double = 2

        public init(initial: Duration = .milliseconds(50), maximum: Duration = .seconds(5), multiplier: Double = 2) {
            self.initial = initial
            self.maximum = maximum
            self.multiplier = multiplier
        }

        /// The delay after `failures` consecutive failed attempts (1 or more), jittered.
        public func delay(afterFailures failures: Int, random: Double = Double.random(in: 0...1)) -> Duration {
            guard failures > 0 else { return .zero }
            let base = initial.seconds * pow(multiplier, Double(min(failures - 1, 30)))
            let capped = min(base, maximum.seconds)
            return .seconds(capped * (0.5 + 0.5 * random))
        }
    }

    /// The name of the environment variable that holds the server URL.
    public static let environmentVariable = "FLAGPOLE_REDIS_URL"
    /// The URL used when nothing else names a server.
    public static let defaultURL = "redis://127.0.0.1:6379"

    public var endpoint: Endpoint
    /// The ACL user for `AUTH user password`; `nil` with a password means `AUTH password`.
    public var username: String?
    public var password: String?
    /// The database `SELECT`ed after connecting. Default: 0.
    public var database: Int = 0
    /// How long connecting (and AUTH/SELECT) may take. Default: 2 s.
    public var connectTimeout: Duration = .seconds(2)
    /// How long one command may wait for its reply. Default: 2 s.
    public var commandTimeout: Duration = .seconds(2)
    /// Reconnect pacing. Default: 50 ms doubling to 5 s, jittered.
    public var backoff = Backoff()

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
        guard url.hasPrefix("redis://") else {
            throw invalid("expected redis://[user:password@]host:port[/db] or unix:///path/to/redis.sock[?db=N]")
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
        var host: String
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw invalid("unclosed '[' in IPv6 address") }
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            let after = rest[rest.index(after: close)...]
            if after.hasPrefix(":") { portText = after.dropFirst() } else if !after.isEmpty { throw invalid("unexpected text after ']'") }
        } else if let colon = rest.lastIndex(of: ":") {
            host = String(rest[..<colon])
            portText = rest[rest.index(after: colon)...]
        } else {
            host = String(rest)
        }
        if host.isEmpty { host = "127.0.0.1" }
        var port = 6379
        if let portText {
            guard let p = Int(portText), (1...65535).contains(p) else { throw invalid("port must be 1–65535, got '\(portText)'") }
            port = p
        }
        self.init(endpoint: .tcp(host: host, port: port))
        if let userinfo { try applyUserinfo(userinfo, invalid) }
        if let dbPart, !dbPart.isEmpty {
            guard let db = Int(dbPart), db >= 0 else { throw invalid("database must be a number ≥ 0, got '\(dbPart)'") }
            database = db
        }
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

    /// `host:port` or `unix:/path`, for messages.
    public var address: String {
        switch endpoint {
        case .tcp(let host, let port): return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix(let path): return "unix:\(path)"
        }
    }

    /// The URL with any password replaced by `***`, safe to print.
    public var redactedURL: String {
        var auth = ""
        if let username { auth = username + (password != nil ? ":***" : "") + "@" } else if password != nil { auth = ":***@" }
        switch endpoint {
        case .tcp:
            return "redis://\(auth)\(address)" + (database != 0 ? "/\(database)" : "")
        case .unix(let path):
            return "unix://\(auth)\(path)" + (database != 0 ? "?db=\(database)" : "")
        }
    }

    /// Replaces the password in a URL string with `***` (for messages about unparsable URLs).
    public static func redact(_ url: String) -> String {
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
