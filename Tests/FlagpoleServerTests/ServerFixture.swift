import Flagpole
import FlagpoleControl
import FlagpoleCore
import FlagpoleRedis
import FlagpoleServer
import FlagpoleStore
import FlagpoleTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Prometheus
import Testing

/// The flags the server tests serve (environment `prod`).
let serverFlags = """
    {"flags": {
      "new-checkout": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
                       "targeting": {"if": [{"ends_with": [{"var": "email"}, "@flagpole.dev"]}, "on", null]},
                       "metadata": {"owner": "checkout-team", "rollout.maxErrorRate": 0.02, "version": "9"}},
      "color": {"state": "ENABLED", "variants": {"blue": "#1F6FEB", "green": "#2DA44E"}, "defaultVariant": "blue"},
      "limit": {"state": "ENABLED", "variants": {"low": 10, "high": 100}, "defaultVariant": "high"},
      "ratio": {"state": "ENABLED", "variants": {"a": 0.25, "one": 1.0}, "defaultVariant": "one"},
      "theme": {"state": "ENABLED", "variants": {"dark": {"bg": "#000", "sizes": [1, 2]}}, "defaultVariant": "dark"},
      "legacy": {"state": "DISABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off"},
      "no-default": {"state": "ENABLED", "variants": {"a": 1, "b": 2}},
      "by-tier": {"state": "ENABLED", "variants": {"gold": "g", "silver": "s"}, "defaultVariant": "silver",
                  "targeting": {"var": "tier"}}
    }, "metadata": {"flagSetId": "shop/prod", "version": "7"}}
    """

/// How a test reaches the daemon's HTTP application.
enum Transport: String, CaseIterable, Sendable, CustomTestStringConvertible {
    /// Straight into the router: the async routes answer every request.
    case router
    /// A real server on a free port over HTTP/1.1: single evaluations are answered on the event
    /// loop (`OFREPFastPath`), everything else by the router.
    case live

    var setup: TestingSetup { self == .router ? .router : .live }
    var testDescription: String { rawValue }
}

/// A test server: Redis with `serverFlags` synced (plus a broken flag written by hand), a running
/// client, and the daemon's HTTP application under HummingbirdTesting.
struct ServerFixture: Sendable {
    let redis: RedisServer
    let control: EnvironmentControl
    let client: FlagpoleClient
    let server: DaemonServer

    /// Runs `body` with a test client of a `DaemonServer` serving `serverFlags`, through
    /// `transport` (default: the router).
    static func with(
        _ transport: Transport = .router, tokens: AccessTokens = .none, maxBodySize: Int = 64 * 1024,
        reportRateLimit: OutcomeRateLimit = OutcomeRateLimit(), registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(),
        metricsRefresh: [@Sendable () -> Void] = [], readinessChecks: [ReadinessCheck] = [],
        _ body: @escaping @Sendable (ServerFixture, any TestClientProtocol) async throws -> Void
    ) async throws {
        try await RedisServer.withServer { redis in
            let root = FileManager.default.temporaryDirectory.appendingPathComponent("flagpole-server-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: root.appendingPathComponent("prod"), withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: root) }
            try serverFlags.write(to: root.appendingPathComponent("prod/flags.json"), atomically: true, encoding: .utf8)
            let admin = RedisClient(configuration: redis.configuration)
            let control = try EnvironmentControl(environment: "prod", client: admin, directory: FlagDirectory(root: root.path))
            _ = try await control.sync(.init())
            // A rule no validator would let through, written straight into Redis: PARSE_ERROR.
            _ = try await admin.send(
                "HSET", control.store.layout.flags, "broken",
                #"{"state":"ENABLED","variants":{"on":true},"defaultVariant":"on","targeting":{"no-such-operator":[1]}}"#)

            var configuration = FlagpoleClient.Configuration(redis: redis.configuration, environment: "prod", application: "server-tests")
            configuration.snapshotPath = nil
            configuration.outcomes.flushInterval = .milliseconds(50)
            configuration.metricsFactory = PrometheusMetricsFactory(registry: registry)  // as flagctl daemon does
            let client = FlagpoleClient(configuration: configuration)
            var serverConfiguration = DaemonServer.Configuration()
            serverConfiguration.port = 0
            serverConfiguration.tokens = tokens
            serverConfiguration.maxBodySize = maxBodySize
            serverConfiguration.reportRateLimit = reportRateLimit
            let server = DaemonServer(
                client: client, configuration: serverConfiguration, registry: registry, metricsRefresh: metricsRefresh,
                readinessChecks: readinessChecks, logger: Logger(label: "server-tests"))
            let fixture = ServerFixture(redis: redis, control: control, client: client, server: server)
            let task = Task { try await client.run() }
            defer { task.cancel() }
            #expect(await client.waitUntilReady(timeout: .seconds(5)))
            try await server.makeApplication().test(transport.setup) { testClient in
                try await body(fixture, testClient)
            }
            task.cancel()
            _ = try? await task.value
        }
    }
}

extension TestClientProtocol {
    /// POSTs `body` (JSON text) to `uri`.
    func post(_ uri: String, _ body: String?, headers: HTTPFields = [:]) async throws -> TestResponse {
        var headers = headers
        if body != nil { headers[.contentType] = "application/json" }
        return try await execute(uri: uri, method: .post, headers: headers, body: body.map { ByteBuffer(string: $0) })
    }

    /// GETs `uri`.
    func get(_ uri: String) async throws -> TestResponse {
        try await execute(uri: uri, method: .get)
    }
}

extension TestResponse {
    var text: String { String(buffer: body) }

    /// The body as JSON (null when it is not JSON).
    var json: JSONValue { (try? JSONParser.parse(text)) ?? .null }
}
