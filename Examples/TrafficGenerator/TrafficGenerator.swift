// flagpole-traffic: synthetic traffic through the client library, for trying a rollout end to end
// and for load tests. Each instance is a whole FlagpoleClient (its own connections, snapshot and
// outcome counters), evaluates one flag for random users at a steady rate and records an outcome
// per evaluation that fails with the given probability for the variant it got.
//
//   flagpole-traffic --env prod --flag new-checkout --rate 40 --error-rate 0.01 --variant-error-rate on=0.2
//
// A shared incident — nothing to do with the flag — with --incident-file PATH: while PATH exists,
// every request, whatever its variant, also fails with the probability written in it (0.2 if empty):
//
//   echo 0.2 > /tmp/incident; sleep 60; rm /tmp/incident
//
// Every --report-interval it prints one JSON line: what was served, the errors, and the applied
// revisions, so a person (or a test) sees a change or a revert reach the clients. With
// --metrics-port it serves the client library's metrics on /metrics, the way an application
// exposes them to Prometheus (docs/client.md): one registry, given to every client as its
// swift-metrics factory.
import ArgumentParser
import Flagpole
import Foundation
import Hummingbird
import Logging
import Prometheus
import ServiceLifecycle
import Synchronization

@main
struct TrafficGenerator: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flagpole-traffic",
        abstract: "Evaluate a flag at a steady rate through the client library and report outcomes, like a real service.",
        discussion: """
            Prints one JSON line per report interval: {"elapsed":…,"evaluations":…,"served":{"variant":n,…},"errors":…,\
            "revisions":{"min":…,"max":…},"ready":…}. Stops on SIGINT/SIGTERM or after --duration.
            """
    )

    @Option(help: "The Redis URL (default: $FLAGPOLE_REDIS_URL, else redis://127.0.0.1:6379).") var redis: String?
    @Option(help: "The environment (default: $FLAGPOLE_ENV, else prod).") var env: String?
    @Option(help: "The flag to evaluate.") var flag: String
    @Option(help: "The flag's type: bool, string, int or double.") var type: ValueType = .bool
    @Option(help: "Evaluations per second per instance.") var rate: Double = 20
    @Option(help: "Client instances in this process, each with its own connections.") var instances: Int = 1
    @Option(help: "Distinct users (targeting keys) to pick from at random.") var users: Int = 100_000
    @Option(help: "The probability that work fails, for every variant not named by --variant-error-rate.") var errorRate: Double = 0.01
    @Option(help: "VARIANT=P: the probability that work under VARIANT fails (repeatable).") var variantErrorRate: [String] = []
    @Option(
        help: "While this file exists, every request (any variant) also fails with the probability written in it (0.2 if empty): a shared incident.")
    var incidentFile: String?
    @Option(help: "Seconds between report lines.") var reportInterval: Double = 1
    @Option(help: "Stop after this many seconds (default: run until stopped).") var duration: Double?
    @Option(help: "The application name the instances register under.") var application = "flagpole-traffic"
    @Option(help: "Serve the client library's metrics on http://127.0.0.1:PORT/metrics (0: a free port, printed as {\"metrics\":URL}).")
    var metricsPort: Int?

    enum ValueType: String, ExpressibleByArgument { case bool, string, int, double }

    func validate() throws {
        guard rate > 0, rate <= 1_000_000 else { throw ValidationError("--rate must be above 0 and at most 1000000, got \(rate)") }
        guard instances >= 1, instances <= 10_000 else { throw ValidationError("--instances must be 1…10000, got \(instances)") }
        guard users >= 1 else { throw ValidationError("--users must be at least 1") }
        guard (0...1).contains(errorRate) else { throw ValidationError("--error-rate must be 0…1, got \(errorRate)") }
        _ = try parsedVariantRates()
        if let metricsPort, !(0...65535).contains(metricsPort) { throw ValidationError("--metrics-port must be 0…65535, got \(metricsPort)") }
    }

    func parsedVariantRates() throws -> [String: Double] {
        var rates: [String: Double] = [:]
        for item in variantErrorRate {
            guard let eq = item.lastIndex(of: "="), let p = Double(item[item.index(after: eq)...]), (0...1).contains(p) else {
                throw ValidationError("--variant-error-rate '\(item)': expected VARIANT=P with P in 0…1, e.g. on=0.2")
            }
            rates[String(item[..<eq])] = p
        }
        return rates
    }

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .warning
            return handler
        }
        let redisConfiguration = try RedisConfiguration.resolve(url: redis)
        let environment = env ?? ProcessInfo.processInfo.environment["FLAGPOLE_ENV"] ?? "prod"
        let registry = PrometheusCollectorRegistry()
        let clients = (0..<instances).map { _ in
            var configuration = FlagpoleClient.Configuration(redis: redisConfiguration, environment: environment, application: application)
            configuration.startupTimeout = .seconds(10)
            if metricsPort != nil { configuration = configuration.reportingMetrics(to: registry) }
            return FlagpoleClient(configuration: configuration, logger: Logger(label: "flagpole-traffic"))
        }
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = clients.map { .init(service: $0) }
        if let metricsPort {
            let router = Router()
            router.addMetrics(registry)
            let app = Application(
                router: router, configuration: .init(address: .hostname("127.0.0.1", port: metricsPort), serverName: nil),
                onServerRunning: { channel in
                    print(#"{"metrics":"http://127.0.0.1:\#(channel.localAddress?.port ?? metricsPort)/metrics"}"#)
                    fflush(nil)
                },
                logger: Logger(label: "flagpole-traffic"))
            services.append(.init(service: app))
        }
        let generator = Generator(
            clients: clients, flag: flag, type: type, rate: rate, users: users, errorRate: errorRate,
            variantErrorRates: try parsedVariantRates(), incidentFile: incidentFile, reportInterval: reportInterval, duration: duration)
        let group = ServiceGroup(
            configuration: .init(
                services: services + [.init(service: generator, successTerminationBehavior: .gracefullyShutdownGroup)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: Logger(label: "flagpole-traffic")))
        try await group.run()
    }
}

