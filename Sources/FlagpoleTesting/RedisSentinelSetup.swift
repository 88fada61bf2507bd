import FlagpoleRedis
import Foundation

/// A Sentinel-managed Redis for tests: one primary, replicas, and Sentinels monitoring it as
/// ``masterName``, each a ``RedisServer`` on a free loopback port in a folder of its own, stopped
/// by ``withSetup(replicas:sentinels:_:)`` even when the test fails. Ready in well under a second.
///
/// ```swift
/// try await RedisSentinelSetup.withSetup { setup in
///     let client = RedisClient(configuration: setup.configuration)
///     try await setup.failover()
/// }
/// ```
package final class RedisSentinelSetup: Sendable {
    /// The name the Sentinels monitor the primary under: `flagpole-primary`.
    package let masterName = "flagpole-primary"
    /// Every data server; the first was the primary at the start.
    package let servers: [RedisServer]
    package let sentinels: [RedisServer]
    /// `requirepass` of the data servers, if any.
    package let password: String?
    /// `requirepass` of the Sentinels, if any.
    package let sentinelPassword: String?

    private init(servers: [RedisServer], sentinels: [RedisServer], password: String?, sentinelPassword: String?) {
        self.servers = servers
        self.sentinels = sentinels
        self.password = password
        self.sentinelPassword = sentinelPassword
    }

    /// `redis-sentinel://[:PASSWORD@]127.0.0.1:P1,127.0.0.1:P2/flagpole-primary[?sentinelPassword=…]`.
    package var url: String {
        "redis-sentinel://" + (password.map { ":\($0)@" } ?? "") + sentinels.map { "127.0.0.1:\($0.port)" }.joined(separator: ",")
            + "/\(masterName)" + (sentinelPassword.map { "?sentinelPassword=\($0)" } ?? "")
    }

    /// A configuration for ``url`` with short timeouts suited to tests.
    package var configuration: RedisConfiguration {
        RedisConfiguration.forTests(url: url)
    }

    /// Starts the setup, runs `body`, and stops every server afterwards, whether `body` returns or throws.
    ///
    /// - Parameters:
    ///   - replicas: replicas of the primary. Default: 1 (a failover needs one).
    ///   - sentinels: Sentinels, with a quorum of 1. Default: 1.
    ///   - password: `requirepass` (and `masterauth`) of the data servers. Default: none.
    ///   - sentinelPassword: `requirepass` of the Sentinels. Default: none.
    package static func withSetup<T>(
        replicas: Int = 1, sentinels: Int = 1, password: String? = nil, sentinelPassword: String? = nil,
        _ body: (RedisSentinelSetup) async throws -> T
    ) async throws -> T {
        var started: [RedisServer] = []
        do {
            let auth = password.map { ["--masterauth", $0] } ?? []
            let primary = try await RedisServer.start(.init(password: password, extraArguments: auth))
            started.append(primary)
            var servers = [primary]
            for _ in 0..<replicas {
                let replica = try await RedisServer.start(
                    .init(
                        password: password, extraArguments: auth + ["--replicaof", "127.0.0.1", "\(primary.port)"]))
                started.append(replica)
                servers.append(replica)
            }
            // The Sentinels should see the replicas at their first look at the primary.
            for replica in servers.dropFirst() {
                try await waitUntil("replica on port \(replica.port) in sync") {
                    let info = try? RedisConnection(configuration: replica.configuration).send(["INFO", "replication"]).string
                    return info?.contains("master_link_status:up") == true
                }
            }
            var sentinelServers: [RedisServer] = []
            for _ in 0..<sentinels {
                let sentinel = try await RedisServer.start(
                    .init(
                        password: sentinelPassword,
                        configLines: [
                            "sentinel monitor flagpole-primary 127.0.0.1 \(primary.port) 1",
                            "sentinel down-after-milliseconds flagpole-primary 2000",
                            "sentinel failover-timeout flagpole-primary 10000",
                        ] + (password.map { ["sentinel auth-pass flagpole-primary \($0)"] } ?? []),
                        sentinel: true))
                started.append(sentinel)
                sentinelServers.append(sentinel)
            }
            let setup = RedisSentinelSetup(
                servers: servers, sentinels: sentinelServers, password: password, sentinelPassword: sentinelPassword)
            try await setup.waitUntilSentinelsSeeReplicas()
            let result = try await body(setup)
            setup.remove()
            return result
        } catch {
            for server in started { server.remove() }
            throw error
        }
    }

    /// The port of the server the (first answering) Sentinel names as primary.
    package func primaryPort() throws -> Int {
        var lastError: (any Error)?
        for sentinel in sentinels {
            do {
                let reply = try sentinelConnection(sentinel).send(["SENTINEL", "get-master-addr-by-name", RedisArgument(masterName)])
                if let port = reply.array?.last?.string.flatMap({ Int($0) }) { return port }
            } catch {
                lastError = error
            }
        }
        throw lastError ?? RedisServerError("no Sentinel names a primary")
    }

    /// The server the Sentinels name as primary.
    package func primary() throws -> RedisServer {
        let port = try primaryPort()
        guard let server = servers.first(where: { $0.port == port }) else { throw RedisServerError("no server on port \(port)") }
        return server
    }

    /// `SENTINEL FAILOVER` (retried while the Sentinel finds no suitable replica yet), then waits
    /// until every Sentinel names the new primary and it answers `ROLE` as a primary. Returns it.
    @discardableResult
    package func failover(timeout: Duration = .seconds(20)) async throws -> RedisServer {
        let old = try primaryPort()
        try await waitUntil("SENTINEL FAILOVER accepted", timeout: timeout, interval: .milliseconds(50)) {
            let reply = try sentinelConnection(sentinels[0]).sendRaw(["SENTINEL", "FAILOVER", RedisArgument(masterName)])
            if let e = reply.errorMessage, e.hasPrefix("NOGOODSLAVE") || e.hasPrefix("INPROG") { return false }
            if let e = reply.errorMessage { throw RedisServerError("SENTINEL FAILOVER: \(e)") }
            return true
        }
        var promoted: RedisServer?
        try await waitUntil("a new primary after the failover", timeout: timeout, interval: .milliseconds(20)) {
            for sentinel in sentinels {
                let reply = try? sentinelConnection(sentinel).send(["SENTINEL", "get-master-addr-by-name", RedisArgument(masterName)])
                guard let port = reply?.array?.last?.string.flatMap({ Int($0) }), port != old else { return false }
                promoted = servers.first { $0.port == port }
            }
            guard let promoted else { return false }
            let role = try? RedisConnection(configuration: promoted.configuration).send(["ROLE"])
            return role?.array?.first?.string == "master"
        }
        return promoted!
    }

    /// Stops every server and removes their folders.
    package func remove() {
        for server in sentinels + servers { server.remove() }
    }

    private func sentinelConnection(_ sentinel: RedisServer) throws -> RedisConnection {
        try RedisConnection(configuration: sentinel.configuration)
    }

    private func waitUntilSentinelsSeeReplicas() async throws {
        for sentinel in sentinels {
            try await waitUntil("Sentinel on port \(sentinel.port) sees \(servers.count - 1) replica(s)", interval: .milliseconds(10)) {
                let reply = try? sentinelConnection(sentinel).send(["SENTINEL", "REPLICAS", RedisArgument(masterName)])
                let good = (reply?.array ?? []).filter { r in
                    let flags = r.dictionary?["flags"]?.string ?? ""
                    return flags == "slave" && r.dictionary?["master-link-status"]?.string == "ok"
                }
                return good.count == servers.count - 1
            }
        }
    }
}
