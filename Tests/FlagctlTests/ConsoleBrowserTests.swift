import FlagpoleControl
import FlagpoleCore
import FlagpoleRedis
import FlagpoleStore
import FlagpoleTesting
import Foundation
import Testing

/// The web console in a real headless Chromium (Debian's `chromium` and `chromium-driver`, driven by
/// Selenium from the tests' virtualenv; scripts/install-deps.sh installs all three) against a real
/// `flagctl daemon`, Redis and synthetic traffic from `flagpole-traffic`.
@Suite("Web console in a real browser", .serialized, .timeLimit(.minutes(5)))
struct ConsoleBrowserTests {
    static let script = FlagctlProcess.packageRoot.appendingPathComponent("interop/browser/console_check.py")
    /// Where the screenshots go (docs/images/console-rollout.png is the rollout page's, copied from here).
    static let screenshots = FlagctlProcess.packageRoot.appendingPathComponent(".build/console-screenshots")
    static let operateToken = "operate-" + String(repeating: "7", count: 24)
    static let viewToken = "view-" + String(repeating: "3", count: 24)

    static var trafficExecutable: String {
        FlagctlProcess.executable.deletingLastPathComponent().appendingPathComponent("flagpole-traffic").path
    }

    /// Chromium and its WebDriver, or a clear error naming what is missing.
    static func browserPrograms() throws -> (chromium: String, driver: String) {
        guard let chromium = PythonEnvironment.findExecutable("chromium") else {
            throw DaemonTestError(
                "chromium is not installed; the console's browser test needs it (scripts/install-deps.sh, or apt-get install chromium)")
        }
        guard let driver = PythonEnvironment.findExecutable("chromedriver") else {
            throw DaemonTestError(
                "chromedriver is not installed; the console's browser test needs it (scripts/install-deps.sh, or apt-get install chromium-driver)")
        }
        return (chromium, driver)
    }

