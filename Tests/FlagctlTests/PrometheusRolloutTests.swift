import FlagpoleControl
import FlagpoleCore
import FlagpoleRedis
import FlagpoleStore
import FlagpoleTesting
import Foundation
import Logging
import Synchronization
import Testing

/// `flagpole-traffic` sits next to `flagctl` in the build folder.
private var trafficExecutable: String {
    FlagctlProcess.executable.deletingLastPathComponent().appendingPathComponent("flagpole-traffic").path
}

/// The start of the minute a Unix time falls in.
private func minuteStart(_ unix: Int64) -> Int64 { StoreLayout.unixMinute(unix) * 60 }

/// One line of flagpole-traffic's report, or the line naming its /metrics.
private struct TrafficLine: Decodable {
    var served: [String: Int]?
    var evaluations: Int?
    var ready: Bool?
    var metrics: String?

    init?(_ line: String) {
        guard let r = try? JSONDecoder().decode(TrafficLine.self, from: Data(line.utf8)) else { return nil }
        self = r
    }
}

/// A flagpole-traffic process serving its client library's metrics on a port it picked itself.
private struct TrafficApp {
    let process: BackgroundProcess
    /// `127.0.0.1:PORT`, for Prometheus's targets.
    let target: String

    static func start(redis: String, flag: String, rate: Int, variantErrorRates: String) async throws -> TrafficApp {
        let process = try BackgroundProcess(
            trafficExecutable,
            [
                "--env", "prom", "--redis", redis, "--flag", flag, "--rate", "\(rate)", "--error-rate", "0.01",
                "--variant-error-rate", variantErrorRates, "--report-interval", "0.5", "--metrics-port", "0",
            ])
        let line = try await process.waitForLine(timeout: .seconds(30), "\(flag)'s traffic serves /metrics") { TrafficLine($0)?.metrics != nil }
        let url = TrafficLine(line.line)!.metrics!
        return TrafficApp(process: process, target: url.replacingOccurrences(of: "http://", with: "").replacingOccurrences(of: "/metrics", with: ""))
    }
}

@Suite("Rollouts judged by a real Prometheus (Debian's prometheus scraping flagpole-traffic's /metrics)", .timeLimit(.minutes(3)))
struct PrometheusRolloutTests {
    static let flags = """
        flags:
          checkout-bad:
            state: ENABLED
            variants: {"on": true, "off": false}
            defaultVariant: "off"
          checkout-good:
            state: ENABLED
            variants: {"on": true, "off": false}
            defaultVariant: "off"
          quiet:
            state: ENABLED
            variants: {"on": true, "off": false}
            defaultVariant: "off"
        """

