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
            let ready = try await daemon.request("/readyz", method: "GET")
            #expect(ready.status == 200 && ready.body.contains("watcher: ready"), "\(ready)")
            let lease = try FlagctlProcess.run(["status", "--env", "prod", "--redis", server.url, "--flags", root.path])
            #expect(lease.status == 0)
            #expect(try await daemon.stop() == 0)
        }
    }
}
