import FlagpoleCore
import FlagpoleRedis
import FlagpoleStore
import FlagpoleTesting
import Foundation
import Testing

@Suite("flagctl daemon with its watcher and alerts (the binary)", .timeLimit(.minutes(2)))
struct DaemonWatcherTests {
    /// A project config with one webhook alert target whose URL comes from `FLAGPOLE_TEST_HOOK`.
    func writeConfig(_ root: URL) throws {
        try """
        version: 1
        alerts:
          - name: ops-hook
            type: webhook
            urlEnv: FLAGPOLE_TEST_HOOK
        """.write(to: root.appendingPathComponent("flagpole.yaml"), atomically: true, encoding: .utf8)
    }

    @Test("an alert target whose variable is unset stops the start, naming target and variable; --no-alerts starts without it")
    func alertTargetsAreChecked() async throws {
        try await RedisServer.withServer { server in
            let root = try await syncDaemonFlags(server)
            defer { try? FileManager.default.removeItem(at: root) }
            try writeConfig(root)
            let common = ["--env", "prod", "--redis", server.url, "--flags", root.path, "--port", "0"]
            let refused = try FlagctlProcess.run(["daemon"] + common)
            #expect(refused.status != 0)
            #expect(refused.stderr.contains("ops-hook") && refused.stderr.contains("FLAGPOLE_TEST_HOOK"), "\(refused.stderr)")
            #expect(refused.stderr.contains("--no-alerts"))

            let daemon = try await DaemonProcess.start(["--env", "prod", "--redis", server.url, "--flags", root.path, "--no-alerts"])
            #expect(daemon.stdout.contains("watcher every 10s, no alert targets"), "\(daemon.stdout)")
            #expect(try await daemon.stop() == 0)
        }
    }

    @Test("the lease lasts three intervals (30 s at least), so a slow --interval does not let it lapse between renewals")
    func leaseFollowsInterval() async throws {
        try await RedisServer.withServer { server in
            let root = try await syncDaemonFlags(server)
            defer { try? FileManager.default.removeItem(at: root) }
            let daemon = try await DaemonProcess.start([
                "--env", "prod", "--redis", server.url, "--flags", root.path, "--no-alerts", "--interval", "20s",
            ])
            let client = RedisClient(configuration: server.configuration)
            var lease: WatcherLease?
            try await waitUntil("the watcher takes the lease") {
                let reply = try await client.send(["GET", RedisArgument(try StoreLayout(environment: "prod").watcherLease)])
                lease = try reply.bytes.map { try WatcherLease(json: try JSONParser.parse(bytes: $0)) }
                return lease != nil
            }
            #expect(lease.map { $0.expiresAt - $0.renewedAt } == 60_000, "3 × 20 s: \(String(describing: lease))")
            #expect(try await daemon.stop() == 0)
        }
    }

    @Test("with its watcher: the lease is taken, /readyz checks the watcher, /metrics has the watcher's and the alerts' lines")
    func watcherMetrics() async throws {
        try await RedisServer.withServer { server in
            let root = try await syncDaemonFlags(server)
            defer { try? FileManager.default.removeItem(at: root) }
            try writeConfig(root)
            let daemon = try await DaemonProcess.start(
                ["--env", "prod", "--redis", server.url, "--flags", root.path, "--interval", "200ms"],
                environment: ["FLAGPOLE_TEST_HOOK": "http://127.0.0.1:9/hook"])
            #expect(daemon.stdout.contains("watcher every 200ms, alerts to ops-hook"), "\(daemon.stdout)")
            var metrics = ""
            try await waitUntil("the watcher leads and says so in /metrics") {
                metrics = try await daemon.request("/metrics", method: "GET").body
                return metrics.contains(#"flagpole_watcher_leader{environment="prod"} 1"#)
            }
            #expect(metrics.contains(#"flagpole_rollouts{environment="prod",state="running"} 0"#))
            #expect(metrics.contains("ops-hook"), "the alert dispatcher's counters name the target")
            // Every series docs/daemon.md lists is served once there are evaluations and outcomes.
            _ = try await daemon.request("/ofrep/v1/evaluate/flags/color", body: #"{"context": {}}"#)
            let report = #"{"outcomes": [{"flag": "color", "variant": "blue", "success": true, "durationMs": 2}]}"#
            #expect(try await daemon.request("/flagpole/v1/outcomes", body: report, headers: ["Content-Type": "application/json"]).status == 202)
            let doc = try String(contentsOf: FlagctlProcess.packageRoot.appendingPathComponent("docs/daemon.md"), encoding: .utf8)
            let section = doc.components(separatedBy: "## Metrics").last?.components(separatedBy: "**Migrating").first ?? ""
            let documented = Set(section.matches(of: /flagpole_[a-z_]+/).map { String($0.output) })
            #expect(documented.count >= 25, "\(documented)")
            try await waitUntil("every series docs/daemon.md lists is in /metrics", timeout: .seconds(5)) {
                metrics = try await daemon.request("/metrics", method: "GET").body
                return documented.allSatisfy { metrics.contains($0) }
            }
            #expect(metrics.contains(#"flagpole_outcomes_total{environment="prod",flag="color",variant="blue",result="success"} 1"#))
            let ready = try await daemon.request("/readyz", method: "GET")
            #expect(ready.status == 200 && ready.body.contains("watcher: ready"), "\(ready)")
            let lease = try FlagctlProcess.run(["status", "--env", "prod", "--redis", server.url, "--flags", root.path])
            #expect(lease.status == 0)
            #expect(try await daemon.stop() == 0)
        }
    }
}
