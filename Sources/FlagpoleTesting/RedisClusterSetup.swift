import FlagpoleRedis
import Foundation

/// A small Redis Cluster for tests: primaries (no replicas) on free loopback ports, each a
/// ``RedisServer`` in a folder of its own, the 16,384 slots split evenly, stopped by
/// ``withCluster(primaries:_:)`` even when the test fails. Ready in about a second (the slots
/// are assigned with `CLUSTER ADDSLOTSRANGE` and `CLUSTER MEET`, faster than
/// `redis-cli --cluster create`, which waits in whole seconds).
package final class RedisClusterSetup: Sendable {
    /// The nodes, in slot order: node 0 owns the first range of slots.
    package let nodes: [RedisServer]

    private init(nodes: [RedisServer]) { self.nodes = nodes }

    /// `redis-cluster://127.0.0.1:P1,127.0.0.1:P2,…`.
    package var url: String { "redis-cluster://" + nodes.map { "127.0.0.1:\($0.port)" }.joined(separator: ",") }

    /// A configuration for ``url`` with short timeouts suited to tests.
    package var configuration: RedisConfiguration {
        RedisConfiguration.forTests(url: url)
    }

    /// Starts a cluster, runs `body`, and stops every node afterwards, whether `body` returns or throws.
    package static func withCluster<T>(primaries: Int = 3, _ body: (RedisClusterSetup) async throws -> T) async throws -> T {
        var started: [RedisServer] = []
        do {
            for _ in 0..<primaries {
                started.append(
                    try await RedisServer.start(
                        .init(extraArguments: [
                            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000",
                        ])))
            }
            let cluster = RedisClusterSetup(nodes: started)
            try await cluster.form()
            let result = try await body(cluster)
            cluster.remove()
            return result
        } catch {
            for server in started { server.remove() }
            throw error
        }
    }

    private func form() async throws {
        let per = RedisHashSlot.count / nodes.count
        for (i, node) in nodes.enumerated() {
            let first = i * per, last = i == nodes.count - 1 ? RedisHashSlot.count - 1 : (i + 1) * per - 1
            _ = try connection(node).send(["CLUSTER", "ADDSLOTSRANGE", RedisArgument(first), RedisArgument(last)])
        }
        for node in nodes.dropFirst() {
            _ = try connection(nodes[0]).send(["CLUSTER", "MEET", "127.0.0.1", RedisArgument(node.port)])
        }
        try await waitUntilConsistent()
    }

    /// Waits until every node says `cluster_state:ok` and agrees on who owns every slot.
    package func waitUntilConsistent(timeout: Duration = .seconds(15)) async throws {
        try await waitUntil("the cluster to agree on its slots", timeout: timeout, interval: .milliseconds(20)) {
            var maps: Set<[String]> = []
            for node in nodes {
                guard let c = try? connection(node),
                    let info = try? c.send(["CLUSTER", "INFO"]).string, info.contains("cluster_state:ok"),
                    let slots = try? c.send(["CLUSTER", "SLOTS"]).array
                else { return false }
                maps.insert(
                    slots.map { r in
                        let a = r.array ?? []
                        return "\(a.first?.integer ?? -1)-\(a.count > 1 ? a[1].integer ?? -1 : -1)@\(a.count > 2 ? a[2].array?[1].integer ?? -1 : -1)"
                    }.sorted())
            }
            return maps.count == 1
        }
    }

    /// The node that owns `slot`, by the nodes' own view.
    package func owner(ofSlot slot: Int) throws -> RedisServer {
        for node in nodes {
            let slots = try connection(node).send(["CLUSTER", "SLOTS"]).array ?? []
            for r in slots {
                guard let a = r.array, a.count > 2, let lo = a[0].integer, let hi = a[1].integer,
                    let port = a[2].array?[1].integer, (lo...hi).contains(Int64(slot))
                else { continue }
                if let server = nodes.first(where: { $0.port == Int(port) }) { return server }
            }
        }
        throw RedisServerError("no node owns slot \(slot)")
    }

    /// The node that owns `key`.
    package func owner(of key: String) throws -> RedisServer { try owner(ofSlot: RedisHashSlot.slot(of: key)) }

    /// Starts moving `slot` to `target`: `IMPORTING` on the target, `MIGRATING` on the owner
    /// (keys not yet moved stay on the owner, which answers `ASK` for the missing ones).
    package func beginMigration(slot: Int, to target: RedisServer) throws {
        let source = try owner(ofSlot: slot)
        _ = try connection(target).send(["CLUSTER", "SETSLOT", RedisArgument(slot), "IMPORTING", RedisArgument(nodeID(source))])
        _ = try connection(source).send(["CLUSTER", "SETSLOT", RedisArgument(slot), "MIGRATING", RedisArgument(nodeID(target))])
    }

    /// Moves these keys of a migrating slot to the target (`MIGRATE … KEYS`).
    package func migrate(keys: [String], slot: Int, to target: RedisServer) throws {
        guard !keys.isEmpty else { return }
        let source = try owner(ofSlot: slot)
        _ = try connection(source).send(
            RedisCommand(
                ["MIGRATE", "127.0.0.1", RedisArgument(target.port), "", "0", "5000", "KEYS"] + keys.map { RedisArgument($0) }))
    }

    /// Ends a migration: the slot belongs to `target`, as every node is told (`SETSLOT … NODE`).
    package func finishMigration(slot: Int, to target: RedisServer) async throws {
        let id = try nodeID(target)
        let source = try owner(ofSlot: slot)
        _ = try connection(target).send(["CLUSTER", "SETSLOT", RedisArgument(slot), "NODE", RedisArgument(id)])
        _ = try connection(source).send(["CLUSTER", "SETSLOT", RedisArgument(slot), "NODE", RedisArgument(id)])
        for node in nodes where node !== target && node !== source {
            _ = try connection(node).send(["CLUSTER", "SETSLOT", RedisArgument(slot), "NODE", RedisArgument(id)])
        }
        try await waitUntilConsistent()
    }

    /// Moves `slot` and every key in it to `target` (a whole resharding of one slot).
    package func moveSlot(_ slot: Int, to target: RedisServer) async throws {
        let source = try owner(ofSlot: slot)
        guard source !== target else { return }
        try beginMigration(slot: slot, to: target)
        while true {
            let keys = try connection(source).send(["CLUSTER", "GETKEYSINSLOT", RedisArgument(slot), "100"]).array?.compactMap(\.string) ?? []
            if keys.isEmpty { break }
            try migrate(keys: keys, slot: slot, to: target)
        }
        try await finishMigration(slot: slot, to: target)
    }

    /// The node's cluster id (`CLUSTER MYID`).
    package func nodeID(_ node: RedisServer) throws -> String {
        guard let id = try connection(node).send(["CLUSTER", "MYID"]).string else { throw RedisServerError("CLUSTER MYID gave no id") }
        return id
    }

    /// Stops every node and removes their folders.
    package func remove() {
        for node in nodes { node.remove() }
    }

    private func connection(_ node: RedisServer) throws -> RedisConnection {
        try RedisConnection(configuration: node.configuration)
    }
}
