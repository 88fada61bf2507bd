import FlagpoleControl
import FlagpoleCore
import FlagpoleRedis
import FlagpoleRollout
import FlagpoleStore
import FlagpoleTesting
import Foundation
import Logging
import Synchronization
import Testing

@Suite("flagctl rollout (the binary)", .timeLimit(.minutes(3)))
struct RolloutCommandTests {
    static let flags = """
        {"flags": {
          "checkout": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
                       "metadata": {"rollout.watch": "30m", "rollout.minSamples": 10}}
        }}
        """

    func folder(config: String? = nil) throws -> URL {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("flagctl-rollout-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("prod"), withIntermediateDirectories: true)
        try Self.flags.write(to: root.appendingPathComponent("prod/flags.json"), atomically: true, encoding: .utf8)
        if let config { try config.write(to: root.appendingPathComponent("flagpole.yaml"), atomically: true, encoding: .utf8) }
        return root
    }

    final class Source: RolloutMetricSource {
        let name = "scripted"
        func counts(_ query: CohortQuery) async throws -> CohortCounts {
            query.role == "treatment" ? CohortCounts(successes: 800, failures: 200) : CohortCounts(successes: 990, failures: 10)
        }
    }

    final class Alerts: AlertSink {
        let sent = Mutex<[Alert]>([])
        func send(_ alert: Alert) { sent.withLock { $0.append(alert) } }
    }

    @Test("--holdback: in --help, in the guards printed, refused outside 0…50 % naming the option")
    func holdback() async throws {
        let help = try FlagctlProcess.run(["rollout", "start", "--help"])
        #expect(help.stdout.contains("--holdback <percent>"))
        try await RedisServer.withServer { server in
            let root = try folder()
            defer { try? FileManager.default.removeItem(at: root) }
            let env = ["FLAGPOLE_REDIS_URL": server.url, "FLAGPOLE_ENV": "prod"]
            #expect(try FlagctlProcess.run(["sync", "--flags", root.path], environment: env).status == 0)
            let bad = try FlagctlProcess.run(
                ["rollout", "start", "checkout", "--to", "on", "--holdback", "60%", "--flags", root.path], environment: env)
            #expect(bad.status != 0)
            #expect(bad.stderr.contains("--holdback '60%' must be a percentage between 0 and 50"))
            let good = try FlagctlProcess.run(
                ["rollout", "start", "checkout", "--to", "on", "--steps", "50,100", "--holdback", "2%", "--flags", root.path], environment: env)
            #expect(good.status == 0, "\(good.stderr)")
            #expect(good.stdout.contains("holdback 2% at 100%"))
        }
    }

    @Test("start → status (no live watcher) → list → pause → resume → abort, as a release manager sees them")
    func drive() async throws {
        try await RedisServer.withServer { server in
            let root = try folder()
            defer { try? FileManager.default.removeItem(at: root) }
            let env = ["FLAGPOLE_REDIS_URL": server.url, "FLAGPOLE_ENV": "prod"]
            #expect(try FlagctlProcess.run(["sync", "--flags", root.path], environment: env).status == 0)
            let start = try FlagctlProcess.run(
                ["rollout", "start", "checkout", "--to", "on", "--steps", "5,25,100", "--flags", root.path, "--actor", "ann", "--reason", "launch"],
                environment: env)
            #expect(start.status == 0, "\(start.stderr)")
            #expect(start.stdout.contains("checkout → on, steps 5% → 25% → 100%, each watched 30m"))
            let status = try FlagctlProcess.run(["rollout", "status", "checkout"], environment: env)
            #expect(status.stdout.contains("step 1 of 3: 5%") && status.stdout.contains(" left") && status.stdout.contains("of 30m watched"))
            #expect(status.stdout.contains("watcher: NONE LIVE"))
            let list = try FlagctlProcess.run(["rollout", "list"], environment: env)
            #expect(list.stdout.contains("checkout") && list.stdout.contains("running") && list.stdout.contains("no live watcher"))
            let again = try FlagctlProcess.run(["rollout", "start", "checkout", "--to", "on", "--flags", root.path], environment: env)
            #expect(again.status == 1 && again.stderr.contains("already has rollout"))
            #expect(try FlagctlProcess.run(["rollout", "pause", "checkout"], environment: env).stdout.contains("paused at 5%"))
            #expect(try FlagctlProcess.run(["rollout", "resume", "checkout"], environment: env).stdout.contains("running again"))
            // A command the rollout's state machine refuses: its reason, exit 1.
            let resumeAgain = try FlagctlProcess.run(["rollout", "resume", "checkout"], environment: env)
            #expect(resumeAgain.status == 1 && resumeAgain.stderr.contains("is running, not paused"), "\(resumeAgain.stderr)")
            let abort = try FlagctlProcess.run(["rollout", "abort", "checkout", "--json"], environment: env)
            #expect(try JSONParser.parse(abort.stdout)["status"] == "aborted")
            let promoteEnded = try FlagctlProcess.run(["rollout", "promote", "checkout"], environment: env)
            #expect(promoteEnded.status == 1 && promoteEnded.stderr.contains("already ended (aborted"), "\(promoteEnded.stderr)")
            let get = try FlagctlProcess.run(["get", "checkout", "--json"], environment: env)
            #expect(try JSONParser.parse(get.stdout)["override"] == .null)
            let bad = try FlagctlProcess.run(["rollout", "start", "checkout", "--to", "maybe", "--flags", root.path], environment: env)
            #expect(bad.status == 1 && bad.stderr.contains("no variant 'maybe'"))
            let usage = try FlagctlProcess.run(["rollout", "start", "checkout", "--to", "on", "--steps", "50,10"], environment: env)
            #expect(usage.status == 2 && usage.stderr.contains("--steps"))
        }
    }

    @Test("a start inside a freeze window is refused naming it; --force starts and says so")
    func freeze() async throws {
        try await RedisServer.withServer { server in
            let root = try folder(
                config: """
                    version: 1
                    freezeWindows:
                      - name: always
                        from: "2000-01-01T00:00:00Z"
                        to: "2100-01-01T00:00:00Z"
                        reason: Release freeze.
                    """)
            defer { try? FileManager.default.removeItem(at: root) }
            let env = ["FLAGPOLE_REDIS_URL": server.url, "FLAGPOLE_ENV": "prod"]
            #expect(try FlagctlProcess.run(["sync", "--flags", root.path], environment: env).status == 0)
            let refused = try FlagctlProcess.run(["rollout", "start", "checkout", "--to", "on", "--flags", root.path], environment: env)
            #expect(refused.status == 1 && refused.stderr.contains("freeze window 'always' (Release freeze.)") && refused.stderr.contains("--force"))
            let forced = try FlagctlProcess.run(["rollout", "start", "checkout", "--to", "on", "--force", "--flags", root.path], environment: env)
            #expect(forced.status == 0 && forced.stdout.contains("forced through freeze window(s): always"))
        }
    }

    @Test("an automatic revert: status shows it reverted and pinned, with the file change that reconciles")
    func revertAndReconcile() async throws {
        try await RedisServer.withServer { server in
            let root = try folder()
            defer { try? FileManager.default.removeItem(at: root) }
            let env = ["FLAGPOLE_REDIS_URL": server.url, "FLAGPOLE_ENV": "prod"]
            #expect(try FlagctlProcess.run(["sync", "--flags", root.path], environment: env).status == 0)
            #expect(try FlagctlProcess.run(["rollout", "start", "checkout", "--to", "on", "--flags", root.path], environment: env).status == 0)
            let clock = ManualRolloutClock(startMilliseconds: Int64(Date().timeIntervalSince1970 * 1000))
            let alerts = Alerts()
            let watcher = try RolloutWatcher(
                configuration: .init(environment: "prod", holderID: "test-watcher"), client: RedisClient(configuration: server.configuration),
                metricSource: { _ in Source() }, alerts: alerts, clock: clock, logger: Logger(label: "test"))
            clock.advance(by: .seconds(60))
            let report = try await watcher.tick()
            #expect(report.actions["checkout"] == .revert)
            let status = try FlagctlProcess.run(["rollout", "status", "checkout"], environment: env)
            #expect(status.stdout.contains("reverted") && status.stdout.contains("pinned"))
            // Someone had merged `defaultVariant: on` into the files: a plain sync keeps the revert, and
            // status says what to change back.
            try Self.flags.replacingOccurrences(of: #""defaultVariant": "off""#, with: #""defaultVariant": "on""#)
                .write(to: root.appendingPathComponent("prod/flags.json"), atomically: true, encoding: .utf8)
            #expect(try FlagctlProcess.run(["sync", "--flags", root.path], environment: env).status == 0)
            let get = try FlagctlProcess.run(["get", "checkout", "--json"], environment: env)
            #expect(try JSONParser.parse(get.stdout)["effective"]?["defaultVariant"] == "off")
            let envStatus = try FlagctlProcess.run(["status", "--flags", root.path], environment: env)
            #expect(envStatus.stdout.contains("set defaultVariant: off in"), "\(envStatus.stdout)")
            #expect(envStatus.stdout.contains("then `flagctl sync --unpin checkout`"))
            #expect(alerts.sent.withLock { $0.map(\.severity) } == [.critical])
        }
    }
}
