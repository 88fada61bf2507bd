import ArgumentParser
import Flagpole
import FlagpoleControl
import FlagpoleCore
import FlagpoleRedis
import FlagpoleRollout
import FlagpoleServer
import FlagpoleSync
import Foundation
import Logging
import Prometheus
import ServiceLifecycle

/// `flagctl daemon`: OFREP, outcome reporting, health and metrics, served from the client
/// library's in-memory cache of one environment (and, with guarded rollouts, the watcher).
struct DaemonCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemon",
        abstract: "Serve OFREP, outcome reporting, /healthz, /readyz and /metrics from one environment's flags.",
        discussion: """
            The daemon follows one environment in Redis with the client library (in memory, live,
            serving the last data when Redis is down) and answers over HTTP/1.1:

              POST /ofrep/v1/evaluate/flags/KEY   one flag (OFREP): 200, 400, 401, 403, 404, 413
              POST /ofrep/v1/evaluate/flags       every flag, with an ETag; 304 for If-None-Match
              POST /flagpole/v1/outcomes          record success/failure per flag and variant
              GET  /healthz  /readyz  /metrics    liveness, readiness, Prometheus text
              GET  /console                       the web console (unless --no-console; log in with
                                                  a token with the scope view or operate)

            Request bodies are {"context": {"targetingKey": "user-1", ...}}. Any OpenFeature SDK
            with an OFREP provider reads the flags at http://HOST:PORT.

            flagd sync (gRPC, on --sync-port, default 8015; off with --no-sync): the service
            flagd.sync.v1.FlagSyncService (SyncFlags, FetchAllFlags, GetMetadata), as flagd
            serves it. flagd's providers in in-process mode (resolver in-process, port 8015)
            receive the environment's effective flags (every override, rollout step and revert
            applied) as one flagd document, again on every change, and evaluate locally. The
            same tokens apply (gRPC metadata 'authorization: Bearer TOKEN'); a selector, if any,
            must name the environment ('flagSetId=ENV').

            Authentication: with --tokens-file or $FLAGPOLE_DAEMON_TOKENS set, OFREP and outcome
            requests need 'Authorization: Bearer TOKEN' (or 'X-API-Key: TOKEN'); 401 without a
            known token, 403 for a token without the scope. The token file holds one token per
            line, optionally followed by its scopes (evaluate, report, view, operate; default
            evaluate,report) and name=NAME (the console's actor); the
            variable holds comma-separated tokens with both scopes. Tokens are 16 or more visible
            ASCII characters. /healthz, /readyz and /metrics need none. Without tokens the daemon
            listens on loopback only: it refuses to start on any other --host unless you pass
            --allow-unauthenticated (then the log and /readyz say so).

            Outcome reports are evidence the watcher reverts on, so each is checked whole before
            anything is recorded: JSON only ('Content-Type: application/json', else 415), flags
            the daemon serves and their variants only (else 400 naming the entry), durationMs at
            most one hour, and at most --report-rate-limit outcomes a second per token (429 with
            Retry-After past it).

            Least privilege in Redis: run the daemon as the user `flagctl acl --env ENV --role
            daemon` prints, or give the watcher its own user with --watcher-redis and run the HTTP
            side as an app user (`flagctl acl --role app`).

            The rollout watcher (unless --no-watcher) looks at every running rollout of the
            environment every --interval: it advances, completes or reverts it (see `flagctl
            rollout --help`), audits each action with its evidence, and sends alerts to the
            targets of the project config (flags/flagpole.yaml) that apply to the environment.
            Several daemons may run for one environment: a lease in Redis lets exactly one watch
            (the others stand by and take over within the lease's 30 s). A target whose
            environment variable is unset stops the daemon from starting; --no-alerts runs
            without alerts (a local setup, say). With --no-watcher the daemon only serves HTTP,
            next to the apps.

            Notifications: every change of the environment (sync, set, enable, disable, clear,
            restore, each rollout move, pin and unpin), made by any flagctl anywhere, is
            announced to the alert targets whose 'notify' names the environment — who, what,
            why, before -> after, and with --console-url a link to the flag's console page. The
            daemon holding the watcher lease reads the audit stream and stores, per target, the
            last entry announced in Redis: each change is announced once, a restart or another
            daemon resumes from there, and a target that is down gets everything in order when
            it is back. The first start announces nothing earlier (it says so in the log). The
            watcher's own alerts of reverts, completions, stops and dry-run verdicts go to such
            a target once, as notifications. --no-alerts turns notifications off too.

            Stops gracefully on SIGTERM or SIGINT. Exit status 0 after a graceful stop, 1 when
            it cannot start (port in use, unreadable token file), 2 for usage errors.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("The address to listen on (0.0.0.0 for every interface).", valueName: "address"))
    var host = "127.0.0.1"

    @Option(help: ArgumentHelp("The TCP port (0 picks a free one).", valueName: "port"))
    var port = 8016

    @Option(help: ArgumentHelp("The TCP port of flagd sync (gRPC, flagd.sync.v1; 0 picks a free one).", valueName: "port"))
    var syncPort = 8015

    @Flag(help: "Do not serve flagd sync (gRPC): OFREP and outcomes only.")
    var noSync = false

    @Flag(help: "Serve HTTP only, without the rollout watcher.")
    var noWatcher = false

    @Option(help: ArgumentHelp("How often the watcher looks at running rollouts, e.g. 10s, 1s, 500ms.", valueName: "duration"))
    var interval = "10s"

    @Flag(help: "Run the watcher without alerts (no alert target of the project config is used).")
    var noAlerts = false

    @Flag(help: "Do not serve the web console under /console (docs/daemon.md#the-web-console).")
    var noConsole = false

    @Option(help: ArgumentHelp("A file of bearer tokens, one per line, with optional scopes.", valueName: "path"))
    var tokensFile: String?

    @Option(help: ArgumentHelp("The largest request body accepted, in bytes (larger: 413).", valueName: "bytes"))
    var maxBodySize = 64 * 1024

    @Option(help: ArgumentHelp("The name `flagctl clients` shows for this daemon.", valueName: "name"))
    var application = "flagctl-daemon"

    @Flag(help: "Serve without tokens on an address other machines can reach (refused by default).")
    var allowUnauthenticated = false

    @Option(help: ArgumentHelp("Outcomes each token may report per second (bursts of twice that; past it: 429).", valueName: "n"))
    var reportRateLimit = OutcomeRateLimit().perSecond

    @Option(
        help: ArgumentHelp(
            "A Redis URL for the watcher alone (its own ACL user); the HTTP side then uses --redis, e.g. as an app user.",
            valueName: "url"))
    var watcherRedis: String?

    @Option(
        help: ArgumentHelp(
            "The web console's address for links in notifications, e.g. https://flags.example.com/console (default: $FLAGPOLE_CONSOLE_URL).",
            valueName: "url"))
    var consoleURL: String?

    /// The environment variable that may hold `--console-url`.
    static let consoleURLVariable = "FLAGPOLE_CONSOLE_URL"

    /// `--console-url`, else `$FLAGPOLE_CONSOLE_URL`: an http(s) URL without credentials, or nil.
    func consoleLinkBase() throws -> String? {
        let given = consoleURL ?? ProcessInfo.processInfo.environment[Self.consoleURLVariable].flatMap { $0.isEmpty ? nil : $0 }
        guard let given else { return nil }
        let origin = consoleURL != nil ? "--console-url" : "$\(Self.consoleURLVariable)"
        let lower = given.lowercased()
        guard lower.hasPrefix("http://") || lower.hasPrefix("https://"), let url = URL(string: given), url.host != nil else {
            throw ValidationError(
                "\(origin) '\(given)' is not an http:// or https:// URL; give the console's address, e.g. https://flags.example.com/console")
        }
        guard url.user == nil, url.password == nil, url.query == nil else {
            throw ValidationError(
                "\(origin) must not hold credentials or a query (it is sent in every notification); give the console's plain address")
        }
        return given
    }

    /// The environment variable holding tokens (comma-separated, every scope).
    static let tokensVariable = "FLAGPOLE_DAEMON_TOKENS"

    func validate() throws {
        guard (0...65535).contains(port) else {
            throw ValidationError("--port \(port) is not a TCP port; use 1 to 65535 (or 0 for any free one)")
        }
        guard (0...65535).contains(syncPort) else {
            throw ValidationError("--sync-port \(syncPort) is not a TCP port; use 1 to 65535 (or 0 for any free one), or --no-sync")
        }
        if !noSync, port != 0, syncPort == port {
            throw ValidationError("--sync-port \(syncPort) is also --port: flagd sync (gRPC) needs a port of its own")
        }
        guard (256...(16 << 20)).contains(maxBodySize) else {
            throw ValidationError("--max-body-size \(maxBodySize) is out of range; use 256 to \(16 << 20) bytes")
        }
        guard !host.isEmpty else { throw ValidationError("--host is empty; use 127.0.0.1, 0.0.0.0 or an address of this machine") }
        guard (1...10_000_000).contains(reportRateLimit) else {
            throw ValidationError("--report-rate-limit \(reportRateLimit) is out of range; use 1 to 10000000 outcomes a second per token")
        }
        if watcherRedis != nil, noWatcher {
            throw ValidationError("--watcher-redis names the watcher's Redis, but --no-watcher turns the watcher off; drop one of them")
        }
        _ = try watchInterval()
        _ = try consoleLinkBase()
    }

    /// `--interval` as a duration: 100 ms to 10 minutes.
    func watchInterval() throws -> Duration {
        guard let d = DurationText.parse(interval), d >= .milliseconds(100), d <= .seconds(600) else {
            throw ValidationError("--interval '\(interval)' is not a duration from 100ms to 10m; write e.g. 10s, 1s or 500ms")
        }
        return d
    }

    /// The tokens from `--tokens-file` and `$FLAGPOLE_DAEMON_TOKENS` (both may be given).
    func tokens() throws -> AccessTokens {
        var tokens = AccessTokens.none
        do {
            if let tokensFile { tokens = tokens.merging(try AccessTokens.load(path: tokensFile)) }
            if let list = ProcessInfo.processInfo.environment[Self.tokensVariable], !list.isEmpty {
                tokens = tokens.merging(try AccessTokens(list: list, origin: "$\(Self.tokensVariable)"))
            }
        } catch {
            throw ValidationError(error.message)
        }
        return tokens
    }

    func run() async throws {
        let environment = try global.environment()
        let redis = try global.redisConfiguration()
        let tokens = try tokens()
        var logger = Logger(label: "flagctl.daemon")
        logger.logLevel = .info

        // One registry for /metrics: the client's swift-metrics, the server's, the watcher's and the alerts'.
        let registry = PrometheusCollectorRegistry()
        var clientConfiguration = FlagpoleClient.Configuration(redis: redis, environment: environment, application: application)
        clientConfiguration.flagFiles = FlagpoleClient.FlagFiles(directory: global.flags)  // Redis down at start and no snapshot yet
        clientConfiguration.metricsFactory = PrometheusMetricsFactory(registry: registry)
        let client = FlagpoleClient(configuration: clientConfiguration, logger: logger)

        var serverConfiguration = DaemonServer.Configuration()
        serverConfiguration.host = host
        serverConfiguration.port = port
        serverConfiguration.maxBodySize = maxBodySize
        serverConfiguration.tokens = tokens
        serverConfiguration.allowUnauthenticated = allowUnauthenticated
        serverConfiguration.reportRateLimit = OutcomeRateLimit(perSecond: reportRateLimit)
        // Refused before anything connects or listens.
        if let refusal = DaemonServer.refusal(serverConfiguration) {
            Output.error(refusal)
            throw ExitCode.failure
        }

        var watcherRedisConfiguration = redis
        if let watcherRedis {
            do {
                watcherRedisConfiguration = try RedisConfiguration(url: watcherRedis)
            } catch {
                throw ValidationError("--watcher-redis: \(error.message)")
            }
        }
        let extras = try watcherServices(environment: environment, redis: watcherRedisConfiguration, registry: registry, logger: logger)
        let auth =
            tokens.isEnabled
            ? "\(tokens.count) token\(tokens.count == 1 ? "" : "s")"
            : DaemonServer.isLoopback(host: host) ? "off (loopback only)" : "OFF on a reachable address (--allow-unauthenticated)"
        let console =
            noConsole
            ? nil
            : try ConsoleServer.forDaemon(
                client: client, redis: redis, environment: environment, flags: global.flags, tokens: tokens,
                loopbackOnly: DaemonServer.isLoopback(host: host), logger: logger)
        let server = DaemonServer(
            client: client, configuration: serverConfiguration, registry: registry, metricsRefresh: extras.metricsRefresh,
            readinessChecks: extras.readiness, console: console, logger: logger
        ) { host, port in
            Self.say(
                "flagctl daemon: serving \(environment) on http://\(host):\(port) (OFREP, outcomes, /healthz, /readyz, /metrics; auth \(auth); \(extras.note))"
            )
            if console != nil { Self.say("flagctl daemon: web console at http://\(host):\(port)/console") }
        }

        var sync: [any Service] = []
        if !noSync {
            var syncConfiguration = FlagSyncServer.Configuration(environment: environment)
            syncConfiguration.host = host
            syncConfiguration.port = syncPort
            syncConfiguration.tokens = tokens
            sync.append(
                FlagSyncServer(client: client, configuration: syncConfiguration, logger: logger) { host, port in
                    Self.say("flagctl daemon: flagd sync (gRPC flagd.sync.v1, in-process providers) on \(host):\(port); auth \(auth)")
                })
        }

        let group = ServiceGroup(
            configuration: .init(
                services: [client, server] + sync + extras.services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch let error as DaemonServerError {
            Output.error(error.message)
            throw ExitCode.failure
        } catch let error as FlagpoleClientError {
            Output.error(error.description)
            throw ExitCode.failure
        }
        Self.say("flagctl daemon: stopped")
    }

    /// What runs beside the client and the HTTP server: the rollout watcher (its `Service`, its
    /// series in `registry`, its `/readyz` check) and the alert dispatcher it sends to.
    func watcherServices(
        environment: String, redis: RedisConfiguration, registry: PrometheusCollectorRegistry, logger: Logger
    ) throws
        -> (services: [any Service], metricsRefresh: [@Sendable () -> Void], readiness: [ReadinessCheck], note: String)
    {
        if noWatcher { return ([], [], [], "watcher off") }
        let configLoad = FlagDirectory(root: global.flags).loadConfig()
        if configLoad.hasErrors {
            let problems = configLoad.diagnostics.filter { $0.severity == .error }.map(\.description).joined(separator: "\n  ")
            throw ValidationError(
                "the project config is invalid, so the watcher cannot start:\n  \(problems)\nfix it (flagctl validate), or run with --no-watcher")
        }
        let targets = noAlerts ? [] : configLoad.config.alertTargets(forEnvironment: environment)
        let dispatcher: AlertDispatcher
        do {
            dispatcher = try AlertDispatcher(targets: targets, registry: registry, logger: logger)
        } catch {
            throw ValidationError("\(error.description)\n(or run the daemon with --no-alerts)")
        }
        let client = RedisClient(configuration: redis, logger: logger)
        var configuration = RolloutWatcher.Configuration(environment: environment)
        configuration.interval = try watchInterval()
        // Renewed every tick: a lease of three intervals (30 s at least) survives a slow tick, and
        // leaves the notifier its margin between renewals whatever --interval is.
        configuration.leaseTTL = max(.seconds(30), configuration.interval * 3)
        configuration.freezeWindows = configLoad.config.freezeWindows
        let watcher = try RolloutWatcher(
            configuration: configuration, client: client,
            metricSource: RolloutWatcher.standardMetricSources(environment: environment, client: client),
            alerts: dispatcher, logger: logger)
        let metrics = RolloutWatcher.Metrics(watcher: watcher, registry: registry)
        let readiness = [ReadinessCheck(name: "watcher") { watcher.isHealthy ? nil : "the watcher has not read Redis for three intervals" }]
        let alerts = targets.isEmpty ? "no alert targets" : "alerts to " + targets.map(\.name).joined(separator: ", ")
        // Notifications: their own Redis connection, and listed after the watcher, so that a
        // graceful stop ends them before the watcher gives the lease up.
        let announced = noAlerts ? [] : ChangeNotifier.targets(configLoad.config.alertTargets, announcing: environment)
        guard !announced.isEmpty else {
            return ([dispatcher, watcher], [{ metrics.update() }], readiness, "watcher every \(interval), \(alerts)")
        }
        var notifierConfiguration = ChangeNotifier.Configuration(environment: environment, holderID: configuration.holderID)
        notifierConfiguration.consoleURL = try consoleLinkBase()
        let notifier: ChangeNotifier
        do {
            notifier = try ChangeNotifier(
                configuration: notifierConfiguration, targets: announced, client: RedisClient(configuration: redis, logger: logger),
                registry: registry, logger: logger)
        } catch let error as AlertConfigurationError {
            throw ValidationError("\(error.description)\n(or run the daemon with --no-alerts)")
        }
        let notes = "notifications to " + notifier.targetNames.joined(separator: ", ")
        return ([dispatcher, watcher, notifier], [{ metrics.update() }], readiness, "watcher every \(interval), \(alerts), \(notes)")
    }

    /// Prints a line to standard output at once (a pipe would buffer `print`).
    static func say(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }
}