    /// A flag folder with ``flags`` in environment `prom`, synced into `redis`.
    static func syncedFolder(_ redis: RedisServer) throws -> URL {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("flagpole-prom-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("prom"), withIntermediateDirectories: true)
        try flags.write(to: root.appendingPathComponent("prom/flags.yaml"), atomically: true, encoding: .utf8)
        let sync = try FlagctlProcess.run(["sync", "--env", "prom", "--redis", redis.url, "--flags", root.path])
        #expect(sync.status == 0, "\(sync.stderr)")
        return root
    }

    @Test(
        "with --metric prometheus and the default PromQL the daemon reverts a 1 % → 5 % regression and completes a healthy rollout; the built-in and Prometheus sources agree on the cohorts' error rates"
    )
    func revertsAndCompletes() async throws {
        try await RedisServer.withServer { redis in
            let root = try Self.syncedFolder(redis)
            defer { try? FileManager.default.removeItem(at: root) }
            let common = ["--env", "prom", "--redis", redis.url, "--flags", root.path]
            // Prometheus first; it scrapes each service from the moment it listens (before its
            // client is ready, so from its first outcomes on).
            try await PrometheusServer.withServer(scrapeInterval: .seconds(1), targets: []) { prometheus in
                // Two services: under "on", checkout-bad fails 5 % of the time, checkout-good 1 % (as "off").
                let good = try await TrafficApp.start(redis: redis.url, flag: "checkout-good", rate: 1000, variantErrorRates: "on=0.01")
                try prometheus.setTargets([good.target])
                let bad = try await TrafficApp.start(redis: redis.url, flag: "checkout-bad", rate: 600, variantErrorRates: "on=0.05")
                try prometheus.setTargets([good.target, bad.target])
                defer {
                    Task { await bad.process.stop() }
                    Task { await good.process.stop() }
                }
                for app in [good, bad] {
                    try await app.process.waitForLine(timeout: .seconds(30), "the traffic is ready") { TrafficLine($0)?.ready == true }
                }
                let goodSince = UnixClock.now()
                let daemon = try BackgroundProcess(
                    FlagctlProcess.executable.path, ["daemon", "--port", "0", "--sync-port", "0", "--interval", "1s"] + common)
                defer { Task { await daemon.stop() } }
                try await daemon.waitForLine(timeout: .seconds(30), "the daemon serves with its watcher") { $0.contains("watcher every 1s") }
                try await waitUntil("Prometheus has both services' outcome series", timeout: .seconds(15)) {
                    let answer = try await prometheus.query(#"count by (flag) (flagpole_outcomes_total{environment="prom"})"#)
                    return answer.contains("checkout-bad") && answer.contains("checkout-good")
                }
                let byPrometheus = ["--metric", "prometheus", "--prometheus-url", prometheus.url]

                // 1. The regression: 50 % of checkout-bad's users get "on", which fails 5 % of the time.
                let startedAt = UnixClock.now()
                let clock = ContinuousClock.now
                let start = try FlagctlProcess.run(
                    ["rollout", "start", "checkout-bad", "--to", "on", "--steps", "50,100", "--watch", "60s"] + byPrometheus + common)
                #expect(start.status == 0, "\(start.stderr)")
                var status = ""
                try await waitUntil("the daemon reverts checkout-bad, judging by Prometheus", timeout: .seconds(45), interval: .milliseconds(250)) {
                    status = (try? FlagctlProcess.run(["rollout", "status", "checkout-bad", "--json"] + common).stdout) ?? ""
                    return status.contains("\"reverted\"")
                }
                let revertedAfter = clock.duration(to: .now)
                #expect(status.contains("prometheus"), "the evidence names the Prometheus source: \(status)")
                print("checkout-bad (1 % → 5 %) reverted by the Prometheus source \(FaultTable.ms(revertedAfter)) after the start")

                // 2. A healthy rollout completes. At 100 % the control is the window before the
                // minute the rollout starts in, so start it in a minute that checkout-good's traffic
                // (and Prometheus's scrapes) had already run 8 s before: up to a minute's wait.
                let boundary = minuteStart(goodSince + 8 + 59)
                try await waitUntil("a minute begins after 8 s of checkout-good's traffic", timeout: .seconds(75), interval: .milliseconds(100)) {
                    UnixClock.now() >= boundary
                }
                let healthyClock = ContinuousClock.now
                let healthy = try FlagctlProcess.run(
                    ["rollout", "start", "checkout-good", "--to", "on", "--steps", "100", "--watch", "5s"] + byPrometheus + common)
                #expect(healthy.status == 0, "\(healthy.stderr)")
                try await waitUntil("the daemon completes checkout-good, judging by Prometheus", timeout: .seconds(45), interval: .milliseconds(250))
                {
                    status = (try? FlagctlProcess.run(["rollout", "status", "checkout-good", "--json"] + common).stdout) ?? ""
                    return status.contains("\"completed\"") || status.contains("\"reverted\"")
                }
                #expect(status.contains("\"completed\""), "a healthy rollout is not reverted: \(status)")
                print(
                    "checkout-good (1 % → 1 %) completed by the Prometheus source \(FaultTable.ms(healthyClock.duration(to: .now))) after its start")

                // 3. Both sources, same traffic, same cohorts and window (from the minute the rollout
                // began to 2 s ago, the control having kept its traffic meanwhile): once the clients
                // serve only "off" and Prometheus has scraped after their last flush of "on" outcomes.
                try await bad.process.waitForLine(
                    after: bad.process.lines.count, timeout: .seconds(10), "checkout-bad's clients serve only \"off\" again"
                ) {
                    guard let r = TrafficLine($0), let n = r.evaluations, n > 20 else { return false }
                    return r.served?["on"] == nil
                }
                let settled = UnixClock.now() + 2  // the clients flush once a second
                try await waitUntil("Prometheus scraped after the last \"on\" outcomes were flushed", timeout: .seconds(15)) {
                    let answer = try await prometheus.query(
                        #"max(timestamp(flagpole_outcomes_total{flag="checkout-bad",variant="on"})) > \#(settled)"#)
                    return answer.contains("\"value\"")
                }
                let client = RedisClient(configuration: try RedisConfiguration(url: redis.url))
                let builtin = BuiltinMetricSource(client: client)
                let viaPrometheus = try PrometheusMetricSource(configuration: .flagpoleOutcomes(url: prometheus.url), counters: nil)
                let to = UnixClock.now() - 2
                let tolerance = 0.005  // absolute: half a percentage point
                var rows: [String] = []
                for (role, cohort) in [("treatment", CohortSelector.variant("on")), ("control", .allBut("on"))] {
                    let q = CohortQuery(environment: "prom", flag: "checkout-bad", cohort: cohort, role: role, from: minuteStart(startedAt), to: to)
                    let b = try await builtin.counts(q)
                    let p = try await viaPrometheus.counts(q)
                    let (br, pr) = (b.errorRate ?? -1, p.errorRate ?? -1)
                    print(
                        "checkout-bad \(role) error rate over \(q.from)..<\(q.to): builtin \(Self.percent(br)) of \(Int(b.total)), "
                            + "prometheus \(Self.percent(pr)) of \(Int(p.total.rounded())) (tolerance ±\(Self.percent(tolerance)))")
                    rows.append(
                        "| \(role) (\(role == "treatment" ? "on, 5 %" : "off, 1 %")) | \(Self.percent(br)) of \(Int(b.total)) "
                            + "| \(Self.percent(pr)) of \(Int(p.total.rounded())) | \(String(format: "%.2f pp", abs(br - pr) * 100)) |")
                    #expect(b.total > 100 && p.total > 100, "\(role): both sources see the cohort")
                    #expect(abs(br - pr) <= tolerance, "\(role): builtin \(br) vs prometheus \(pr)")
                }

                Figures.write(
                    "prometheus-agreement",
                    """
                    checkout-bad over \(to - minuteStart(startedAt)) s: reverted \(FaultTable.ms(revertedAfter)) after the start \
                    by the Prometheus source; checkout-good completed (steps 100, watch 5 s).

                    | cohort | built-in error rate | Prometheus error rate | difference (tolerance 0.50 pp) |
                    |---|---|---|---|
                    \(rows.joined(separator: "\n"))
                    """)
                #expect(daemon.isRunning, "\(daemon.stderr)")
            }
        }
    }

    static func percent(_ rate: Double) -> String {
        String(format: "%.2f %%", rate * 100)
    }

    final class Alerts: AlertSink {
        func send(_ alert: Alert) {}
    }

    @Test("a Prometheus with no series, a slow one and one that is down make the watcher hold and say why, never pass")
    func holdsWhenPrometheusFails() async throws {
        try await RedisServer.withServer { redis in
            let root = try Self.syncedFolder(redis)
            defer { try? FileManager.default.removeItem(at: root) }
            let client = RedisClient(configuration: try RedisConfiguration(url: redis.url))
            let control = try EnvironmentControl(environment: "prom", client: client, directory: FlagDirectory(root: root.path))
            // A real Prometheus that scrapes nothing: it answers every query, with no series.
            try await PrometheusServer.withServer(targets: []) { prometheus in
                var request = EnvironmentControl.RolloutStart(flag: "quiet", target: "on")
                request.steps = [100]
                request.watch = .seconds(1)
                request.minSamples = 1
                request.metric = "prometheus"
                request.prometheusURL = prometheus.url
                let record = try await control.startRollout(request)
                // The treatment's window starts at the minute the step began in: let it be a second long.
                try await waitUntil("the step's window is not empty", timeout: .seconds(3)) { UnixClock.now() > minuteStart(record.stepStartedAt) }
                let watcher = try RolloutWatcher(
                    configuration: .init(environment: "prom"), client: client,
                    metricSource: { settings in
                        try makeMetricSource(policy: settings.policy, environment: "prom", client: client, prometheusTimeout: .milliseconds(500))
                    },
                    alerts: Alerts(), logger: Logger(label: "prometheus-faults"))
                let faults: [(String, @Sendable () -> Void, String)] = [
                    ("no series", {}, "gave no sample (empty result)"),
                    ("slow (SIGSTOP)", { prometheus.pause() }, "timed out after 0.5 seconds"),
                    ("down", { prometheus.stop() }, "Connection refused"),
                ]
                for (fault, inject, reason) in faults {
                    inject()
                    if fault.hasPrefix("slow") { try await waitUntil("prometheus is stopped", timeout: .seconds(2)) { prometheus.isPaused } }
                    let tick = try await watcher.tick()
                    #expect(tick.actions["quiet"] == .hold, "\(fault): \(tick)")
                    let read = try await control.store.readRollouts()
                    let observation = try #require(read.observations["quiet"])
                    print("Prometheus \(fault): the watcher holds: \(observation.reason)")
                    #expect(observation.verdict == .hold)
                    #expect(observation.reason.contains(reason), "\(fault): \(observation.reason)")
                    #expect(observation.reason.contains(prometheus.url), "\(fault): the reason names the server")
                    #expect(read.rollouts["quiet"]?.status == .running)
                }
            }
        }
    }
}