/// Drives the instances and prints the report lines.
final class Generator: Service, Sendable {
    let clients: [FlagpoleClient]
    let flag: String
    let type: TrafficGenerator.ValueType
    let rate: Double
    let users: Int
    let errorRate: Double
    let variantErrorRates: [String: Double]
    let incidentFile: String?
    let reportInterval: Double
    let duration: Double?
    /// The shared incident's error rate now (0: none), from ``incidentFile``, checked every 100 ms.
    let incident = Mutex(0.0)

    struct Tally {
        var evaluations = 0
        var errors = 0
        var served: [String: Int] = [:]
    }
    let tally = Mutex(Tally())

    init(
        clients: [FlagpoleClient], flag: String, type: TrafficGenerator.ValueType, rate: Double, users: Int, errorRate: Double,
        variantErrorRates: [String: Double], incidentFile: String?, reportInterval: Double, duration: Double?
    ) {
        self.incidentFile = incidentFile
        self.clients = clients
        self.flag = flag
        self.type = type
        self.rate = rate
        self.users = users
        self.errorRate = errorRate
        self.variantErrorRates = variantErrorRates
        self.reportInterval = reportInterval
        self.duration = duration
    }

    func run() async throws {
        for client in clients { await client.waitUntilReady(timeout: .seconds(15)) }
        let start = ContinuousClock.now
        // SIGTERM/SIGINT (graceful shutdown) or --duration end the evaluating and the reporting.
        try? await cancelWhenGracefulShutdown {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for client in self.clients {
                    group.addTask { try await self.drive(client) }
                }
                group.addTask { try await self.report(start: start) }
                if let path = self.incidentFile {
                    group.addTask {
                        while true {
                            let rate: Double
                            if let text = try? String(contentsOfFile: path, encoding: .utf8) {
                                rate = Double(text.trimmingCharacters(in: .whitespacesAndNewlines)).map { min(1, max(0, $0)) } ?? 0.2
                            } else {
                                rate = 0
                            }
                            self.incident.withLock { $0 = rate }
                            try await Task.sleep(for: .milliseconds(100))
                        }
                    }
                }
                if let duration = self.duration {
                    group.addTask { try await Task.sleep(for: .seconds(duration)) }
                    _ = try await group.next()
                    group.cancelAll()
                }
                try await group.waitForAll()
            }
        }
        printReport(elapsed: start.duration(to: .now))
    }

    /// One instance: evaluations at `rate`, in ticks of 10 ms.
    func drive(_ client: FlagpoleClient) async throws {
        let tick = Duration.milliseconds(10)
        let perTick = rate / 100
        var owed = Double.random(in: 0..<1)
        var next = ContinuousClock.now
        var rng = SystemRandomNumberGenerator()
        while !Task.isCancelled {
            owed += perTick
            var local = Tally()
            while owed >= 1 {
                owed -= 1
                let user = "user-\(Int.random(in: 0..<users, using: &rng))"
                let context = EvaluationContext(targetingKey: user)
                let variant: String?
                switch type {
                case .bool: variant = client.boolDetails(flag, default: false, context: context).variant
                case .string: variant = client.stringDetails(flag, default: "", context: context).variant
                case .int: variant = client.integerDetails(flag, default: 0, context: context).variant
                case .double: variant = client.doubleDetails(flag, default: 0, context: context).variant
                }
                let p = variant.flatMap { variantErrorRates[$0] } ?? errorRate
                let shared = incident.withLock { $0 }
                let failed = Double.random(in: 0..<1, using: &rng) < p || (shared > 0 && Double.random(in: 0..<1, using: &rng) < shared)
                client.recordOutcome(flag: flag, variant: variant, success: !failed, duration: .microseconds(Int.random(in: 500...5000, using: &rng)))
                local.evaluations += 1
                local.errors += failed ? 1 : 0
                local.served[variant ?? "(default)", default: 0] += 1
            }
            if local.evaluations > 0 {
                tally.withLock { t in
                    t.evaluations += local.evaluations
                    t.errors += local.errors
                    for (k, v) in local.served { t.served[k, default: 0] += v }
                }
            }
            next = next.advanced(by: tick)
            try await Task.sleep(until: next, clock: .continuous)
        }
    }

    func report(start: ContinuousClock.Instant) async throws {
        while true {
            try await Task.sleep(for: .seconds(reportInterval))
            printReport(elapsed: start.duration(to: .now))
        }
    }

    func printReport(elapsed: Duration) {
        let t = tally.withLock { t -> Tally in
            defer { t = Tally() }
            return t
        }
        let revisions = clients.compactMap { $0.freshness.revision }
        let served = t.served.keys.sorted().map { "\"\(jsonEscaped($0))\":\(t.served[$0]!)" }.joined(separator: ",")
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let line = """
            {"elapsed":\(Int(seconds * 1000) / 1000),"evaluations":\(t.evaluations),"served":{\(served)},"errors":\(t.errors),\
            "revisions":{"min":\(revisions.min().map(String.init) ?? "null"),"max":\(revisions.max().map(String.init) ?? "null")},\
            "ready":\(clients.allSatisfy(\.isReady))}
            """
        print(line)
        fflush(nil)
    }
}

private func jsonEscaped(_ s: String) -> String {
    var out = ""
    for c in s.unicodeScalars {
        switch c {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case _ where c.value < 0x20: out += "\\u" + String(repeating: "0", count: 4 - String(c.value, radix: 16).count) + String(c.value, radix: 16)
        default: out.unicodeScalars.append(c)
        }
    }
    return out
}
