import FlagpoleTesting
import Foundation
import Testing

/// `flagpole-traffic` sits next to `flagctl` in the build folder.
private var trafficExecutable: String {
    FlagctlProcess.executable.deletingLastPathComponent().appendingPathComponent("flagpole-traffic").path
}

/// One line of flagpole-traffic's report.
private struct TrafficReport: Decodable {
    var evaluations: Int
    var served: [String: Int]
    var errors: Int
    var revisions: Revisions
    var ready: Bool
    struct Revisions: Decodable { var min: Int64?; var max: Int64? }

    init?(_ line: String) {
        guard let r = try? JSONDecoder().decode(TrafficReport.self, from: Data(line.utf8)) else { return nil }
        self = r
    }
}

@Suite("A guarded rollout end to end: real Redis, flagctl daemon, traffic from the client library", .timeLimit(.minutes(3)))
struct RolloutEndToEndTests {
    @Test("a regression in the new variant is reverted by the daemon within the 20 s window, and the revert reaches the clients")
    func regressionIsReverted() async throws {
        try await RedisServer.withServer { server in
            let root = FileManager.default.temporaryDirectory.appendingPathComponent("flagpole-e2e-\(UUID().uuidString.prefix(8))")
            defer { try? FileManager.default.removeItem(at: root) }
            try FileManager.default.createDirectory(at: root.appendingPathComponent("e2e"), withIntermediateDirectories: true)
            try """
                flags:
                  new-checkout:
                    state: ENABLED
                    variants: {"on": true, "off": false}
                    defaultVariant: "off"
                """.write(to: root.appendingPathComponent("e2e/flags.yaml"), atomically: true, encoding: .utf8)
            let common = ["--env", "e2e", "--redis", server.url, "--flags", root.path]
            let sync = try FlagctlProcess.run(["sync"] + common)
            #expect(sync.status == 0, "\(sync.stderr)")

            // The service: 100 evaluations a second; work under "on" fails a quarter of the time.
            let traffic = try BackgroundProcess(
                trafficExecutable,
                ["--env", "e2e", "--redis", server.url, "--flag", "new-checkout", "--rate", "100", "--error-rate", "0.01",
                 "--variant-error-rate", "on=0.25", "--report-interval", "0.5"])
            let daemon = try BackgroundProcess(FlagctlProcess.executable.path, ["daemon", "--port", "0", "--interval", "1s"] + common)
            defer {
                Task { await traffic.stop() }
                Task { await daemon.stop() }
            }
            try await traffic.waitForLine(timeout: .seconds(30), "the traffic generator is ready") { TrafficReport($0)?.ready == true }
            try await daemon.waitForLine(timeout: .seconds(30), "the daemon serves with its watcher") {
                $0.contains("flagctl daemon: serving e2e") && $0.contains("watcher every 1s")
            }

            let start = try FlagctlProcess.run(
                ["rollout", "start", "new-checkout", "--to", "on", "--steps", "50,100", "--watch", "20s", "--min-samples", "50"] + common)
            #expect(start.status == 0, "\(start.stderr)")
            let startedAt = ContinuousClock.now

            // The step reaches the clients: about half the users get "on".
            let treated = try await traffic.waitForLine(timeout: .seconds(15), "clients serve the new variant to part of the traffic") {
                (TrafficReport($0)?.served["on"] ?? 0) > 0
            }

            // The watcher reverts, on its own, before the step's 20 s are over.
            var status = ""
            try await waitUntil("the daemon reverts the rollout", timeout: .seconds(20), interval: .milliseconds(250)) {
                status = (try? FlagctlProcess.run(["rollout", "status", "new-checkout", "--json"] + common).stdout) ?? ""
                return status.contains("\"reverted\"")
            }
            let revertedAfter = startedAt.duration(to: .now)
            #expect(revertedAfter < .seconds(20))
            #expect(status.contains("ceiling") || status.contains("sequential"), "the revert gives its evidence: \(status)")

            // …and the revert reaches every client: from some report on, nobody is served "on".
            let live = try FlagctlProcess.run(["status"] + common).stdout
            #expect(live.contains("pinned"), "flagctl status shows the flag reverted and pinned: \(live)")
            try await traffic.waitForLine(after: treated.index + 1, timeout: .seconds(10), "clients serve only the old variant again") {
                guard let r = TrafficReport($0), r.evaluations > 20 else { return false }
                return r.served["on"] == nil && r.served["off"] == r.evaluations
            }
            #expect(daemon.isRunning, "the daemon keeps running after the revert: \(daemon.stderr)")
            #expect(await daemon.stop() == 0, "SIGTERM stops the daemon gracefully")
            #expect(await traffic.stop() == 0, "SIGTERM stops the traffic generator gracefully")
            FaultTable.record(
                fault: "a 25% error rate in the new variant during a rollout (real daemon, 100 req/s)",
                checked: "the daemon reverts within the 20 s window; the revert reaches the clients; the flag is pinned",
                passed: revertedAfter < .seconds(20), figure: "reverted \(FaultTable.ms(revertedAfter)) after the start")
        }
    }
}
