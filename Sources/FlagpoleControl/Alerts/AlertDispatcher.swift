import AsyncHTTPClient
import FlagpoleCore
import FlagpoleRollout
import Foundation
import Logging
import Prometheus
import ServiceLifecycle
import Synchronization

/// Sends alerts to the project's alert targets: a generic JSON webhook, a Slack-compatible
/// webhook, Telegram.
///
/// ``send(_:)`` never blocks: it puts the alert in a bounded queue per target that applies to the
/// alert's environment (``AlertTarget/applies(toEnvironment:)``). When a queue is full the oldest
/// alert in it is dropped and counted. ``run()`` — owned by the daemon's `ServiceGroup` or task
/// group — sends from each queue on its own, so a slow target never holds up another. A failed
/// send (network error, timeout, HTTP 408, 429 or 5xx) is retried with exponential backoff and
/// jitter (honouring `Retry-After`), up to ``Configuration-swift.struct/maxAttempts`` attempts;
/// other HTTP statuses are not retried, and a redirect is never followed (an alert, or a Telegram
/// token in its path, goes only where the project config says). Failures are logged at `warning`
/// with the target's name (`flagpole.alert.target`), never its URL or token. Requests go through
/// AsyncHTTPClient on connections reused between alerts, each within
/// ``Configuration-swift.struct/requestTimeout`` as a deadline for the whole exchange.
///
/// ```swift
/// let alerts = try AlertDispatcher(targets: config.alertTargets, logger: logger)  // throws on a missing variable
/// let group = ServiceGroup(services: [alerts, watcher], logger: logger)
/// alerts.send(Alert(severity: .critical, title: "prod: new-checkout reverted", text: "…", environment: "prod", at: now))
/// ```
///
/// What is sent: ``AlertMessage/webhook(_:)``, ``AlertMessage/slack(_:)`` and
/// ``AlertMessage/telegram(_:chatID:)`` (`POST {telegramAPIBase}/bot<token>/sendMessage`), each
/// as `application/json`. Counters: ``statistics``, and in a Prometheus registry given to
/// ``init(targets:processEnvironment:configuration:registry:logger:)``
/// `flagpole_alerts_sent_total`, `flagpole_alerts_failed_total`, `flagpole_alerts_dropped_total`
/// and `flagpole_alerts_retries_total`, each with `target` and `type` labels.
package final class AlertDispatcher: AlertSink, Service {
    /// How alerts are queued and sent.
    package struct Configuration: Sendable {
        /// The most alerts waiting per target; past it the oldest is dropped. Default: 256.
        package var queueCapacity = 256
        /// Attempts per alert and target, the first included. Default: 5.
        package var maxAttempts = 5
        /// The wait before the first retry; it doubles per attempt, jittered to [½, 1] of it.
        /// Default: 1 s.
        package var initialBackoff: Duration = .seconds(1)
        /// The longest wait between attempts (a `Retry-After` is capped to it too). Default: 60 s.
        package var maxBackoff: Duration = .seconds(60)
        /// How long one HTTP request may take, connecting and reading the answer included. Default: 10 s.
        package var requestTimeout: Duration = .seconds(10)
        /// Telegram's Bot API base URL (tests point it at a local server). Default:
        /// `https://api.telegram.org`.
        package var telegramAPIBase = "https://api.telegram.org"

        /// The defaults.
        package init() {}
    }

    /// Counts per target, for `/metrics`.
    package struct Statistics: Sendable, Hashable {
        /// Alerts a target accepted.
        package var sent = 0
        /// Alerts given up on (attempts exhausted, a status that is not retried, shutdown).
        package var failed = 0
        /// Alerts dropped from a full queue (or sent after shutdown).
        package var dropped = 0
        /// Attempts that failed and were retried.
        package var retried = 0

        /// All zero.
        package init() {}
    }

    /// One target, resolved: where to POST what, and its queue.
    final class Channel: Sendable {
        let target: AlertTarget
        let url: URL
        let chatID: String?
        /// Strings never to print: the URL and token.
        let secrets: [String]
        let stream: AsyncStream<Alert>
        let continuation: AsyncStream<Alert>.Continuation
        let stats = Mutex(Statistics())
        /// `sent`, `failed`, `dropped`, `retried` in the registry, when there is one.
        private let counters: [Counter]

        init(target: AlertTarget, url: URL, chatID: String?, secrets: [String], capacity: Int, registry: PrometheusCollectorRegistry?) {
            self.target = target
            self.url = url
            self.chatID = chatID
            self.secrets = secrets.filter { !$0.isEmpty }
            (stream, continuation) = AsyncStream.makeStream(of: Alert.self, bufferingPolicy: .bufferingNewest(max(1, capacity)))
            let labels = [("target", target.name), ("type", Self.kind(target))]
            counters =
                registry.map { registry in
                    Self.families.map {
                        registry.makeCounter(
                            descriptor: MetricNameDescriptor(namespace: nil, subsystem: nil, metricName: $0.name, unitName: "", helpText: $0.help),
                            labels: labels)
                    }
                } ?? []
        }

        static let families: [(name: String, help: String, path: WritableKeyPath<Statistics, Int> & Sendable)] = [
            ("flagpole_alerts_sent_total", "Alerts delivered to a target.", \.sent),
            ("flagpole_alerts_failed_total", "Alerts given up on after retries.", \.failed),
            ("flagpole_alerts_dropped_total", "Alerts dropped from a full queue.", \.dropped),
            ("flagpole_alerts_retries_total", "Failed attempts that were retried.", \.retried),
        ]

        /// Adds one to a statistic, and to its counter in the registry.
        func count(_ path: WritableKeyPath<Statistics, Int>) {
            stats.withLock { $0[keyPath: path] += 1 }
            if let i = Self.families.firstIndex(where: { $0.path == path }), i < counters.count { counters[i].increment() }
        }

        private static func kind(_ target: AlertTarget) -> String {
            switch target.destination {
            case .webhook: return "webhook"
            case .slack: return "slack"
            case .telegram: return "telegram"
            }
        }

        var kind: String { Self.kind(target) }

        var messageKind: AlertMessage.Kind {
            switch target.destination {
            case .webhook: return .webhook
            case .slack: return .slack
            case .telegram: return .telegram
            }
        }

        func body(_ alert: Alert) -> JSONValue {
            switch target.destination {
            case .webhook: return AlertMessage.webhook(alert)
            case .slack: return AlertMessage.slack(alert)
            case .telegram: return AlertMessage.telegram(alert, chatID: chatID ?? "")
            }
        }

        func redact(_ text: String) -> String {
            var out = text
            for s in secrets { out = out.replacingOccurrences(of: s, with: "<redacted>") }
            return out
        }
    }

    /// How alerts are queued and sent.
    package let configuration: Configuration
    private let channels: [Channel]
    private let logger: Logger
    private let started = Atomic<Bool>(false)
    /// Set when a graceful shutdown begins: what is still queued gets one attempt each.
    private let stopping = Atomic<Bool>(false)

    /// A dispatcher for `targets`, reading their environment variables now.
    ///
    /// - Parameters:
    ///   - targets: the project config's alert targets (``ProjectConfig/alertTargets``), for every
    ///     environment: each alert goes to the ones that apply to its environment.
    ///   - processEnvironment: where `urlEnv`, `botTokenEnv` and `chatIdEnv` are read. Default:
    ///     the process's environment.
    ///   - configuration: see ``Configuration-swift.struct``.
    ///   - registry: where the per-target counters go (`flagpole_alerts_*_total`, all at zero from
    ///     the start). Default: nil (only ``statistics``).
    ///   - logger: where failures are logged.
    /// - Throws: ``AlertConfigurationError`` naming every target whose variable is unset, empty or
    ///   not a URL.
    package init(
        targets: [AlertTarget], processEnvironment: [String: String] = ProcessInfo.processInfo.environment,
        configuration: Configuration = Configuration(), registry: PrometheusCollectorRegistry? = nil, logger: Logger
    ) throws(AlertConfigurationError) {
        let (channels, problems) = Self.resolve(
            targets, processEnvironment: processEnvironment, configuration: configuration, registry: registry)
        guard problems.isEmpty else { throw AlertConfigurationError(problems: problems) }
        self.channels = channels
        self.configuration = configuration
        self.logger = logger
    }

    /// Checks that every target that applies to one of `environments` (all targets when nil) can
    /// send: its environment variables are set, and URLs are `http://` or `https://` URLs. The
    /// daemon calls it at startup.
    ///
    /// - Throws: ``AlertConfigurationError`` listing every problem, e.g. `alert target "on-call":
    ///   environment variable FLAGPOLE_TELEGRAM_BOT_TOKEN (the bot token) is not set; …`.
    package static func validate(
        targets: [AlertTarget], environments: [String]? = nil,
        processEnvironment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(AlertConfigurationError) {
        let relevant = targets.filter { t in environments.map { $0.contains { t.applies(toEnvironment: $0) } } ?? true }
        let problems = resolve(relevant, processEnvironment: processEnvironment, configuration: Configuration(), registry: nil).problems
        if !problems.isEmpty { throw AlertConfigurationError(problems: problems) }
    }

    static func resolve(
        _ targets: [AlertTarget], processEnvironment env: [String: String], configuration: Configuration, registry: PrometheusCollectorRegistry?
    ) -> (channels: [Channel], problems: [AlertConfigurationError.Problem]) {
        var channels: [Channel] = []
        var problems: [AlertConfigurationError.Problem] = []
        func value(_ v: AlertTarget.Value, of target: AlertTarget, what: String) -> String? {
            if let s = v.resolve(in: env) { return s }
            if case .environmentVariable(let name) = v {
                problems.append(
                    .init(
                        target: target.name, variable: name,
                        message: "environment variable \(name) (\(what)) is not set or empty; export it where the daemon runs, "
                            + "or remove the target from the project config (flags/flagpole.yaml)"))
            }
            return nil
        }
        func httpURL(_ text: String, _ v: AlertTarget.Value, of target: AlertTarget, what: String) -> URL? {
            let lower = text.lowercased()
            if lower.hasPrefix("http://") || lower.hasPrefix("https://"), let url = URL(string: text), url.host != nil {
                return url
            }
            let source: String
            if case .environmentVariable(let name) = v { source = "environment variable \(name)" } else { source = "url" }
            let variable: String?
            if case .environmentVariable(let name) = v { variable = name } else { variable = nil }
            problems.append(
                .init(target: target.name, variable: variable, message: "\(source) (\(what)) does not hold an http:// or https:// URL"))
            return nil
        }
        for target in targets {
            switch target.destination {
            case .webhook(let v), .slack(let v):
                let what = target.destination == .webhook(url: v) ? "the webhook URL" : "the Slack webhook URL"
                guard let text = value(v, of: target, what: what), let url = httpURL(text, v, of: target, what: what) else { continue }
                channels.append(
                    Channel(target: target, url: url, chatID: nil, secrets: [text], capacity: configuration.queueCapacity, registry: registry))
            case .telegram(let tokenValue, let chatValue):
                let token = value(tokenValue, of: target, what: "the bot token")
                let chat = value(chatValue, of: target, what: "the chat id")
                guard let token, let chat else { continue }
                if token.contains("/") || token.contains(" ") || token.contains("?") {
                    var variable: String?
                    if case .environmentVariable(let name) = tokenValue { variable = name }
                    problems.append(
                        .init(
                            target: target.name, variable: variable,
                            message: "\(variable.map { "environment variable \($0)" } ?? "the bot token") does not look like a bot token "
                                + "(123456:ABC…, from @BotFather)"))
                    continue
                }
                var base = configuration.telegramAPIBase
                while base.hasSuffix("/") { base.removeLast() }
                guard let url = URL(string: "\(base)/bot\(token)/sendMessage") else {
                    problems.append(.init(target: target.name, variable: nil, message: "the Telegram API base URL is not a URL"))
                    continue
                }
                channels.append(
                    Channel(target: target, url: url, chatID: chat, secrets: [token], capacity: configuration.queueCapacity, registry: registry))
            }
        }
        return (channels, problems)
    }

    // MARK: - Sending

    /// Queues `alert` for every target that applies to its environment, without waiting. A full
    /// queue drops its oldest alert (counted in ``Statistics/dropped``). An alert about an audited
    /// event (``Alert/auditedAction``) skips the targets that announce every change of its
    /// environment (``AlertTarget/notify``): they get it once, from the audit stream
    /// (``ChangeNotifier``).
    package func send(_ alert: Alert) {
        for channel in channels where Self.sends(alert, to: channel.target) {
            switch channel.continuation.yield(alert) {
            case .enqueued: break
            case .dropped, .terminated: channel.count(\.dropped)
            @unknown default: break
            }
        }
    }

    /// Whether `alert` goes to `target` on this path (and not as a notification).
    package static func sends(_ alert: Alert, to target: AlertTarget) -> Bool {
        target.applies(toEnvironment: alert.environment) && !(alert.auditedAction != nil && target.notifies(environment: alert.environment))
    }

    /// Sends queued alerts until cancelled, or, after a graceful shutdown begins, until the queues
    /// are empty: what is still queued then gets one attempt each, without retries, and alerts sent
    /// after that are dropped. Runs once; a second call logs an error and returns.
    package func run() async throws {
        guard started.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else {
            logger.error("AlertDispatcher.run() called twice; the second call returns at once")
            return
        }
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                for channel in channels {
                    group.addTask { await self.work(channel) }
                }
            }
            // With no targets there is nothing to drain; a Service still runs until shutdown.
            if channels.isEmpty { try? await gracefulShutdown() }
        } onGracefulShutdown: {
            self.stopping.store(true, ordering: .relaxed)
            for channel in self.channels { channel.continuation.finish() }
        }
    }

    private func work(_ channel: Channel) async {
        for await alert in channel.stream {
            if Task.isCancelled {
                channel.count(\.failed)
                continue
            }
            await deliver(alert, via: channel)
        }
    }

    /// What came of one `POST`.
    package enum Attempt: Sendable, Hashable {
        /// A 2xx answer.
        case delivered
        /// A network error, a timeout, HTTP 408, 429 or 5xx: worth another try, after `after` if the
        /// target said (`Retry-After`, Telegram's `retry_after`).
        case retry(reason: String, after: Duration?)
        /// Any other answer: trying again would not help.
        case giveUp(reason: String)
    }

    private func deliver(_ alert: Alert, via channel: Channel) async {
        var metadata: Logger.Metadata = [
            "flagpole.alert.target": "\(channel.target.name)", "flagpole.alert.type": "\(channel.kind)",
            "flagpole.environment": "\(alert.environment)", "flagpole.alert.title": "\(alert.title)",
        ]
        if let flag = alert.flag { metadata["flagpole.flag"] = "\(flag)" }
        var attempts = max(1, configuration.maxAttempts)
        var attempt = 0
        while attempt < attempts {
            attempt += 1
            if stopping.load(ordering: .relaxed) { attempts = attempt }
            switch await post(alert, via: channel) {
            case .delivered:
                channel.count(\.sent)
                if attempt > 1 { logger.info("Alert delivered after \(attempt) attempts", metadata: metadata) }
                return
            case .giveUp(let reason):
                channel.count(\.failed)
                logger.warning("Alert to \(channel.target) not delivered: \(reason) (not retried)", metadata: metadata)
                return
            case .retry(let reason, let retryAfter):
                guard attempt < attempts else {
                    channel.count(\.failed)
                    logger.warning("Alert to \(channel.target) not delivered after \(attempts) attempts: \(reason)", metadata: metadata)
                    return
                }
                channel.count(\.retried)
                let wait = backoff(attempt: attempt, retryAfter: retryAfter)
                logger.debug("Alert to \(channel.target) failed (\(reason)); retrying in \(wait)", metadata: metadata)
                do {
                    // A graceful shutdown ends the wait: the queue behind this alert gets its turn.
                    try await cancelWhenGracefulShutdown { try await Task.sleep(for: wait) }
                } catch {
                    channel.count(\.failed)
                    logger.warning("Alert to \(channel.target) not delivered: stopped while retrying (\(reason))", metadata: metadata)
                    return
                }
            }
        }
    }

    /// The wait after failed attempt `attempt` (1-based): `initialBackoff · 2^(attempt-1)`, capped
    /// at `maxBackoff`, jittered to [½, 1] of it; at least a `Retry-After` (capped too).
    func backoff(attempt: Int, retryAfter: Duration?) -> Duration {
        let base = configuration.initialBackoff * (1 << min(max(0, attempt - 1), 30))
        let capped = min(base, configuration.maxBackoff)
        let jittered = capped * Double.random(in: 0.5...1)
        guard let retryAfter else { return jittered }
        return max(jittered, min(retryAfter, configuration.maxBackoff))
    }

    private func post(_ alert: Alert, via channel: Channel) async -> Attempt {
        await Self.post(channel.body(alert), via: channel, timeout: configuration.requestTimeout)
    }

    /// One `POST` of `body` to a channel's URL, no redirect followed; a reason never holds its
    /// URL or token.
    static func post(_ body: JSONValue, via channel: Channel, timeout: Duration) async -> Attempt {
        let (url, authorization) = ControlHTTP.splitCredentials(channel.url)
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "Flagpole/\(FlagpoleVersion.current)")
        if let authorization { request.headers.add(name: "Authorization", value: authorization) }
        request.body = .bytes(Array(body.jsonString.utf8))
        let answer: ControlHTTP.Answer
        do {
            answer = try await ControlHTTP.send(request, timeout: timeout, maxBodyBytes: 64 * 1024)
        } catch {
            // The reason names no URL (and so no token); redacted all the same.
            let reason = error.description.hasPrefix("timed out") ? error.description : "request \(error.description)"
            return .retry(reason: channel.redact(reason), after: nil)
        }
        let status = answer.status
        if (200..<300).contains(status) { return .delivered }
        var reason = "HTTP \(status)"
        let text = String(decoding: answer.body.prefix(300), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if !text.isEmpty { reason += ": " + channel.redact(text) }
        if status == 408 || status == 429 || status >= 500 {
            var retryAfter: Duration?
            if let header = answer.headers.first(name: "Retry-After"), let s = Int(header), s >= 0 {
                retryAfter = .seconds(s)
            } else if let s = (try? JSONParser.parse(bytes: answer.body))?["parameters"]?["retry_after"]?.numberValue, s >= 0 {
                retryAfter = .seconds(s)  // Telegram's flood control
            }
            return .retry(reason: reason, after: retryAfter)
        }
        if (300..<400).contains(status) {
            reason += " (a redirect, not followed: point the target at the final URL)"
        }
        return .giveUp(reason: reason)
    }

    // MARK: - Counters

    /// Counts per target name.
    package var statistics: [String: Statistics] {
        var out: [String: Statistics] = [:]
        for channel in channels { out[channel.target.name] = channel.stats.withLock { $0 } }
        return out
    }
}
