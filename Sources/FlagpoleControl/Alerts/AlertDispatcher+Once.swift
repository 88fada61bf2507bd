import FlagpoleCore
import FlagpoleRollout
import Foundation
import Logging
import Synchronization

extension AlertDispatcher {
    /// How alerts sent through ``withOneShot(targets:environment:processEnvironment:configuration:deadline:logger:_:)`` fared.
    package struct OneShotReport: Sendable {
        /// Alerts handed to the sink by the body.
        package var alerts: [Alert] = []
        /// Per target that applies to the environment: its counters when the wait ended.
        package var statistics: [String: Statistics] = [:]
        /// Why no dispatcher could be made (a target's variable unset, …); nil when it could.
        package var configurationProblem: AlertConfigurationError?
        /// Whether the wait ended at the deadline with alerts still unsent.
        package var timedOut = false

        /// Per target: how many of ``alerts`` it takes on this path (an audited alert skips a
        /// target that announces the environment: the daemon's notifier sends it that change).
        package var owed: [String: Int] = [:]

        /// Target names that accepted every alert they were owed.
        package var delivered: [String] {
            owed.filter { name, n in n > 0 && (statistics[name]?.sent ?? 0) >= n }.keys.sorted()
        }
        /// Target names that did not.
        package var undelivered: [String] {
            owed.filter { name, n in n > 0 && (statistics[name]?.sent ?? 0) < n }.keys.sorted()
        }
        /// Target names owed nothing here because they announce every change of the environment
        /// (`notify`): they hear of it from the daemon's notification of the audit entry.
        package var announcedByDaemon: [String] {
            owed.filter { $0.value == 0 && !alerts.isEmpty }.keys.sorted()
        }
    }

    /// Runs `body` with a sink that sends to the alert targets of `environment`, and waits until
    /// every alert the body sent was delivered or given up on by every target — with the
    /// dispatcher's retries — or until `deadline` has passed; then stops the dispatcher. For
    /// short-lived processes (`flagctl rollout start --force`), which cannot keep the daemon's
    /// queues.
    ///
    /// When a target cannot send (its variable is unset), `body` still runs, with a sink that
    /// records the alerts only, and the report says why nothing was sent.
    ///
    /// - Parameters:
    ///   - deadline: the longest wait after `body` returns. Default: 30 s.
    ///   - configuration: the dispatcher's. Default: 3 attempts, 1 s first backoff, 5 s at most,
    ///     5 s per request.
    package static func withOneShot<T: Sendable>(
        targets: [AlertTarget], environment: String, processEnvironment: [String: String] = ProcessInfo.processInfo.environment,
        configuration: Configuration = .oneShot, deadline: Duration = .seconds(30), logger: Logger,
        _ body: (any AlertSink) async throws -> T
    ) async throws -> (T, OneShotReport) {
        let relevant = targets.filter { $0.applies(toEnvironment: environment) }
        let dispatcher: AlertDispatcher
        do {
            dispatcher = try AlertDispatcher(
                targets: relevant, processEnvironment: processEnvironment, configuration: configuration, logger: logger)
        } catch {
            let recorder = RecordingSink(next: nil)
            let value = try await body(recorder)
            var report = OneShotReport()
            report.alerts = recorder.sent
            report.configurationProblem = error
            return (value, report)
        }
        let recorder = RecordingSink(next: dispatcher)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await dispatcher.run() }
            defer { group.cancelAll() }
            let value = try await body(recorder)
            var report = OneShotReport()
            report.alerts = recorder.sent
            // What each target is owed: the alerts it takes on this path. A target that announces
            // the environment gets an audited alert from the daemon's notifier instead.
            var expected: [String: Int] = [:]
            for target in relevant {
                expected[target.name] = report.alerts.filter { Self.sends($0, to: target) }.count
            }
            let end = ContinuousClock.now + deadline
            func settled() -> Bool {
                let statistics = dispatcher.statistics
                return expected.allSatisfy { name, owed in
                    owed == 0 || statistics[name].map { $0.sent + $0.failed + $0.dropped >= owed } == true
                }
            }
            while !settled() && ContinuousClock.now < end {
                try? await Task.sleep(for: .milliseconds(20))
            }
            report.timedOut = !settled()
            report.owed = expected
            report.statistics = dispatcher.statistics
            return (value, report)
        }
    }

    /// Records what is sent, and passes it on.
    private final class RecordingSink: AlertSink {
        let next: (any AlertSink)?
        private let list = Mutex<[Alert]>([])

        init(next: (any AlertSink)?) { self.next = next }
        var sent: [Alert] { list.withLock { $0 } }

        func send(_ alert: Alert) {
            list.withLock { $0.append(alert) }
            next?.send(alert)
        }
    }
}

extension AlertDispatcher.Configuration {
    /// For a command that waits for its alerts before it exits: 3 attempts, 1 s first backoff,
    /// at most 5 s between attempts, 5 s per request.
    package static var oneShot: Self {
        var c = Self()
        c.maxAttempts = 3
        c.maxBackoff = .seconds(5)
        c.requestTimeout = .seconds(5)
        return c
    }
}