    @Test(
        "log in, see the overview and a failing rollout's chart, abort it with a reason; a view-only token sees no actions and a forged POST is refused"
    )
    func browser() async throws {
        let programs = try Self.browserPrograms()
        let python = try PythonEnvironment.ensure()
        try await RedisServer.withServer { server in
            let root = FileManager.default.temporaryDirectory.appendingPathComponent("flagpole-console-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: root.appendingPathComponent("prod"), withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: root) }
            try """
            version: 1
            environments:
              prod: {production: true}
            """.write(to: root.appendingPathComponent("flagpole.yaml"), atomically: true, encoding: .utf8)
            try """
            flags:
              new-checkout:
                state: ENABLED
                variants: {"on": true, "off": false}
                defaultVariant: "off"
              search-v2:
                state: ENABLED
                variants: {"fast": "fast", "classic": "classic"}
                defaultVariant: "classic"
                targeting: {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "fast", null]}
            """.write(to: root.appendingPathComponent("prod/flags.yaml"), atomically: true, encoding: .utf8)
            let tokens = root.appendingPathComponent("tokens")
            try "\(Self.operateToken) view,operate name=ann\n\(Self.viewToken) view name=vic\n".write(
                to: tokens, atomically: true, encoding: .utf8)
            let common = ["--env", "prod", "--redis", server.url, "--flags", root.path]
            let sync = try FlagctlProcess.run(["sync"] + common)
            #expect(sync.status == 0, "\(sync.stderr)")

            // A dry-run rollout that began 25 minutes ago, with 35 minutes of outcomes behind it:
            // the control fails 1 %, the treatment about 30 % since the start (the ceiling is 20 %).
            let control = try EnvironmentControl(
                environment: "prod", client: RedisClient(configuration: server.configuration), directory: FlagDirectory(root: root.path))
            let now = Int64(Date().timeIntervalSince1970)
            var start = EnvironmentControl.RolloutStart(flag: "new-checkout", target: "on")
            start.steps = [25, 100]
            start.watch = .seconds(3600)
            start.maxErrorRate = 0.2
            start.maxErrorIncrease = 0.05
            start.minSamples = 50
            start.dryRun = true
            start.now = now - 25 * 60
            start.reason = "new checkout flow"
            _ = try await control.startRollout(start)
            let thisMinute = StoreLayout.unixMinute(now)
            for minute in (thisMinute - 35)..<thisMinute {
                let key = control.store.layout.outcomes(flag: "new-checkout", minute: minute)
                var fields = [StoreLayout.outcomeField(variant: "off", .ok), "594", StoreLayout.outcomeField(variant: "off", .err), "6"]
                if minute * 60 >= now - 25 * 60 {
                    let failed = 50 + (minute % 7) * 4
                    fields += [
                        StoreLayout.outcomeField(variant: "on", .ok), String(200 - failed), StoreLayout.outcomeField(variant: "on", .err),
                        String(failed),
                    ]
                }
                _ = try await control.store.client.send(RedisCommand(["HSET", RedisArgument(key)] + fields.map { RedisArgument($0) }))
            }

            let traffic = try BackgroundProcess(
                Self.trafficExecutable,
                [
                    "--env", "prod", "--redis", server.url, "--flag", "new-checkout", "--rate", "50", "--error-rate", "0.01",
                    "--variant-error-rate", "on=0.3", "--report-interval", "1",
                ])
            let daemon = try await DaemonProcess.start(common + ["--tokens-file", tokens.path, "--interval", "1s", "--no-alerts"])
            defer {
                Task { await traffic.stop() }
                Task { _ = try? await daemon.stop() }
            }
            #expect(daemon.stdout.contains("web console at http://127.0.0.1:\(daemon.port)/console"))

            try? FileManager.default.removeItem(at: Self.screenshots)
            let run = try FlagctlProcess.runExternal(
                python, [Self.script.path],
                environment: [
                    "FLAGPOLE_CONSOLE_URL": daemon.baseURL, "FLAGPOLE_OPERATE_TOKEN": Self.operateToken, "FLAGPOLE_VIEW_TOKEN": Self.viewToken,
                    "FLAGPOLE_FLAG": "new-checkout", "FLAGPOLE_ENVIRONMENT": "prod", "FLAGPOLE_SCREENSHOTS": Self.screenshots.path,
                    "FLAGPOLE_CHROMIUM": programs.chromium, "FLAGPOLE_CHROMEDRIVER": programs.driver,
                ])
            let checks = run.stdout.split(separator: "\n").compactMap { try? JSONParser.parse(String($0)) }
            #expect(run.status == 0, "console_check.py failed:\n\(run.stdout)\n\(run.stderr.suffix(3000))\ndaemon: \(daemon.stderr.suffix(1500))")
            for name in [
                "overview", "rollout chart", "abort applied", "audit entry", "viewer sees no actions", "viewer's POST refused",
                "POST without CSRF token refused", "POST without session refused", "cookie is HttpOnly",
            ] {
                #expect(checks.contains { $0["check"]?.stringValue == name && $0["ok"] == true }, "check '\(name)' did not pass:\n\(run.stdout)")
            }
            for page in ["overview", "flags", "rollout", "abort-done", "flag", "audit", "viewer-flag-phone"] {
                #expect(
                    FileManager.default.fileExists(atPath: Self.screenshots.appendingPathComponent("\(page).png").path), "no screenshot of \(page)")
            }
            // What the browser did, as Redis has it.
            let record = try #require(try await control.store.rollout(flag: "new-checkout"))
            #expect(record.status == .aborted)
            let audit = try await control.store.auditEntries(flag: "new-checkout", limit: 5)
            #expect(
                audit.contains { $0.action == "rollout-abort" && $0.actor == "ann" && $0.reason == "treatment fails: aborted from the browser test" })
            #expect(try await control.store.read(flag: "new-checkout").override == nil, "the flag serves its files' definition again")
        }
    }
}
