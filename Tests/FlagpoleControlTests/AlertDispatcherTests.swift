import FlagpoleControl
import FlagpoleCore
import FlagpoleRollout
import FlagpoleTesting
import Foundation
import Logging
import Prometheus
import ServiceLifecycle
import Synchronization
import Testing

/// Runs the dispatcher while `body` runs, then cancels it and waits for it to end.
private func whileRunning<T>(_ dispatcher: AlertDispatcher, _ body: () async throws -> T) async throws -> T {
    let task = Task { try await dispatcher.run() }
    do {
        let result = try await body()
        task.cancel()
        try await task.value
        return result
    } catch {
        task.cancel()
        _ = try? await task.value
        throw error
    }
}

private let reverted = Alert(
    severity: .critical, title: "prod: new-checkout reverted", text: "error rate 7.5% (treatment) vs 1.0% (control)",
    environment: "prod", flag: "new-checkout", rolloutID: "r-42", details: ["treatment": ["failures": 30, "total": 400]],
    at: 1_767_225_600)

private func fast() -> AlertDispatcher.Configuration {
    var c = AlertDispatcher.Configuration()
    c.initialBackoff = .milliseconds(10)
    c.maxBackoff = .milliseconds(40)
    c.maxAttempts = 3
    c.requestTimeout = .seconds(5)
    return c
}

