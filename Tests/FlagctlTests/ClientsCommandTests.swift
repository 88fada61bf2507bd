import Flagpole
import FlagpoleControl
import FlagpoleCore
import FlagpoleRedis
import FlagpoleStore
import FlagpoleTesting
import Foundation
import Testing

@Suite("flagctl clients (the binary)", .timeLimit(.minutes(2)))
struct ClientsCommandTests {
    @Test("lists the live instances and marks those behind the live revision")
    func listsInstances() async throws {
        try await RedisServer.withServer { server in
            let root = FileManager.default.temporaryDirectory.appendingPathComponent("flagctl-clients-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: root.appendingPathComponent("prod"), withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: root) }
            try #"{"flags": {"checkout": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off"}}}"#
                .write(to: root.appendingPathComponent("prod/flags.json"), atomically: true, encoding: .utf8)
            let admin = RedisClient(configuration: server.configuration)
            let control = try EnvironmentControl(environment: "prod", client: admin, directory: FlagDirectory(root: root.path))
            _ = try await control.sync(.init())
            let env = ["FLAGPOLE_REDIS_URL": server.url, "FLAGPOLE_ENV": "prod"]

            let none = try FlagctlProcess.run(["clients"], environment: env)
            #expect(none.status == 0 && none.stdout.contains("prod: no live instances (revision 1)"), "\(none.stdout)\(none.stderr)")

            var clients: [FlagpoleClient] = []
            var tasks: [Task<Void, any Error>] = []
            for app in ["checkout-api", "search"] {
                var c = FlagpoleClient.Configuration(redis: server.configuration, environment: "prod", application: app)
                c.snapshotPath = nil
                c.heartbeat.interval = .milliseconds(100)
                let client = FlagpoleClient(configuration: c)
                clients.append(client)
                tasks.append(Task { try await client.run() })
            }
            defer { for t in tasks { t.cancel() } }
            for c in clients { #expect(await c.waitUntilReady(timeout: .seconds(5))) }
            // An instance stuck on revision 1 (its heartbeat written as a client writes it).
            let layout = try StoreLayout(environment: "prod")
            let now = Int64(Date().timeIntervalSince1970)
            let stuck = ClientRecord(
                id: "old-host-7-abc", application: "billing", host: "old-host", pid: 7, version: "0.1.0", environment: "prod", revision: 1,
                source: "redis", inSync: false, dataAgeSeconds: 120, startedAt: now - 600, lastSeen: now, ttlSeconds: 60)
            _ = try await admin.send("SET", layout.client(stuck.id), stuck.json.jsonString, "EX", "60")
            _ = try await admin.send("HSET", layout.clients, stuck.id, String(now))
            _ = try await admin.send("HSET", layout.clients, "gone-host-1-def", String(now - 100))
            _ = try await control.apply(.set(variant: "on"), flag: "checkout", actor: "ann", reason: nil)
            try await waitUntil("both clients heartbeat revision 2") {
                let registry = try await control.store.clients()
                return registry.clients.filter { $0.revision == 2 }.count == 2
            }

            let table = try FlagctlProcess.run(["clients"], environment: env)
            #expect(table.status == 0, "\(table.stderr)")
            let lines = table.stdout.split(separator: "\n").map(String.init)
            #expect(lines.first?.hasPrefix("INSTANCE") == true && lines.first?.contains("REVISION") == true)
            #expect(lines.contains { $0.contains("checkout-api") && $0.contains("current") })
            #expect(lines.contains { $0.contains("search") && $0.contains("current") })
            #expect(lines.contains { $0.contains("billing") && $0.contains("behind (1 revision), not in sync") })
            #expect(table.stdout.contains("3 instances of prod, revision 2: 1 behind; 1 gone (heartbeat expired)"))

            let json = try FlagctlProcess.run(["clients", "--json"], environment: env)
            let parsed = try JSONParser.parse(json.stdout)
            #expect(parsed["revision"] == 2 && parsed["gone"] == 1)
            let listed = parsed["clients"]?.arrayValue ?? []
            #expect(listed.count == 3)
            #expect(listed.first { $0["application"] == "billing" }?["behind"] == true)
            #expect(listed.first { $0["application"] == "search" }?["behind"] == false)
            #expect(listed.allSatisfy { $0["host"]?.stringValue?.isEmpty == false && $0["version"] != nil && $0["lastSeen"] != nil })
        }
    }
}
