import FlagpoleCore
import FlagpoleTesting
import Foundation
import Testing

/// One line of interop/python/outcome_traffic.py's report.
private struct PythonTrafficReport: Decodable {
    var evaluations: Int
    var served: [String: Int]
    var failed: Int
    var sent: Int
    var refused: Int
    var dropped: Int
    var queued: Int
    var last_error: String?

    init?(_ line: String) {
        guard let r = try? JSONDecoder().decode(PythonTrafficReport.self, from: Data(line.utf8)) else { return nil }
        self = r
    }
}

@Suite(
    "Outcomes from Python (interop/python/flagpole.py) guard a rollout: flagd's provider in-process, a real daemon", .serialized,
    .timeLimit(.minutes(4)))
struct PythonOutcomeTests {
    static let token = "python-outcome-token-0123456789"

    @Test(
        "a Python service whose new variant fails a quarter of the time, reporting with `with flagpole.outcome(details)`: the daemon's watcher reverts the rollout within 90 s and the revert reaches the Python process over flagd sync"
    )
    func regressionFromPythonIsReverted() async throws {
        let python = try PythonEnvironment.ensure()
        try await RedisServer.withServer { server in
            let root = try RolloutEndToEndTests.flagFolder(flag: "new-checkout")
            defer { try? FileManager.default.removeItem(at: root) }
            let common = ["--env", "e2e", "--redis", server.url, "--flags", root.path]
            let sync = try FlagctlProcess.run(["sync"] + common)
            #expect(sync.status == 0, "\(sync.stderr)")
            let daemon = try await DaemonProcess.start(common + ["--interval", "1s"], environment: ["FLAGPOLE_DAEMON_TOKENS": Self.token])
            let syncPort = try #require(daemon.syncPort, "the daemon printed no flagd sync port:\n\(daemon.stdout)")

            // The service: 100 evaluations a second; work under "on" fails a quarter of the time.
            let script = FlagctlProcess.packageRoot.appendingPathComponent("interop/python/outcome_traffic.py")
            let traffic = try BackgroundProcess(
                python,
                [
                    script.path, "--flag", "new-checkout", "--rate", "100", "--error-rate", "0.01", "--variant-error-rate", "on=0.25",
                    "--report-interval", "0.5",
                ],
                environment: [
                    "FLAGPOLE_SYNC_PORT": String(syncPort), "FLAGPOLE_DAEMON_URL": daemon.baseURL, "FLAGPOLE_DAEMON_TOKEN": Self.token,
                    "PYTHONUNBUFFERED": "1",
                ],
                in: script.deletingLastPathComponent())
            defer { Task { await traffic.stop() } }
            try await traffic.waitForLine(timeout: .seconds(30), "the Python service is ready") { $0.contains(#""ready": true"#) }
            // Its outcomes arrive: sent, none refused.
            try await traffic.waitForLine(timeout: .seconds(15), "the Python service's outcomes are accepted by the daemon") {
                guard let r = PythonTrafficReport($0) else { return false }
                return r.sent > 0 && r.refused == 0
            }

            let start = try FlagctlProcess.run(
                ["rollout", "start", "new-checkout", "--to", "on", "--steps", "50,100", "--watch", "20s", "--min-samples", "50"] + common)
            #expect(start.status == 0, "\(start.stderr)")
            let startedAt = ContinuousClock.now

            // The step reaches Python over flagd sync: part of the traffic gets "on", and fails.
            let treated = try await traffic.waitForLine(timeout: .seconds(15), "Python serves the new variant to part of the traffic") {
                guard let r = PythonTrafficReport($0) else { return false }
                return (r.served["on"] ?? 0) > 0 && (r.served["off"] ?? 0) > 0
            }

            // The watcher reverts, on its own, judging the outcomes Python reported.
            var status = ""
            try await waitUntil("the daemon reverts the rollout", timeout: RolloutEndToEndTests.revertWindow, interval: .milliseconds(250)) {
                status = (try? FlagctlProcess.run(["rollout", "status", "new-checkout", "--json"] + common).stdout) ?? ""
                #expect(!status.contains("rollout-advance") && !status.contains("\"completed\""), "a failing step passed: \(status)")
                return status.contains("\"reverted\"")
            }
            let revertedAfter = startedAt.duration(to: .now)
            #expect(revertedAfter < RolloutEndToEndTests.revertWindow)
            #expect(status.contains("ceiling") || status.contains("sequential"), "the revert gives its evidence: \(status)")
            // The evidence is Python's outcomes: the treatment ("on") failing at about a quarter.
            let treatment = try JSONParser.parse(status)["rollouts"]?.arrayValue?.first?["evidence"]?["treatment"]
            let failures = treatment?["failures"]?.numberValue ?? 0, rate = treatment?["errorRate"]?.numberValue ?? 0
            #expect(failures >= 5 && rate > 0.1, "the watcher judged Python's failures of 'on': \(status)")

            // The automatic revert reaches Python: from some report on, nobody is served "on".
            let revertedAt = ContinuousClock.now
            let after = try await traffic.waitForLine(after: treated.index + 1, timeout: .seconds(10), "Python serves only the old variant again") {
                guard let r = PythonTrafficReport($0), r.evaluations > 20 else { return false }
                return r.served["on"] == nil && r.served["off"] == r.evaluations
            }
            let reached = revertedAt.duration(to: .now)
            let report = try #require(PythonTrafficReport(after.line))
            #expect(report.refused == 0 && report.dropped == 0, "no outcome refused or dropped: \(after.line)")
            #expect(report.sent > 200, "the outcomes went to the daemon in the background: \(after.line)")
            print(
                "Python outcome test: reverted \(FaultTable.ms(revertedAfter)) after the start; Python served only 'off' within \(FaultTable.ms(reached)) of seeing the revert (report interval 0.5 s)"
            )

            let exit = await traffic.stop()
            #expect(exit == 0, "SIGTERM stops the Python service after a flush; it exited with \(exit): \(traffic.stderr)")
            // close() flushed what was queued: nothing left behind.
            try await waitUntil("the Python service says it flushed everything", timeout: .seconds(5)) {
                traffic.stderr.contains("outcomes sent, 0 left")
            }
            #expect(try await daemon.stop() == 0)
            FaultTable.record(
                fault: "a 25% error rate in the new variant during a rollout, from a Python service (flagd in-process, flagpole.py outcomes)",
                checked: "the daemon reverts within 90 s on Python's outcomes; the revert reaches Python over flagd sync",
                passed: revertedAfter < RolloutEndToEndTests.revertWindow, figure: "reverted \(FaultTable.ms(revertedAfter)) after the start")
        }
    }
}