@Suite("AlertDispatcher against stand-in servers", .timeLimit(.minutes(1)))
struct AlertDispatcherTests {
    @Test("the generic webhook gets the whole alert as JSON")
    func webhook() async throws {
        try await StandInServer.with { server in
            let dispatcher = try AlertDispatcher(
                targets: [AlertTarget(name: "ops", destination: .webhook(url: .environmentVariable("OPS_HOOK")))],
                processEnvironment: ["OPS_HOOK": server.url + "/hooks/flagpole"], configuration: fast(), logger: LogCapture().logger)
            try await whileRunning(dispatcher) {
                dispatcher.send(reverted)
                try await waitUntil("the webhook is called") { dispatcher.statistics["ops"]?.sent == 1 }
            }
            let request = try #require(server.requests.first)
            #expect(server.count == 1)
            #expect(request.method == "POST" && request.path == "/hooks/flagpole" && request.contentType == "application/json")
            let body = try JSONParser.parse(request.body)
            #expect(
                body == [
                    "severity": "critical", "title": "prod: new-checkout reverted", "text": "error rate 7.5% (treatment) vs 1.0% (control)",
                    "environment": "prod", "flag": "new-checkout", "rolloutID": "r-42",
                    "details": ["treatment": ["failures": 30, "total": 400]], "at": 1_767_225_600,
                ])
            let info = Alert(severity: .info, title: "t", text: "", environment: "prod", at: 1)
            #expect(AlertMessage.webhook(info)["flag"] == .null && AlertMessage.webhook(info)["rolloutID"] == .null)
        }
    }

    @Test("Slack gets {\"text\"} with the title and the text")
    func slack() async throws {
        try await StandInServer.with { server in
            let dispatcher = try AlertDispatcher(
                targets: [AlertTarget(name: "team", destination: .slack(url: .literal(server.url + "/services/T/B/x")))],
                processEnvironment: [:], configuration: fast(), logger: LogCapture().logger)
            try await whileRunning(dispatcher) {
                dispatcher.send(reverted)
                try await waitUntil("Slack is called") { dispatcher.statistics["team"]?.sent == 1 }
            }
            let request = try #require(server.requests.first)
            #expect(request.method == "POST" && request.path == "/services/T/B/x")
            #expect(try JSONParser.parse(request.body) == ["text": "🚨 prod: new-checkout reverted\nerror rate 7.5% (treatment) vs 1.0% (control)"])
        }
    }

    @Test("Telegram gets sendMessage with chat_id and text at the injectable API base")
    func telegram() async throws {
        try await StandInServer.with { server in
            var configuration = fast()
            configuration.telegramAPIBase = server.url + "/"
            let dispatcher = try AlertDispatcher(
                targets: [
                    AlertTarget(
                        name: "on-call", destination: .telegram(botToken: .environmentVariable("TG_TOKEN"), chatID: .environmentVariable("TG_CHAT")))
                ],
                processEnvironment: ["TG_TOKEN": "123456:ABC-def", "TG_CHAT": "-100200300"], configuration: configuration,
                logger: LogCapture().logger)
            try await whileRunning(dispatcher) {
                dispatcher.send(Alert(severity: .warning, title: "prod: new-checkout held", text: "no data", environment: "prod", at: 5))
                try await waitUntil("Telegram is called") { dispatcher.statistics["on-call"]?.sent == 1 }
            }
            let request = try #require(server.requests.first)
            #expect(request.method == "POST" && request.path == "/bot123456:ABC-def/sendMessage" && request.contentType == "application/json")
            #expect(
                try JSONParser.parse(request.body) == [
                    "chat_id": "-100200300", "text": "⚠️ prod: new-checkout held\nno data", "disable_web_page_preview": true,
                ])
        }
    }

    @Test("an alert goes only to the targets that apply to its environment")
    func environments() async throws {
        try await StandInServer.with { server in
            let dispatcher = try AlertDispatcher(
                targets: [
                    AlertTarget(name: "prod-only", destination: .webhook(url: .literal(server.url + "/prod")), environments: ["prod"]),
                    AlertTarget(name: "everything", destination: .webhook(url: .literal(server.url + "/all"))),
                ],
                processEnvironment: [:], configuration: fast(), logger: LogCapture().logger)
            try await whileRunning(dispatcher) {
                dispatcher.send(Alert(severity: .info, title: "test: x completed", text: "", environment: "test", at: 1))
                dispatcher.send(reverted)
                try await waitUntil("three deliveries") {
                    dispatcher.statistics["prod-only"]?.sent == 1 && dispatcher.statistics["everything"]?.sent == 2
                }
            }
            #expect(server.requests.filter { $0.path == "/prod" }.allSatisfy { $0.body.contains("\"environment\":\"prod\"") })
            #expect(server.count == 3)
        }
    }

    @Test("a failing server is retried with backoff, then given up and logged by target name without the secret")
    func retriesThenGivesUp() async throws {
        try await StandInServer.with({ _, _ in .init(status: .serviceUnavailable, body: #"{"ok":false,"description":"bot123456:SECRET is down"}"#) })
        {
            server in
            var configuration = fast()
            configuration.telegramAPIBase = server.url
            let logs = LogCapture()
            let dispatcher = try AlertDispatcher(
                targets: [AlertTarget(name: "on-call", destination: .telegram(botToken: .literal("123456:SECRET"), chatID: .literal("1")))],
                processEnvironment: [:], configuration: configuration, logger: logs.logger)
            let started = ContinuousClock.now
            try await whileRunning(dispatcher) {
                dispatcher.send(reverted)
                try await waitUntil("the alert is given up") { dispatcher.statistics["on-call"]?.failed == 1 }
            }
            #expect(server.count == 3)  // maxAttempts
            #expect(
                dispatcher.statistics["on-call"]
                    == {
                        var s = AlertDispatcher.Statistics()
                        s.failed = 1
                        s.retried = 2
                        return s
                    }())
            #expect(started.duration(to: .now) >= .milliseconds(10))  // at least the jittered backoffs: ≥ 5 ms + 10 ms
            let warnings = logs.warnings()
            #expect(warnings.count == 1)
            #expect(warnings.first?.contains(#"telegram alert target "on-call""#) == true)
            #expect(warnings.first?.contains("after 3 attempts: HTTP 503") == true)
            #expect(!logs.text.contains("SECRET"), "\(logs.text)")
            #expect(!logs.text.contains(server.url))
        }
    }

    @Test("a client error (HTTP 4xx other than 408/429) is not retried")
    func clientErrorNotRetried() async throws {
        try await StandInServer.with({ _, _ in .init(status: .badRequest, body: "invalid_payload") }) { server in
            let logs = LogCapture()
            let dispatcher = try AlertDispatcher(
                targets: [AlertTarget(name: "team", destination: .slack(url: .literal(server.url + "/x")))], processEnvironment: [:],
                configuration: fast(), logger: logs.logger)
            try await whileRunning(dispatcher) {
                dispatcher.send(reverted)
                try await waitUntil("the alert is given up") { dispatcher.statistics["team"]?.failed == 1 }
            }
            #expect(server.count == 1)
            #expect(logs.warnings().first?.contains("HTTP 400: invalid_payload (not retried)") == true)
        }
    }

    @Test("a redirect is not followed: the alert goes nowhere the config does not name, and is given up saying why")
    func redirectNotFollowed() async throws {
        try await StandInServer.with({ request, _ in
            request.path == "/hook" ? .init(status: .temporaryRedirect, location: "/elsewhere") : .init()
        }) { server in
            let logs = LogCapture()
            let dispatcher = try AlertDispatcher(
                targets: [AlertTarget(name: "ops", destination: .webhook(url: .literal(server.url + "/hook")))], processEnvironment: [:],
                configuration: fast(), logger: logs.logger)
            try await whileRunning(dispatcher) {
                dispatcher.send(reverted)
                try await waitUntil("the alert is given up") { dispatcher.statistics["ops"]?.failed == 1 }
            }
            #expect(server.requests.map(\.path) == ["/hook"])
            #expect(
                logs.warnings().first?.contains("HTTP 307") == true && logs.warnings().first?.contains("not followed") == true, "\(logs.warnings())")
        }
    }

    @Test("send never blocks, even when the server hangs: the queue is bounded, the oldest dropped and counted")
    func neverBlocks() async throws {
        try await StandInServer.with({ _, _ in .init(delay: .seconds(30)) }) { server in
            var configuration = fast()
            configuration.queueCapacity = 8
            configuration.requestTimeout = .seconds(30)
            let registry = PrometheusCollectorRegistry()
            let dispatcher = try AlertDispatcher(
                targets: [AlertTarget(name: "slow", destination: .webhook(url: .literal(server.url + "/slow")))], processEnvironment: [:],
                configuration: configuration, registry: registry, logger: LogCapture().logger)
            try await whileRunning(dispatcher) {
                dispatcher.send(reverted)
                try await waitUntil("the first request hangs in the server") { server.count == 1 }
                let started = ContinuousClock.now
                for i in 0..<1000 {
                    dispatcher.send(Alert(severity: .info, title: "alert \(i)", text: "", environment: "prod", at: Int64(i)))
                }
                #expect(started.duration(to: .now) < .seconds(1))
                #expect(dispatcher.statistics["slow"]?.dropped == 1000 - 8)
                #expect(registry.emitToString().contains(#"flagpole_alerts_dropped_total{target="slow",type="webhook"} 992"#))
                #expect(server.count == 1)
                // Let the server answer: the hanging request and the 8 queued alerts are delivered.
                server.released.store(true, ordering: .relaxed)
                try await waitUntil("the queue drains") { dispatcher.statistics["slow"]?.sent == 9 }
            }
        }
    }

    @Test("a graceful shutdown ends retry waits, gives what is queued one attempt, then run() returns; later alerts are dropped")
    func gracefulShutdown() async throws {
        try await StandInServer.with({ _, _ in .init(status: .serviceUnavailable) }) { server in
            var configuration = fast()
            configuration.maxAttempts = 5
            configuration.initialBackoff = .seconds(30)
            configuration.maxBackoff = .seconds(30)
            let logs = LogCapture()
            let dispatcher = try AlertDispatcher(
                targets: [AlertTarget(name: "ops", destination: .webhook(url: .literal(server.url + "/x")))], processEnvironment: [:],
                configuration: configuration, logger: logs.logger)
            let group = ServiceGroup(services: [dispatcher], gracefulShutdownSignals: [], cancellationSignals: [], logger: logs.logger)
            let running = Task { try await group.run() }
            dispatcher.send(reverted)
            try await waitUntil("the first attempt fails and a 15–30 s backoff begins") { dispatcher.statistics["ops"]?.retried == 1 }
            dispatcher.send(reverted)
            dispatcher.send(reverted)
            let started = ContinuousClock.now
            await group.triggerGracefulShutdown()
            try await running.value
            #expect(started.duration(to: .now) < .seconds(10))
            #expect(server.count == 3)  // one attempt each, no retries while stopping
            #expect(dispatcher.statistics["ops"]?.failed == 3)
            dispatcher.send(reverted)
            #expect(dispatcher.statistics["ops"]?.dropped == 1)
        }
    }

    @Test("the counters are in the registry, at zero from the start, labels escaped")
    func prometheusText() throws {
        let registry = PrometheusCollectorRegistry()
        _ = try AlertDispatcher(
            targets: [AlertTarget(name: "a\"b", destination: .webhook(url: .literal("http://127.0.0.1:1/x")))], processEnvironment: [:],
            registry: registry, logger: LogCapture().logger)
        let text = registry.emitToString()
        for name in ["sent", "failed", "dropped", "retries"] {
            #expect(text.contains("# TYPE flagpole_alerts_\(name)_total counter\n"))
            #expect(text.contains("flagpole_alerts_\(name)_total{target=\"a\\\"b\",type=\"webhook\"} 0\n"))
        }
    }

    @Test("validate and init name every target whose variable is missing or not a URL, never a value")
    func validation() throws {
        let targets = [
            AlertTarget(name: "ops", destination: .webhook(url: .environmentVariable("OPS_HOOK"))),
            AlertTarget(name: "team", destination: .slack(url: .environmentVariable("SLACK_URL")), environments: ["prod"]),
            AlertTarget(
                name: "on-call", destination: .telegram(botToken: .environmentVariable("TG_TOKEN"), chatID: .environmentVariable("TG_CHAT")),
                environments: ["test"]),
        ]
        let env = ["OPS_HOOK": "https://hooks.example/x", "SLACK_URL": "not a url with secret-ish text", "TG_CHAT": ""]
        #expect { try AlertDispatcher.validate(targets: targets, processEnvironment: env) } throws: { error in
            guard let e = error as? AlertConfigurationError else { return false }
            let text = e.description
            return e.problems.map(\.target) == ["team", "on-call", "on-call"]
                && e.problems.map(\.variable) == ["SLACK_URL", "TG_TOKEN", "TG_CHAT"]
                && text.contains(
                    #"alert target "team": environment variable SLACK_URL (the Slack webhook URL) does not hold an http:// or https:// URL"#)
                && text.contains(#"alert target "on-call": environment variable TG_TOKEN (the bot token) is not set or empty"#)
                && !text.contains("secret-ish")
        }
        // Only the targets of the daemon's environments count.
        #expect { try AlertDispatcher.validate(targets: targets, environments: ["prod"], processEnvironment: env) } throws: { error in
            (error as? AlertConfigurationError)?.problems.map(\.target) == ["team"]
        }
        try AlertDispatcher.validate(targets: targets, environments: ["staging"], processEnvironment: env)
        try AlertDispatcher.validate(
            targets: targets,
            processEnvironment: ["OPS_HOOK": "https://a.example/x", "SLACK_URL": "https://hooks.slack.com/T/B/x", "TG_TOKEN": "1:A", "TG_CHAT": "5"])
        #expect { _ = try AlertDispatcher(targets: targets, processEnvironment: [:], logger: LogCapture().logger) } throws: { error in
            (error as? AlertConfigurationError)?.problems.count == 4
        }
    }
}
