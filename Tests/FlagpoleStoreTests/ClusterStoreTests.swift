import FlagpoleCore
import FlagpoleRedis
import FlagpoleStore
import FlagpoleTesting
import Testing

@Suite("Flag store on a Redis Cluster", .timeLimit(.minutes(2)))
struct ClusterStoreTests {
    static let boolFlag: JSONValue = ["state": "ENABLED", "variants": ["on": true, "off": false], "defaultVariant": "off"]

    @Test("apply and read work unchanged through a redis-cluster:// URL, one environment per slot")
    func applyAndRead() async throws {
        try await RedisClusterSetup.withCluster { cluster in
            let client = RedisClient(configuration: try RedisConfiguration(url: cluster.url))
            let environments = ["prod", "staging", "dev"]
            let owners = try Set(environments.map { try cluster.owner(of: StoreLayout(environment: $0).revision).port })
            #expect(owners.count > 1, "the environments should live on different nodes")
            let subscriber = RedisSubscriber(configuration: cluster.configuration)
            var events = subscriber.subscribe(to: [try StoreLayout(environment: "prod").changes]).makeAsyncIterator()
            guard case .subscribed = await events.next() else { Issue.record("expected .subscribed first"); return }
            for env in environments {
                let store = try FlagStore(client: client, environment: env)
                var change = StoreChange(audit: AuditEntry(action: "sync", actor: "tester@host", reason: "test", at: 1_700_000_000, flags: ["a"]))
                change.setDefinitions = ["a": Self.boolFlag]
                change.historySnapshot = ["flags": ["a": Self.boolFlag]]
                #expect(try await store.apply(change, expectedRevision: 0) == 1)
                var set = StoreChange(audit: AuditEntry(action: "set", actor: "ann@host", reason: "launch", at: 1_700_000_001, flags: ["a"]))
                set.setOverrides = ["a": OverrideRecord(override: .variant("on"), actor: "ann@host", reason: "launch", at: 1, revision: 0)]
                set.requireFlags = ["a"]
                #expect(try await store.apply(set, expectedRevision: 1) == 2)
                let snapshot = try await store.read()
                #expect(snapshot.revision == 2)
                #expect(snapshot.effectiveDefinition(of: "a")?["defaultVariant"] == "on")
                #expect(try await store.read(flag: "a").override?.override == .variant("on"))
                #expect(try await store.auditEntries().map(\.action) == ["set", "sync"])
                #expect(try await store.revision() == 2)
            }
            // The write script's change event reaches a subscriber on whichever node it is.
            guard case .message(let m)? = await events.next() else { Issue.record("no change event"); return }
            #expect(m.channel == "flagpole:{prod}:changes")
        }
    }
}
